#include <string>
#include <variant>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/crypto.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"
#include "tests/emulator/services.h"

namespace credsync::emulator {
namespace {

using ::credsync::testing::IsOk;

class KmsServiceTest : public ::testing::Test {
 protected:
  testing::SimulatedTimeSource time_;
  World world_{time_, "1234567890123456", "cn-hangzhou"};

  std::variant<SecretValue, ApiError> read(const std::string& name, const std::string& stage,
                                           const std::string& version_id) {
    SecretValueQuery query;
    query.secret_name = name;
    query.version_stage = stage;
    query.version_id = version_id;
    return readSecretValue(world_, {"*"}, query);
  }
  SecretValue answer(const std::string& name, const std::string& stage = "",
                     const std::string& version_id = "") {
    auto result = read(name, stage, version_id);
    EXPECT_TRUE(std::holds_alternative<SecretValue>(result));
    return std::holds_alternative<SecretValue>(result) ? std::get<SecretValue>(result)
                                                       : SecretValue();
  }
};

// Verifies a Generic text secret is answered as the API reference shows:
// SecretType Generic, SecretDataType text, the stored data, the version and
// its stages, and no rotation fields.
TEST_F(KmsServiceTest, GenericTextAnswer) {
  ASSERT_THAT(world_.createGenericSecret("db", R"({"password":"p1"})", "text", "v1"), IsOk());
  ASSERT_THAT(world_.putSecretValue("db", R"({"password":"p2"})", "v2"), IsOk());
  const SecretValue current = answer("db");
  EXPECT_EQ(current.secret_type, "Generic");
  EXPECT_EQ(current.secret_data_type, "text");
  EXPECT_EQ(current.secret_data, R"({"password":"p2"})");
  EXPECT_EQ(current.version_id, "v2");
  EXPECT_EQ(current.version_stages, std::vector<std::string>{"ACSCurrent"});
  EXPECT_EQ(current.next_rotation_date, "");
  EXPECT_EQ(current.extended_config, "");
  EXPECT_EQ(answer("db", "ACSPrevious").version_id, "v1");
  // A Generic secret can be read by VersionId; with a stage too, the
  // version must carry it.
  EXPECT_EQ(answer("db", "", "v1").secret_data, R"({"password":"p1"})");
  EXPECT_TRUE(std::holds_alternative<ApiError>(read("db", "ACSCurrent", "v1")));
}

// Verifies a binary secret's SecretData is the stored base64 text, marked
// binary; and a RAMCredentials secret ignores VersionId, as KMS does.
TEST_F(KmsServiceTest, BinaryAndManagedAnswers) {
  const std::string encoded = crypto::base64Encode(std::string("\x00\x01\x02", 3));
  ASSERT_THAT(world_.createGenericSecret("bin", encoded, "binary"), IsOk());
  const SecretValue binary = answer("bin");
  EXPECT_EQ(binary.secret_data_type, "binary");
  EXPECT_EQ(binary.secret_data, encoded);

  ASSERT_THAT(world_.createSecret("ram", "u", 3600, std::nullopt), IsOk());
  const SecretValue ram = answer("ram", "ACSCurrent", "no-such-version");
  EXPECT_EQ(ram.secret_type, "RAMCredentials");
  EXPECT_NE(ram.next_rotation_date, "");
  const auto unknown = read("bin", "", "nope");
  ASSERT_TRUE(std::holds_alternative<ApiError>(unknown));
  EXPECT_EQ(std::get<ApiError>(unknown).code, "Forbidden.ResourceNotFound");
}

}  // namespace
}  // namespace credsync::emulator
