#include "sidecar/alibaba/dkms_signature.h"

#include <string>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace credsync::alibaba::dkms {
namespace {

// The full-request vector of docs/research/kms-instance-api.md §4.2,
// derived by running the official Python SDK's get_string_to_sign.
constexpr char kBodyHex[] = "0a096d792d736563726574120a41435343757272656e742001";
constexpr char kContentSha256[] =
    "83ECECE04B659A2FA82D982946D681EE3A0C4A763E5A02B415872938C1DF1ECC";
constexpr char kStringToSign[] =
    "POST\n"
    "83ECECE04B659A2FA82D982946D681EE3A0C4A763E5A02B415872938C1DF1ECC\n"
    "application/x-protobuf\n"
    "Tue, 24 Nov 2026 17:00:00 GMT\n"
    "x-kms-acccesskeyid:key_for_unit_test\n"
    "x-kms-apiname:GetSecretValue\n"
    "x-kms-apiversion:dkms-gcs-0.2\n"
    "x-kms-signaturemethod:RSA_PKCS1_SHA_256\n"
    "/";

std::string fromHex(absl::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

absl::Time vectorTime() {
  return absl::FromCivil(absl::CivilSecond(2026, 11, 24, 17, 0, 0), absl::UTCTimeZone());
}

// Verifies the RFC 1123 GMT date the SDKs send, including day padding.
TEST(DkmsSignatureTest, FormatDate) {
  EXPECT_EQ(formatDate(vectorTime()), "Tue, 24 Nov 2026 17:00:00 GMT");
  EXPECT_EQ(
      formatDate(absl::FromCivil(absl::CivilSecond(2021, 9, 5, 1, 2, 3), absl::UTCTimeZone())),
      "Sun, 05 Sep 2021 01:02:03 GMT");
}

// Verifies content-sha256 is UPPERCASE hex of the body (§4.2 vector).
TEST(DkmsSignatureTest, ContentSha256) {
  EXPECT_EQ(contentSha256(fromHex(kBodyHex)), kContentSha256);
}

// Verifies the headers and string to sign of the §4.2 vector.
TEST(DkmsSignatureTest, FullRequestVector) {
  const http::Headers headers =
      unsignedHeaders("GetSecretValue", "key_for_unit_test", fromHex(kBodyHex), vectorTime());
  EXPECT_EQ(stringToSign("POST", headers), kStringToSign);
  EXPECT_THAT(headers, ::testing::Contains(std::pair<std::string, std::string>(
                           "x-kms-acccesskeyid", "key_for_unit_test")));
  EXPECT_THAT(headers, ::testing::Contains(std::pair<std::string, std::string>(
                           "accept", "application/x-protobuf")));
}

// Verifies a verifier's view: names in any case (Go canonicalizes them),
// values trimmed, non-x-kms headers not signed, x-kms headers sorted.
TEST(DkmsSignatureTest, CaseInsensitiveSortedAndTrimmed) {
  const http::Headers headers = {
      {"X-Kms-Signaturemethod", " RSA_PKCS1_SHA_256 "},
      {"Content-Sha256", "AB"},
      {"X-Kms-Apiname", "GetSecretValue"},
      {"Host", "kst-1.cryptoservice.kms.aliyuncs.com"},
      {"Date", "Tue, 24 Nov 2026 17:00:00 GMT"},
      {"X-Kms-Acccesskeyid", "KAAP.1"},
      {"User-Agent", "x"},
  };
  EXPECT_EQ(stringToSign("POST", headers),
            "POST\nAB\n\nTue, 24 Nov 2026 17:00:00 GMT\n"
            "x-kms-acccesskeyid:KAAP.1\nx-kms-apiname:GetSecretValue\n"
            "x-kms-signaturemethod:RSA_PKCS1_SHA_256\n/");
}

// Verifies the Authorization scheme is Bearer, as every official SDK sends.
TEST(DkmsSignatureTest, AuthorizationIsBearer) {
  EXPECT_EQ(authorizationHeader("c2ln"), "Bearer c2ln");
}

}  // namespace
}  // namespace credsync::alibaba::dkms
