#include "sidecar/fetch/secret_content.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/crypto.h"
#include "tests/common/status_matchers.h"
#include "tests/common/test_config.h"

namespace credsync::fetch {
namespace {

using ::credsync::testing::genericProfile;
using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

constexpr char kPassword[] = "s3cr3t-Pa55word!";

alibaba::SecretValue secretValue(std::string data, std::string type = "Generic",
                                 std::string data_type = "text") {
  alibaba::SecretValue value;
  value.secret_name = "db/main";
  value.secret_type = std::move(type);
  value.secret_data = SecretString(std::move(data));
  value.secret_data_type = std::move(data_type);
  value.version_id = "v7";
  return value;
}

std::map<std::string, std::string> reveal(const std::map<std::string, SecretString>& files) {
  std::map<std::string, std::string> out;
  for (const auto& [name, content] : files) out[name] = content.reveal();
  return out;
}

const config::ProfileConfig kRaw =
    genericProfile("api", "api/key", config::GenericFormat::kRaw, "api-key.txt");
const config::ProfileConfig kJsonKeys =
    genericProfile("db", "db/main", config::GenericFormat::kJsonKeys, "db.");

// Verifies a raw generic profile writes SecretData unchanged into its file,
// whatever the secret's type, and carries the version.
TEST(SecretContentTest, RawWritesTheValueAsIs) {
  for (const char* type : {"Generic", "RAMCredentials", "Rds"}) {
    SCOPED_TRACE(type);
    const auto credential =
        toManagedCredential(secretValue("line one\nline two\n", type), kRaw, "https://kms.example");
    ASSERT_THAT(credential, IsOk());
    EXPECT_EQ(credential->kind, config::ProfileKind::kGeneric);
    EXPECT_EQ(credential->version_id, "v7");
    EXPECT_EQ(credential->endpoint, "https://kms.example");
    EXPECT_TRUE(credential->access_key_id.empty());
    EXPECT_THAT(reveal(credential->files),
                ElementsAre(Pair("api-key.txt", "line one\nline two\n")));
  }
}

// Verifies SecretDataType binary is base64-decoded into the raw bytes, and
// that bad base64 fails without quoting the data.
TEST(SecretContentTest, BinaryIsDecoded) {
  const std::string bytes("\x00\x01\xfe\xff key", 8);
  const auto credential =
      toManagedCredential(secretValue(crypto::base64Encode(bytes), "Generic", "binary"), kRaw, "e");
  ASSERT_THAT(credential, IsOk());
  EXPECT_THAT(reveal(credential->files), ElementsAre(Pair("api-key.txt", bytes)));

  const auto bad =
      toManagedCredential(secretValue("%%not-base64%%", "Generic", "binary"), kRaw, "e");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            AllOf(HasSubstr("not valid base64"), Not(HasSubstr("%%")))));
  EXPECT_THAT(toManagedCredential(secretValue("x", "Generic", "hex"), kRaw, "e"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("text or binary")));
}

// Verifies json_keys writes one file per top-level key: strings as their
// text, other values as compact JSON.
TEST(SecretContentTest, JsonKeysSplitsTheObject) {
  const std::string data = absl::StrCat(
      R"({"username": "app", "password": ")", kPassword,
      R"(", "port": 5432, "tls": true, "hosts": ["a", "b"], "opts": {"x": null}, "note": "é\n"})");
  const auto credential = toManagedCredential(secretValue(data), kJsonKeys, "e");
  ASSERT_THAT(credential, IsOk());
  EXPECT_THAT(
      reveal(credential->files),
      ElementsAre(Pair("db.hosts", R"(["a","b"])"), Pair("db.note", "é\n"),
                  Pair("db.opts", R"({"x":null})"), Pair("db.password", kPassword),
                  Pair("db.port", "5432"), Pair("db.tls", "true"), Pair("db.username", "app")));
}

// Verifies what json_keys refuses, each with a message that names the
// problem (and the key), never a value.
TEST(SecretContentTest, JsonKeysRefusals) {
  const struct {
    std::string data;
    std::string message;
  } cases[] = {
      {absl::StrCat("password=", kPassword), "not valid JSON"},
      {absl::StrCat("\"", kPassword, "\""), "not an object"},
      {"[1, 2]", "not an object"},
      {"{}", "empty JSON object"},
      {absl::StrCat(R"({"a/b": ")", kPassword, "\"}"), "key \"a?b\" cannot be a file name"},
      {absl::StrCat(R"({"": ")", kPassword, "\"}"), "key \"\" cannot be a file name"},
      {absl::StrCat(R"({"pw": "x", "pw": ")", kPassword, "\"}"), "key \"pw\" more than once"},
      {absl::StrCat(R"({")", std::string(300, 'k'), R"(": 1})"), "longer than 255 bytes"},
      {std::string(40, '[') + std::string(40, ']'), "nests deeper"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.data.substr(0, 60));
    const auto result = toManagedCredential(secretValue(c.data), kJsonKeys, "e");
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument,
                                 AllOf(HasSubstr(c.message), HasSubstr("(version v7)"),
                                       Not(HasSubstr(kPassword)))));
  }
  std::string many = "{";
  for (size_t i = 0; i <= kMaxJsonKeysFiles; ++i)
    absl::StrAppend(&many, i ? "," : "", "\"k", i, "\":1");
  many += "}";
  EXPECT_THAT(splitJsonKeys(many, "p."),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 1000 files")));
}

// Verifies a RAM credentials profile keeps the strict RAMCredentials parsing.
TEST(SecretContentTest, RamCredentialsStayStrict) {
  const config::ProfileConfig ram = credsync::testing::profile("app", "acs/ram/user/app");
  const auto credential = toManagedCredential(
      secretValue(R"({"AccessKeyId":"LTAI5tKEY","AccessKeySecret":"KeySecretValue0123"})",
                  "RAMCredentials"),
      ram, "e");
  ASSERT_THAT(credential, IsOk());
  EXPECT_EQ(credential->kind, config::ProfileKind::kRamCredentials);
  EXPECT_EQ(credential->access_key_id, "LTAI5tKEY");
  EXPECT_EQ(credential->access_key_secret.reveal(), "KeySecretValue0123");
  EXPECT_TRUE(credential->files.empty());
  EXPECT_THAT(
      toManagedCredential(secretValue(R"({"AccessKeyId":"a","AccessKeySecret":"b"})"), ram, "e"),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace credsync::fetch
