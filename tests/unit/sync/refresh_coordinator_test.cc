#include "sidecar/sync/refresh_coordinator.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/api_error.h"
#include "tests/common/fake_secret_source.h"
#include "tests/common/status_matchers.h"
#include "tests/common/sync_harness.h"
#include "tests/common/test_config.h"

namespace credsync::sync {
namespace {

using ::credsync::testing::configWithProfiles;
using ::credsync::testing::IsOk;
using ::credsync::testing::key;
using ::credsync::testing::profile;
using ::credsync::testing::StatusIs;
using ::credsync::testing::SyncHarness;
using ::testing::HasSubstr;

constexpr absl::Duration kPatience = absl::Seconds(20);

// The engine on the sync harness, whose driver thread runs what is due
// whenever the coordinator wakes it, as SyncRunner does in production.
class RefreshCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.refresh.on_demand_burst = 5;
    config_.refresh.on_demand_refill = absl::Minutes(10);
  }

  // Builds the engine from config_, writes the first key and starts the
  // driver.
  void start(const std::string& first_key) {
    harness_ = std::make_unique<SyncHarness>(config_);
    harness_->start({{"app", {key(first_key)}}});
    ASSERT_TRUE(harness_->engine().ready());
  }
  absl::StatusOr<RefreshAnswer> refresh(const std::string& failed_key,
                                        const std::string& profile = "app") {
    return harness_->coordinator().refresh({profile, failed_key, "test"}, kPatience);
  }

  config::Config config_ =
      configWithProfiles({profile("app", "acs/ram/user/app", /*is_default=*/true)});
  std::unique_ptr<SyncHarness> harness_;
};

// Verifies a caller naming a key that is no longer in the file is answered
// from memory, without a fetch.
TEST_F(RefreshCoordinatorTest, StaleKeyIsAnsweredFromMemory) {
  start("AK-2");
  absl::StatusOr<RefreshAnswer> answer = refresh("AK-1");
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->outcome, RefreshOutcome::kAlreadyCurrent);
  EXPECT_EQ(answer->access_key_id, "AK-2");
  EXPECT_EQ(answer->generation, 1u);
  EXPECT_EQ(harness_->source().callsOf("app"), 1);
}

// Verifies the key in the file being the failed one causes one fetch, and
// the answer carries the new key and generation.
TEST_F(RefreshCoordinatorTest, FailedKeyCausesOneFetch) {
  start("AK-1");
  harness_->kmsAnswers("app", {key("AK-2")});
  absl::StatusOr<RefreshAnswer> answer = refresh("AK-1");
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->outcome, RefreshOutcome::kRefreshed);
  EXPECT_EQ(answer->access_key_id, "AK-2");
  EXPECT_EQ(answer->generation, 2u);
  EXPECT_FALSE(answer->coalesced);
  EXPECT_THAT(harness_->writer().current(), HasSubstr("AK-2"));
  EXPECT_EQ(harness_->source().callsOf("app"), 2);
}

// Verifies "default" names the default profile.
TEST_F(RefreshCoordinatorTest, DefaultNamesTheDefaultProfile) {
  start("AK-1");
  absl::StatusOr<RefreshAnswer> answer = refresh("AK-0", "default");
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->profile, "app");
}

// Verifies any number of concurrent callers cause exactly one fetch,
// whatever the interleaving: each either joins the pending or in-flight
// fetch or arrives after it and is answered from memory.
TEST_F(RefreshCoordinatorTest, ConcurrentCallersShareOneFetch) {
  start("AK-1");
  harness_->kmsAnswers("app", {key("AK-2")});
  constexpr int kCallers = 64;
  std::vector<absl::StatusOr<RefreshAnswer>> answers(kCallers, absl::UnknownError("not run"));
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] { answers[i] = refresh("AK-1"); });
  }
  for (std::thread& caller : callers) caller.join();
  int causers = 0;
  for (const auto& answer : answers) {
    ASSERT_THAT(answer, IsOk());
    EXPECT_EQ(answer->access_key_id, "AK-2");
    if (answer->outcome == RefreshOutcome::kRefreshed && !answer->coalesced) ++causers;
  }
  EXPECT_EQ(causers, 1);
  EXPECT_EQ(harness_->source().callsOf("app"), 2);
}

// Verifies callers that arrive while the fetch is held in flight all join it.
TEST_F(RefreshCoordinatorTest, CallersDuringAFetchJoinIt) {
  start("AK-1");
  Notification release;
  harness_->kmsAnswers("app", {key("AK-2")});
  {
    MutexLock lock(&harness_->source().mutex);
    harness_->source().during_fetch = [&] {
      // Hold the fetch until every caller waits on it.
      while (harness_->coordinator().waiting() < 8) std::this_thread::yield();
      release.Notify();
    };
  }
  std::vector<absl::StatusOr<RefreshAnswer>> answers(8, absl::UnknownError("not run"));
  std::vector<std::thread> callers;
  for (int i = 0; i < 8; ++i) callers.emplace_back([&, i] { answers[i] = refresh("AK-1"); });
  for (std::thread& caller : callers) caller.join();
  EXPECT_TRUE(release.HasBeenNotified());
  int coalesced = 0;
  for (const auto& answer : answers) {
    ASSERT_THAT(answer, IsOk());
    EXPECT_EQ(answer->outcome, RefreshOutcome::kRefreshed);
    coalesced += answer->coalesced ? 1 : 0;
  }
  EXPECT_EQ(coalesced, 7);
  EXPECT_EQ(harness_->source().callsOf("app"), 2);
}

// Verifies KMS still returning the failed key is FAILED_PRECONDITION, and
// that it costs a token each time until the bucket is empty, which then
// reports when to retry; the bucket refills with time.
TEST_F(RefreshCoordinatorTest, UnchangedKeyAndRateLimit) {
  config_.refresh.on_demand_burst = 2;
  start("AK-1");
  harness_->kmsAnswers("app", {key("AK-1")});
  EXPECT_THAT(refresh("AK-1"), StatusIs(absl::StatusCode::kFailedPrecondition,
                                        HasSubstr("KMS still returns AccessKey AK-1")));
  EXPECT_THAT(refresh("AK-1"), StatusIs(absl::StatusCode::kFailedPrecondition));
  const absl::StatusOr<RefreshAnswer> limited = refresh("AK-1");
  EXPECT_THAT(limited, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("retry in 10m")));
  EXPECT_EQ(RefreshCoordinator::retryAfter(limited.status()), absl::Minutes(10));
  EXPECT_EQ(harness_->source().callsOf("app"), 3);

  // A stale key is answered even with the bucket empty.
  EXPECT_THAT(refresh("AK-0"), IsOk());

  harness_->time().advance(absl::Minutes(10));
  harness_->kmsAnswers("app", {key("AK-2")});
  absl::StatusOr<RefreshAnswer> answer = refresh("AK-1");
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->access_key_id, "AK-2");
}

// Verifies a retryable fetch failure is UNAVAILABLE and says the previous
// key stays; a permission failure is FAILED_PRECONDITION with the upstream
// code kept.
TEST_F(RefreshCoordinatorTest, FetchFailuresMapToCodes) {
  start("AK-1");
  harness_->kmsAnswers("app", {absl::UnavailableError("GetSecretValue: connection reset")});
  EXPECT_THAT(refresh("AK-1"), StatusIs(absl::StatusCode::kUnavailable,
                                        HasSubstr("the previous key stays in the file")));

  absl::Status denied = alibaba::statusFromApiError(
      "GetSecretValue", alibaba::ApiErrorInfo{403, "Forbidden.NoPermission", "denied", "req-1"});
  harness_->kmsAnswers("app", {denied});
  const absl::StatusOr<RefreshAnswer> answer = refresh("AK-1");
  EXPECT_THAT(answer, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(alibaba::upstreamCode(answer.status()), "Forbidden.NoPermission");
  EXPECT_THAT(harness_->writer().current(), HasSubstr("AK-1"));
}

// Verifies a key fetched but not written is reported as such.
TEST_F(RefreshCoordinatorTest, UnwrittenKeyIsUnavailable) {
  start("AK-1");
  harness_->writer().failNext(absl::InternalError("disk full"));
  harness_->kmsAnswers("app", {key("AK-2")});
  EXPECT_THAT(refresh("AK-1"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("could not be written")));
}

// Verifies a caller that joined a fetch already in flight when it arrived,
// and saw it return the failed key, asks for one fetch of its own: the
// earlier fetch may have been sent before the key was revoked.
TEST_F(RefreshCoordinatorTest, JoinedEarlierFetchIsFollowedByOwnFetch) {
  start("AK-1");
  absl::StatusOr<RefreshAnswer> answer = absl::UnknownError("not run");
  std::thread caller;
  Notification spawned;
  harness_->kmsAnswers("app", {key("AK-1"), key("AK-2")});
  {
    MutexLock lock(&harness_->source().mutex);
    harness_->source().during_fetch = [&] {
      caller = std::thread([&] { answer = refresh("AK-1"); });
      spawned.Notify();
      while (harness_->coordinator().waiting() < 1) std::this_thread::yield();
    };
  }
  // A scheduled fetch, not one the caller asked for.
  harness_->refreshNow("app");
  spawned.WaitForNotification();
  caller.join();
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->access_key_id, "AK-2");
  EXPECT_EQ(harness_->source().callsOf("app"), 3);
}

// Verifies the caller's patience and cancellation bound the wait, and bad
// requests are refused without a fetch.
TEST_F(RefreshCoordinatorTest, WaitsAreBoundedAndRequestsChecked) {
  start("AK-1");
  // Stop the driver: nothing will fetch.
  harness_->stopDriver();
  EXPECT_THAT(harness_->coordinator().refresh({"app", "AK-1", ""}, absl::Milliseconds(300)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(harness_->coordinator().refresh({"app", "AK-1", ""}, kPatience, [] { return true; }),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(refresh("AK-1", "nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_THAT(refresh("AK-1", ""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(harness_->source().callsOf("app"), 1);
}

}  // namespace
}  // namespace credsync::sync
