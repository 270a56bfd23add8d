#include "sidecar/identity/ecs_ram_role_provider.h"

#include <atomic>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fake_http_client.h"
#include "tests/common/fake_random.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"

namespace credsync::identity {
namespace {

using ::credsync::testing::FakeHttpClient;
using ::credsync::testing::FakeRandom;
using ::credsync::testing::IsOk;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;

std::string formatTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// Answers like the metadata service: a token for every PUT, a new key for
// every credentials GET, expiring `lifetime_` from the simulated now.
class EcsRamRoleProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.type = config::IdentityType::kEcsRamRole;
    config_.ecs_metadata_endpoint = "http://127.0.0.1:9";
    config_.ecs_role_name = "node-role";
    http_.setHandler([this](const http::Request& request) -> absl::StatusOr<http::Response> {
      http::Response response;
      response.status = 200;
      if (request.method == "PUT") {
        ++token_puts_;
        response.body = "metadata-token";
        return response;
      }
      const int n = ++fetches_;
      response.body =
          absl::StrCat(R"({"Code":"Success","AccessKeyId":"STS.ecs)", n,
                       R"(","AccessKeySecret":"secret","SecurityToken":"token","Expiration":")",
                       formatTime(time_.systemTime() + lifetime_), R"(","LastUpdated":")",
                       formatTime(time_.systemTime()), R"("})");
      return response;
    });
  }
  CredentialProviderPtr make() { return makeEcsRamRoleProvider(config_, http_, time_, random_); }

  config::IdentityConfig config_;
  FakeHttpClient http_;
  SimulatedTimeSource time_;
  FakeRandom random_{0.0};
  absl::Duration lifetime_ = absl::Hours(6);
  std::atomic<int> token_puts_{0};
  std::atomic<int> fetches_{0};
};

// Verifies the session is fetched once (token first) and cached.
TEST_F(EcsRamRoleProviderTest, FetchesOnceAndCaches) {
  CredentialProviderPtr provider = make();
  ASSERT_THAT(provider->credentials().status(), IsOk());
  ASSERT_THAT(provider->credentials().status(), IsOk());
  EXPECT_EQ(token_puts_.load(), 1);
  EXPECT_EQ(fetches_.load(), 1);
  const IdentityStatus status = provider->status();
  EXPECT_EQ(status.type, "ecs_ram_role");
  EXPECT_EQ(status.session_expiration, time_.systemTime() + lifetime_);
  EXPECT_TRUE(status.last_error.ok());
}

// Verifies a 6-hour session refreshes exactly 15 minutes before Expiration
// (no jitter), as the OIDC identity does.
TEST_F(EcsRamRoleProviderTest, RefreshesFifteenMinutesBeforeExpiry) {
  CredentialProviderPtr provider = make();
  ASSERT_EQ(provider->credentials()->access_key_id, "STS.ecs1");
  time_.advance(absl::Hours(6) - absl::Minutes(15) - absl::Seconds(1));
  EXPECT_EQ(provider->credentials()->access_key_id, "STS.ecs1");
  time_.advance(absl::Seconds(1));
  EXPECT_EQ(provider->credentials()->access_key_id, "STS.ecs2");
  EXPECT_EQ(token_puts_.load(), 2);
}

// Verifies a short session (30 minutes) refreshes at 2/3 of its lifetime.
TEST_F(EcsRamRoleProviderTest, RefreshesShortSessionAtTwoThirds) {
  lifetime_ = absl::Minutes(30);
  CredentialProviderPtr provider = make();
  ASSERT_EQ(provider->credentials()->access_key_id, "STS.ecs1");
  time_.advance(absl::Minutes(20) - absl::Seconds(1));
  EXPECT_EQ(provider->credentials()->access_key_id, "STS.ecs1");
  time_.advance(absl::Seconds(1));
  EXPECT_EQ(provider->credentials()->access_key_id, "STS.ecs2");
}

// Verifies that without the fallback a failing token PUT leaves no session
// and reports the error in status().
TEST_F(EcsRamRoleProviderTest, HardenedOnlyFailureIsReported) {
  config_.ecs_imdsv1_fallback = false;
  http_.enqueueResponse(403, "");
  CredentialProviderPtr provider = make();
  EXPECT_THAT(provider->credentials().status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("hardened mode")));
  EXPECT_THAT(provider->status().last_error,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("hardened mode")));
  EXPECT_EQ(fetches_.load(), 0);
}

// Verifies invalidate() forces a new fetch.
TEST_F(EcsRamRoleProviderTest, InvalidateForcesNewFetch) {
  CredentialProviderPtr provider = make();
  ASSERT_THAT(provider->credentials().status(), IsOk());
  provider->invalidate();
  EXPECT_EQ(provider->credentials()->access_key_id, "STS.ecs2");
}

}  // namespace
}  // namespace credsync::identity
