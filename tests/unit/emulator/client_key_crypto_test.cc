#include "tests/emulator/client_key_crypto.h"

#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/crypto.h"
#include "tests/common/status_matchers.h"
#include "tests/unit/emulator/dkms_java_fixture.h"

namespace credsync::emulator {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
namespace fixture = dkms_fixture;

std::string withoutBearer(const std::string& authorization) {
  return authorization.substr(std::string("Bearer ").size());
}

// Verifies the official Java vector (research §4.1(b)): the SDK's client key
// file opens with password 1234 (its RC2 certificate bag skipped), and
// signing "string to sign" with its key gives the SDK's exact Authorization.
TEST(ClientKeyCryptoTest, JavaFixtureSignsLikeTheSdk) {
  auto opened = openClientKey(fixture::kJavaFixturePrivateKeyData, fixture::kJavaFixturePassword);
  ASSERT_THAT(opened, IsOk());
  auto signature = dkmsSign(opened->private_key_pem, fixture::kJavaFixtureStringToSign);
  ASSERT_THAT(signature, IsOk());
  EXPECT_EQ(*signature, withoutBearer(fixture::kJavaFixtureSignature));
}

// Verifies the verifier accepts the SDK's signature under the fixture's
// public key, and refuses it for another string or a flipped bit.
TEST(ClientKeyCryptoTest, VerifiesJavaFixtureSignature) {
  auto opened = openClientKey(fixture::kJavaFixturePrivateKeyData, fixture::kJavaFixturePassword);
  ASSERT_THAT(opened, IsOk());
  auto raw = crypto::base64Decode(withoutBearer(fixture::kJavaFixtureSignature));
  ASSERT_THAT(raw, IsOk());
  EXPECT_TRUE(dkmsVerify(opened->public_key_pem, fixture::kJavaFixtureStringToSign, *raw));
  EXPECT_FALSE(dkmsVerify(opened->public_key_pem, "string to sigN", *raw));
  std::string flipped = *raw;
  flipped[10] ^= 1;
  EXPECT_FALSE(dkmsVerify(opened->public_key_pem, fixture::kJavaFixtureStringToSign, flipped));
}

// Verifies a wrong password is refused (the PKCS#12 MAC), as are non-base64
// and non-PKCS#12 data.
TEST(ClientKeyCryptoTest, OpenRefusesWrongPasswordAndGarbage) {
  EXPECT_THAT(openClientKey(fixture::kJavaFixturePrivateKeyData, "12345"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(openClientKey("not base64!", "1234"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(openClientKey(crypto::base64Encode("not pkcs12"), "1234"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Verifies a generated client key opens again with its password (as an SDK
// would load it) and holds the same key pair: its signatures verify under
// the public key the emulator keeps.
TEST(ClientKeyCryptoTest, GeneratedKeyRoundTrips) {
  auto issued = generateClientKey("KAAP.test", "secret-pw");
  ASSERT_THAT(issued, IsOk());
  EXPECT_EQ(issued->password.reveal(), "secret-pw");
  EXPECT_THAT(issued->certificate_pem, ::testing::HasSubstr("BEGIN CERTIFICATE"));
  auto reopened = openClientKey(issued->private_key_data.reveal(), "secret-pw");
  ASSERT_THAT(reopened, IsOk());
  EXPECT_EQ(reopened->public_key_pem, issued->public_key_pem);
  auto signature = dkmsSign(reopened->private_key_pem, "hello");
  ASSERT_THAT(signature, IsOk());
  EXPECT_TRUE(dkmsVerify(issued->public_key_pem, "hello", *crypto::base64Decode(*signature)));
  EXPECT_FALSE(openClientKey(issued->private_key_data.reveal(), "other").ok());
}

// Verifies an empty password makes a fresh random one.
TEST(ClientKeyCryptoTest, GeneratesPasswordWhenNoneGiven) {
  auto issued = generateClientKey("KAAP.test", "");
  ASSERT_THAT(issued, IsOk());
  EXPECT_GE(issued->password.size(), 20u);
  EXPECT_THAT(openClientKey(issued->private_key_data.reveal(), issued->password.reveal()), IsOk());
}

// Verifies the string to sign of the §4.2 request, rebuilt from headers as
// the gateway receives them: only x-kms-* headers, sorted, values trimmed,
// and "/" right after the last header line.
TEST(ClientKeyCryptoTest, StringToSignMatchesResearchVector) {
  const std::multimap<std::string, std::string> headers = {
      {"accept", "application/x-protobuf"},
      {"host", "kst-hzz0001.cryptoservice.kms.aliyuncs.com"},
      {"date", fixture::kFullRequestDate},
      {"user-agent", "AlibabaCloud (linux; amd64) Golang/1.21 kms-gcs-go-sdk-version/0.5.1"},
      {"x-kms-signaturemethod", "RSA_PKCS1_SHA_256"},
      {"x-kms-apiversion", "dkms-gcs-0.2"},
      {"x-kms-apiname", " GetSecretValue "},
      {"x-kms-acccesskeyid", fixture::kJavaFixtureKeyId},
      {"content-type", "application/x-protobuf"},
      {"content-length", "25"},
      {"content-sha256", fixture::kFullRequestContentSha256},
      {"authorization", "Bearer x"},
  };
  EXPECT_EQ(dkmsStringToSign("POST", headers), fixture::kFullRequestStringToSign);
}

// Verifies absent positional headers leave empty lines and a request with
// no x-kms-* header ends in "\n/".
TEST(ClientKeyCryptoTest, StringToSignWithoutHeaders) {
  EXPECT_EQ(dkmsStringToSign("POST", {}), "POST\n\n\n\n/");
}

// Verifies the §4.2 Authorization is the fixture key's signature of the
// §4.2 string (the derived vector is consistent with the official one).
TEST(ClientKeyCryptoTest, FullRequestSignatureReproduces) {
  auto opened = openClientKey(fixture::kJavaFixturePrivateKeyData, fixture::kJavaFixturePassword);
  ASSERT_THAT(opened, IsOk());
  auto signature = dkmsSign(opened->private_key_pem, fixture::kFullRequestStringToSign);
  ASSERT_THAT(signature, IsOk());
  EXPECT_EQ(*signature, withoutBearer(fixture::kFullRequestAuthorization));
}

}  // namespace
}  // namespace credsync::emulator
