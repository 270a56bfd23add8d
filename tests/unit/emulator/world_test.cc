#include "tests/emulator/world.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"

namespace credsync::emulator {
namespace {

using ::credsync::testing::IsOk;
using ::testing::ElementsAre;

class WorldTest : public ::testing::Test {
 protected:
  testing::SimulatedTimeSource time_;
  World world_{time_, "1234567890123456", "cn-hangzhou"};
};

// Verifies a new secret has one ACSCurrent version whose key is live.
TEST_F(WorldTest, CreateSecretIssuesLiveKey) {
  auto version = world_.createSecret("acs/ram/user/app", "app", 604800, std::nullopt);
  ASSERT_THAT(version, IsOk());
  EXPECT_THAT(version->stages, ElementsAre("ACSCurrent"));
  EXPECT_EQ(world_.lookupKey(version->access_key_id).kind, KeyLookup::Kind::kActive);
  auto secret = world_.findSecret("acs/ram/user/app");
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(secret->next_rotation, time_.systemTime() + absl::Seconds(604800));
  EXPECT_FALSE(world_.createSecret("acs/ram/user/app", "app", 60, std::nullopt).ok());
}

// Verifies rotation: the new key is ACSCurrent, the old one ACSPrevious and
// still live, and the one before that is deleted (two keys per RAM user).
TEST_F(WorldTest, RotationKeepsTwoKeys) {
  auto first = world_.createSecret("s", "u", 3600, std::nullopt);
  ASSERT_THAT(first, IsOk());
  auto second = world_.rotateSecret("s", false);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->previous_access_key_id, first->access_key_id);
  auto third = world_.rotateSecret("s", false);
  ASSERT_THAT(third, IsOk());

  auto secret = world_.findSecret("s");
  ASSERT_EQ(secret->versions.size(), 2u);
  EXPECT_THAT(secret->versions[0].stages, ElementsAre("ACSPrevious"));
  EXPECT_EQ(secret->versions[0].access_key_id, second->access_key_id);
  EXPECT_THAT(secret->versions[1].stages, ElementsAre("ACSCurrent"));
  EXPECT_EQ(world_.lookupKey(first->access_key_id).kind, KeyLookup::Kind::kNotFound);
  EXPECT_EQ(world_.lookupKey(second->access_key_id).kind, KeyLookup::Kind::kActive);
  EXPECT_EQ(world_.lookupKey(third->access_key_id).kind, KeyLookup::Kind::kActive);
}

// Verifies an emergency rotation revokes the previous key at once.
TEST_F(WorldTest, EmergencyRotationRevokesPrevious) {
  auto first = world_.createSecret("s", "u", 3600, std::nullopt);
  auto second = world_.rotateSecret("s", /*revoke_previous=*/true);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(world_.lookupKey(first->access_key_id).kind, KeyLookup::Kind::kNotFound);
  EXPECT_EQ(world_.lookupKey(second->access_key_id).kind, KeyLookup::Kind::kActive);
}

// Verifies a caller-chosen version id names the new version, and repeating it
// does not rotate again (KMS RotateSecret's idempotency).
TEST_F(WorldTest, RotationWithVersionIdIsIdempotent) {
  auto first = world_.createSecret("s", "u", 3600, std::nullopt);
  auto rotated = world_.rotateSecret("s", false, "v2");
  ASSERT_THAT(rotated, IsOk());
  EXPECT_EQ(rotated->version_id, "v2");
  auto again = world_.rotateSecret("s", false, "v2");
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->access_key_id, rotated->access_key_id);
  EXPECT_EQ(again->previous_access_key_id, first->access_key_id);
  EXPECT_EQ(world_.findSecret("s")->versions.size(), 2u);
}

// Verifies sessions look like STS keys, expire at the requested time, and
// inherit the role's readable secrets.
TEST_F(WorldTest, SessionsCarryRolePermissions) {
  Role role;
  role.arn = "acs:ram::1:role/r";
  role.secrets = {"a", "b"};
  world_.addRole(role);
  Session session = world_.issueSession(role, absl::Seconds(900));
  EXPECT_EQ(session.access_key_id.rfind("STS.", 0), 0u);
  EXPECT_EQ(session.expiration, time_.systemTime() + absl::Seconds(900));
  KeyLookup lookup = world_.lookupKey(session.access_key_id);
  EXPECT_TRUE(lookup.principal.is_session);
  EXPECT_THAT(lookup.principal.secrets, ElementsAre("a", "b"));
}

// Verifies the clock offset moves the emulator's notion of now.
TEST_F(WorldTest, ClockOffsetSkewsNow) {
  const absl::Time before = world_.now();
  world_.setClockOffset(absl::Minutes(30));
  EXPECT_EQ(world_.now() - before, absl::Minutes(30));
}

// Verifies Generic secrets: a put version becomes ACSCurrent, the previous
// current ACSPrevious, the one before keeps no stage; versions ids are
// unique; binary data must be base64; Generic secrets do not rotate and
// RAMCredentials secrets take no put.
TEST_F(WorldTest, GenericSecretVersions) {
  auto first = world_.createGenericSecret("db", R"({"password":"p1"})", "text");
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(first->stages, ElementsAre("ACSCurrent"));
  auto second = world_.putSecretValue("db", R"({"password":"p2"})", "v-two");
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->version_id, "v-two");
  auto third = world_.putSecretValue("db", R"({"password":"p3"})");
  ASSERT_THAT(third, IsOk());
  const auto secret = world_.findSecret("db");
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(secret->type, kSecretTypeGeneric);
  ASSERT_EQ(secret->versions.size(), 3u);
  EXPECT_TRUE(secret->versions[0].stages.empty());
  EXPECT_THAT(secret->versions[1].stages, ElementsAre("ACSPrevious"));
  EXPECT_THAT(secret->versions[2].stages, ElementsAre("ACSCurrent"));
  EXPECT_EQ(secret->versions[2].data.reveal(), R"({"password":"p3"})");
  EXPECT_EQ(world_.putSecretValue("db", "x", "v-two").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(world_.putSecretValue("nope", "x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(world_.rotateSecret("db", false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(world_.createGenericSecret("bin", "not base64!", "binary").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(world_.createGenericSecret("t", "x", "hex").status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_THAT(world_.createSecret("ram", "u", 3600, std::nullopt), IsOk());
  EXPECT_EQ(world_.putSecretValue("ram", "x").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace credsync::emulator
