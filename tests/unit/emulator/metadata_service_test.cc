#include "tests/emulator/metadata_service.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/simulated_time_source.h"

namespace credsync::emulator {
namespace {

using ::testing::StartsWith;

constexpr char kRoleArn[] = "acs:ram::1234567890123456:role/node-role";

class MetadataServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Role role;
    role.arn = kRoleArn;
    role.secrets = {"acs/ram/user/app"};
    world_.addRole(role);
    MetadataConfig config;
    config.role_name = "node-role";
    config.role_arn = kRoleArn;
    config.session_duration_seconds = 3600;
    metadata_.configure(config);
  }
  void setMode(MetadataMode mode) {
    MetadataConfig config = metadata_.config();
    config.mode = mode;
    metadata_.configure(config);
  }

  testing::SimulatedTimeSource time_;
  World world_{time_, "1234567890123456", "cn-hangzhou"};
  MetadataService metadata_{world_};
};

// Verifies the token PUT checks its TTL header (1..21600) and the token is
// accepted on GETs until it expires.
TEST_F(MetadataServiceTest, TokenTtlAndExpiry) {
  EXPECT_EQ(metadata_.putToken(std::nullopt).status, 400);
  EXPECT_EQ(metadata_.putToken("0").status, 400);
  EXPECT_EQ(metadata_.putToken("21601").failure, "InvalidTokenTtl");
  const MetadataAnswer token = metadata_.putToken("60");
  ASSERT_EQ(token.status, 200);
  EXPECT_EQ(metadata_.getRoleName(token.body).body, "node-role");
  time_.advance(absl::Seconds(60));
  EXPECT_EQ(metadata_.getRoleName(token.body).failure, "InvalidToken");
  EXPECT_EQ(metadata_.getRoleName(std::string("forged")).status, 401);
}

// Verifies every token handed out is given to the secret recorder.
TEST_F(MetadataServiceTest, RecordsTokens) {
  class Recorder : public SecretRecorder {
   public:
    void record(absl::string_view kind, absl::string_view secret) override {
      if (kind == "metadata_token") tokens.emplace_back(secret);
    }
    std::vector<std::string> tokens;
  } recorder;
  world_.setSecretRecorder(&recorder);
  const MetadataAnswer token = metadata_.putToken("21600");
  world_.setSecretRecorder(nullptr);
  EXPECT_EQ(recorder.tokens, std::vector<std::string>{token.body});
}

// Verifies the three modes: both takes GETs with or without a token;
// hardened_only refuses GETs without one; normal_only refuses the PUT.
TEST_F(MetadataServiceTest, Modes) {
  EXPECT_EQ(metadata_.getRoleName(std::nullopt).status, 200);
  setMode(MetadataMode::kHardenedOnly);
  EXPECT_EQ(metadata_.getRoleName(std::nullopt).failure, "TokenRequired");
  EXPECT_EQ(metadata_.getCredentials("node-role", std::nullopt).status, 401);
  setMode(MetadataMode::kNormalOnly);
  EXPECT_EQ(metadata_.putToken("21600").failure, "TokenRefused");
  EXPECT_EQ(metadata_.getCredentials("node-role", std::nullopt).status, 200);
}

// Verifies the credentials answer: the SDKs' fields, a real session of the
// role (the authenticator finds it), Expiration in the session's lifetime.
TEST_F(MetadataServiceTest, CredentialsAreARealSession) {
  const MetadataAnswer answer = metadata_.getCredentials("node-role", std::nullopt);
  ASSERT_EQ(answer.status, 200);
  const nlohmann::json body = nlohmann::json::parse(answer.body);
  EXPECT_EQ(body["Code"], "Success");
  EXPECT_THAT(body["AccessKeyId"].get<std::string>(), StartsWith("STS."));
  EXPECT_THAT(body["SecurityToken"].get<std::string>(), StartsWith("CAIS"));
  EXPECT_EQ(body["Expiration"],
            absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time_.systemTime() + absl::Hours(1),
                             absl::UTCTimeZone()));
  EXPECT_TRUE(body.contains("LastUpdated"));
  const KeyLookup lookup = world_.lookupKey(body["AccessKeyId"].get<std::string>());
  ASSERT_EQ(lookup.kind, KeyLookup::Kind::kActive);
  EXPECT_TRUE(lookup.principal.is_session);
  EXPECT_EQ(lookup.principal.secrets, std::vector<std::string>{"acs/ram/user/app"});
  EXPECT_EQ(metadata_.getCredentials("other-role", std::nullopt).failure, "RoleNotAttached");
}

// Verifies an instance without a role answers 404 on discovery.
TEST_F(MetadataServiceTest, NoRoleAttached) {
  metadata_.configure(MetadataConfig{});
  EXPECT_EQ(metadata_.getRoleName(std::nullopt).status, 404);
}

}  // namespace
}  // namespace credsync::emulator
