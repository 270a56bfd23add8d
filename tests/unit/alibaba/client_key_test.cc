#include "sidecar/alibaba/client_key.h"

#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

namespace credsync::alibaba {
namespace {

using ::credsync::testing::writeFile;

using ::credsync::testing::IsOk;
using ::credsync::testing::readFile;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// The official Java SDK's vectors (aliyun/alibabacloud-dkms-gcs-java-sdk,
// openapi-credential/src/test/java/com/aliyun/dkms/gcs/openapi/credential/
// ClientTest.java getSignature): the fixtures are copied from that file.
constexpr char kStringToSign[] = "string to sign";
// (a) the PKCS#1 PEM key.
constexpr char kPemSignature[] =
    "gvXsVIkQF/QLMFRfkXaEb4Ul7NFSwYks04e2ZDIRE38WvGrRuvYOE78TUucrtWCKcVpj0MxoDEyyjBcUoi+"
    "XPtEzNJXkQ0JQdoISBTClVW6BaecuWg7mWosDqlBuxXH9oYQhD5prERbuGOa9Ft+"
    "kbzyJe6p8lDkAlVuI8tGHBXsbFBRHR1gm8rcSv7xOBR3NBL718Lh1H0PUIGSkj6pAyGGTalIrhFB+"
    "bFMpblgs79mlepa5ZMrkXa7iSMsEACYFrF0Ya1jOdJABKxx/GjHohZDBdWSfO4NH7VzAkKvH9dbEJ25C9K/"
    "TksvD3XbSFKwzZZJKiGHlSTXyGZ8nfhCWaA==";
// (b) the client-key JSON (PKCS#12, password 1234).
constexpr char kClientKeySignature[] =
    "8qCkGCbTUrY8sA17CiaGvUEX/xFAsHyckv8sh3eVUyUz9iMyJE+vGX+LnVX+vNxCE+"
    "bepwxlrewa8mlppq5SoswwGWipOFP91TqgdqD44hOiLr/5wtDNRAYyWzriFD/"
    "gt1ZklzxKr0rmW0c7kCA+QnB0t6uotHPfXhG+5/E7zRMq/GpRIylYvi50k/26vTouRo7zjc4f6Gf9L+"
    "oAuPRih6KarNvw08FQH8DRQ3xVe4QKVwW4hdk47RQ8JySR6lLoli8DFXRmY4d7NNAlyIkGauF1MXGoKv+"
    "IzgSJ24QnCyQZ/3bXD4ZnGCguKd92mvF1z7S5hw+aeuXsU+he4LS8QA==";

std::string testdata(const std::string& name) {
  return absl::StrCat(CREDSYNC_ALIBABA_TESTDATA, "/", name);
}

const SecretString kPassword("1234");

// Verifies the Java SDK's vector (b): the client-key JSON with password 1234
// signs "string to sign" to the SDK's expected signature (this needs the
// RC2-40 certificate bag to open, i.e. the legacy provider path).
TEST(ClientKeyTest, JavaSdkClientKeyVector) {
  absl::StatusOr<ClientKey> key =
      ClientKey::loadFile(testdata("java_sdk_client_key.json"), kPassword);
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(key->keyId(), "key_for_unit_test");
  absl::StatusOr<std::string> signature = key->sign(kStringToSign);
  ASSERT_THAT(signature, IsOk());
  EXPECT_EQ(*signature, kClientKeySignature);
}

// Verifies the Java SDK's vector (a): the PKCS#1 PEM key.
TEST(ClientKeyTest, JavaSdkPemVector) {
  absl::StatusOr<ClientKey> key = ClientKey::fromPrivateKeyPemForTest(
      "access_key_id", SecretString(readFile(testdata("java_sdk_test_key.pem"))));
  ASSERT_THAT(key, IsOk());
  absl::StatusOr<std::string> signature = key->sign(kStringToSign);
  ASSERT_THAT(signature, IsOk());
  EXPECT_EQ(*signature, kPemSignature);
}

// Verifies a key survives moves and that printing never shows key material.
TEST(ClientKeyTest, MovableAndPrintsOnlyTheKeyId) {
  absl::StatusOr<ClientKey> loaded =
      ClientKey::loadFile(testdata("java_sdk_client_key.json"), kPassword);
  ASSERT_THAT(loaded, IsOk());
  ClientKey moved = *std::move(loaded);
  ClientKey assigned = std::move(moved);
  std::ostringstream printed;
  printed << assigned;
  EXPECT_EQ(printed.str(), "ClientKey{key_for_unit_test, ***}");
  EXPECT_THAT(assigned.sign(kStringToSign), IsOk());
}

// Verifies a wrong password is named as such, with the file, and nothing else.
TEST(ClientKeyTest, WrongPassword) {
  const std::string path = testdata("java_sdk_client_key.json");
  EXPECT_THAT(
      ClientKey::loadFile(path, SecretString("12345")),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr(path), HasSubstr("wrong password"), Not(HasSubstr("MIIJ")))));
}

// Verifies each malformed client-key file gets its own one-line message that
// names the file and never quotes the key data.
TEST(ClientKeyTest, MalformedFiles) {
  const TempDir dir("client_key");
  const std::string key_data = "MIIJwwIBAzCCCY8GCSqGSIb3DQEHAaCCCYAEggl8";
  const std::map<std::string, std::string> cases = {
      {"not json", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {R"({"PrivateKeyData":")" + key_data + R"("})", "KeyId is missing"},
      {R"({"KeyId":7,"PrivateKeyData":")" + key_data + R"("})", "KeyId is missing"},
      {R"({"KeyId":"KAAP.1"})", "PrivateKeyData is missing"},
      {R"({"KeyId":"KAAP.1","PrivateKeyData":"%%%notbase64"})", "PrivateKeyData is not base64"},
      {R"({"KeyId":"KAAP.1","PrivateKeyData":"aGVsbG8gd29ybGQ="})", "not a PKCS#12 file"},
      {R"({"KeyId":"KAAP 1\n","PrivateKeyData":")" + key_data + R"("})", "printable ASCII"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string path = dir.file("key.json");
    writeFile(path, text);
    absl::StatusOr<ClientKey> key = ClientKey::loadFile(path, kPassword);
    EXPECT_THAT(
        key, StatusIs(absl::StatusCode::kInvalidArgument,
                      AllOf(HasSubstr(absl::StrCat("client key ", path, ": ")), HasSubstr(expected),
                            Not(HasSubstr(key_data)), Not(HasSubstr("\n")))))
        << text;
  }
}

// Verifies a missing file is NOT_FOUND naming the path.
TEST(ClientKeyTest, MissingFile) {
  EXPECT_THAT(ClientKey::loadFile("/nonexistent/clientKey.json", kPassword),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/clientKey.json")));
}

// Verifies a PKCS#12 holding an EC key is refused: the API signs with RSA.
TEST(ClientKeyTest, NotRsa) {
  EXPECT_THAT(ClientKey::loadFile(testdata("ec_client_key.json"), kPassword),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not RSA")));
}

// Verifies a PKCS#12 with only a certificate is refused.
TEST(ClientKeyTest, NoPrivateKey) {
  EXPECT_THAT(ClientKey::loadFile(testdata("no_private_key_client_key.json"), kPassword),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no private key")));
}

// Verifies PEM input that is not a key is refused without echoing it.
TEST(ClientKeyTest, BadPem) {
  EXPECT_THAT(ClientKey::fromPrivateKeyPemForTest("id", SecretString("-----BEGIN NOTHING-----")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an unencrypted PEM")));
}

ClientKeyPasswordSource passwordFile(const std::string& path) {
  ClientKeyPasswordSource source;
  source.file = path;
  return source;
}

ClientKeyPasswordSource passwordEnv(const std::string& name) {
  ClientKeyPasswordSource source;
  source.env_variable = name;
  return source;
}

EnvironmentLookup fakeEnvironment(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// Verifies the password file is read with surrounding whitespace and
// newlines stripped, as the official clients read it.
TEST(ClientKeyPasswordTest, FromFileStripsWhitespace) {
  const TempDir dir("password");
  writeFile(dir.file("password"), " \t1234\r\n\n");
  absl::StatusOr<SecretString> password =
      readClientKeyPassword(passwordFile(dir.file("password")), nullptr);
  ASSERT_THAT(password, IsOk());
  EXPECT_EQ(password->reveal(), "1234");
}

// Verifies an empty or missing password file is an error naming the file.
TEST(ClientKeyPasswordTest, FileErrors) {
  const TempDir dir("password");
  writeFile(dir.file("empty"), "\n");
  EXPECT_THAT(readClientKeyPassword(passwordFile(dir.file("empty")), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(dir.file("empty"))));
  EXPECT_THAT(readClientKeyPassword(passwordFile(dir.file("absent")), nullptr),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir.file("absent"))));
}

// Verifies the documented meaning of passwordFromEnvVariable: the variable
// named X holds the password (taken verbatim).
TEST(ClientKeyPasswordTest, FromEnvironmentVariable) {
  const EnvironmentLookup env = fakeEnvironment({{"CLIENT_KEY_PASSWORD", "1234"}});
  absl::StatusOr<SecretString> password =
      readClientKeyPassword(passwordEnv("CLIENT_KEY_PASSWORD"), env);
  ASSERT_THAT(password, IsOk());
  EXPECT_EQ(password->reveal(), "1234");
  EXPECT_THAT(readClientKeyPassword(passwordEnv("OTHER"), env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("environment variable OTHER is not set")));
}

// Verifies exactly one source must be given.
TEST(ClientKeyPasswordTest, ExactlyOneSource) {
  EXPECT_THAT(readClientKeyPassword(ClientKeyPasswordSource(), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(readClientKeyPassword(ClientKeyPasswordSource{"/a", "B"}, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exactly one")));
}

// Verifies loadClientKey, what the sidecar calls at startup, end to end.
TEST(ClientKeyPasswordTest, LoadClientKeyWithPasswordFile) {
  absl::StatusOr<ClientKey> key =
      loadClientKey(testdata("java_sdk_client_key.json"),
                    passwordFile(testdata("java_sdk_client_key_password.txt")), nullptr);
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(key->keyId(), "key_for_unit_test");
}

}  // namespace
}  // namespace credsync::alibaba
