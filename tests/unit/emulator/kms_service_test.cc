#include <string>
#include <variant>

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

  Json answer(const std::string& name, const std::string& stage = "ACSCurrent",
              const std::string& version_id = "") {
    const ApiResult result = secretValueAnswer(*world_.findSecret(name), stage, version_id);
    EXPECT_TRUE(std::holds_alternative<Json>(result));
    return std::holds_alternative<Json>(result) ? std::get<Json>(result) : Json();
  }
};

// Verifies a Generic text secret is answered as the API reference shows:
// SecretType Generic, SecretDataType text, the stored data, the version and
// its stages, and no rotation fields.
TEST_F(KmsServiceTest, GenericTextAnswer) {
  ASSERT_THAT(world_.createGenericSecret("db", R"({"password":"p1"})", "text", "v1"), IsOk());
  ASSERT_THAT(world_.putSecretValue("db", R"({"password":"p2"})", "v2"), IsOk());
  const Json current = answer("db");
  EXPECT_EQ(current["SecretType"], "Generic");
  EXPECT_EQ(current["SecretDataType"], "text");
  EXPECT_EQ(current["SecretData"], R"({"password":"p2"})");
  EXPECT_EQ(current["VersionId"], "v2");
  EXPECT_EQ(current["VersionStages"]["VersionStage"], Json::array({"ACSCurrent"}));
  EXPECT_FALSE(current.contains("NextRotationDate"));
  EXPECT_FALSE(current.contains("ExtendedConfig"));
  EXPECT_EQ(answer("db", "ACSPrevious")["VersionId"], "v1");
  // A Generic secret can be read by VersionId.
  EXPECT_EQ(answer("db", "ACSCurrent", "v1")["SecretData"], R"({"password":"p1"})");
}

// Verifies a binary secret's SecretData is the stored base64 text, marked
// binary; and a RAMCredentials secret ignores VersionId, as KMS does.
TEST_F(KmsServiceTest, BinaryAndManagedAnswers) {
  const std::string encoded = crypto::base64Encode(std::string("\x00\x01\x02", 3));
  ASSERT_THAT(world_.createGenericSecret("bin", encoded, "binary"), IsOk());
  const Json binary = answer("bin");
  EXPECT_EQ(binary["SecretDataType"], "binary");
  EXPECT_EQ(binary["SecretData"], encoded);

  ASSERT_THAT(world_.createSecret("ram", "u", 3600, std::nullopt), IsOk());
  const Json ram = answer("ram", "ACSCurrent", "no-such-version");
  EXPECT_EQ(ram["SecretType"], "RAMCredentials");
  EXPECT_TRUE(ram.contains("NextRotationDate"));
  const ApiResult unknown = secretValueAnswer(*world_.findSecret("bin"), "ACSCurrent", "nope");
  ASSERT_TRUE(std::holds_alternative<ApiError>(unknown));
  EXPECT_EQ(std::get<ApiError>(unknown).code, "Forbidden.ResourceNotFound");
}

}  // namespace
}  // namespace credsync::emulator
