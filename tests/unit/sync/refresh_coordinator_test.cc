#include "sidecar/sync/refresh_coordinator.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/api_error.h"
#include "tests/common/eventually.h"
#include "tests/common/fake_secret_source.h"
#include "tests/common/status_matchers.h"
#include "tests/common/sync_harness.h"
#include "tests/common/test_config.h"

namespace credsync::sync {
namespace {

using ::credsync::testing::configWithProfiles;
using ::credsync::testing::eventually;
using ::credsync::testing::genericProfile;
using ::credsync::testing::genericValue;
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

  // An empty failed key differs from every key: the key in the file is
  // answered, as the proto documents; naming no key never costs a fetch.
  answer = refresh("");
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->outcome, RefreshOutcome::kAlreadyCurrent);
  EXPECT_EQ(answer->access_key_id, "AK-2");
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
  EXPECT_EQ(upstreamCode(answer.status()), "Forbidden.NoPermission");
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

// Collects what start() answers.
struct Answered {
  Notification done;
  absl::StatusOr<RefreshAnswer> answer = absl::UnknownError("not answered");
  RefreshCallback callback() {
    return [this](absl::StatusOr<RefreshAnswer> result) {
      answer = std::move(result);
      done.Notify();
    };
  }
};

// Verifies the caller's patience (on the injected clock) and cancellation
// bound the wait, and bad requests are refused without a fetch.
TEST_F(RefreshCoordinatorTest, WaitsAreBoundedAndRequestsChecked) {
  start("AK-1");
  // Stop the driver: nothing will fetch.
  harness_->stopDriver();
  Answered timed_out;
  EXPECT_NE(
      harness_->coordinator().start({"app", "AK-1", ""}, absl::Seconds(30), timed_out.callback()),
      0u);
  EXPECT_FALSE(timed_out.done.HasBeenNotified());
  harness_->time().advance(absl::Seconds(31));
  ASSERT_TRUE(timed_out.done.WaitForNotificationWithTimeout(kPatience));
  EXPECT_THAT(timed_out.answer, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(harness_->coordinator().refresh({"app", "AK-1", ""}, kPatience, [] { return true; }),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(refresh("AK-1", "nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_THAT(refresh("AK-1", ""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(harness_->coordinator().waiting(), 0);
  EXPECT_EQ(harness_->source().callsOf("app"), 1);
}

// Verifies cancel() answers a waiting caller at once with CANCELLED, once,
// and stop() answers every caller still waiting.
TEST_F(RefreshCoordinatorTest, CancelAndStopAnswerWaiters) {
  start("AK-1");
  harness_->stopDriver();
  Answered cancelled;
  Answered stopped;
  const uint64_t id =
      harness_->coordinator().start({"app", "AK-1", ""}, kPatience, cancelled.callback());
  harness_->coordinator().start({"app", "AK-1", ""}, kPatience, stopped.callback());
  EXPECT_EQ(harness_->coordinator().waiting(), 2);
  harness_->coordinator().cancel(id);
  ASSERT_TRUE(cancelled.done.HasBeenNotified());
  EXPECT_THAT(cancelled.answer, StatusIs(absl::StatusCode::kCancelled));
  harness_->coordinator().cancel(id);  // already answered: ignored
  harness_->coordinator().stop();
  ASSERT_TRUE(stopped.done.HasBeenNotified());
  EXPECT_THAT(stopped.answer, StatusIs(absl::StatusCode::kCancelled, HasSubstr("shutting down")));
  Answered late;
  EXPECT_EQ(harness_->coordinator().start({"app", "AK-1", ""}, kPatience, late.callback()), 0u);
  EXPECT_THAT(late.answer, StatusIs(absl::StatusCode::kCancelled));
}

// Verifies waiting callers hold no thread: a thousand started from this one
// thread all wait on one fetch and are all answered by it.
TEST_F(RefreshCoordinatorTest, ThousandWaitersWithoutThreads) {
  start("AK-1");
  Notification release;
  harness_->kmsAnswers("app", {key("AK-2")});
  constexpr int kCallers = 1000;
  {
    MutexLock lock(&harness_->source().mutex);
    harness_->source().during_fetch = [&] { release.WaitForNotification(); };
  }
  std::vector<std::unique_ptr<Answered>> answers;
  for (int i = 0; i < kCallers; ++i) {
    answers.push_back(std::make_unique<Answered>());
    harness_->coordinator().start({"app", "AK-1", "storm"}, kPatience, answers.back()->callback());
  }
  EXPECT_EQ(harness_->coordinator().waiting(), kCallers);
  release.Notify();
  int causers = 0;
  for (const auto& answered : answers) {
    ASSERT_TRUE(answered->done.WaitForNotificationWithTimeout(kPatience));
    ASSERT_THAT(answered->answer, IsOk());
    EXPECT_EQ(answered->answer->access_key_id, "AK-2");
    causers += answered->answer->coalesced ? 0 : 1;
  }
  EXPECT_EQ(causers, 1);
  EXPECT_EQ(harness_->coordinator().waiting(), 0);
  EXPECT_EQ(harness_->source().callsOf("app"), 2);
  // The burst's memory is handed back once its calls have been freed: a
  // little later on the injected clock, and once.
  EXPECT_EQ(harness_->memoryReleases(), 0);
  harness_->time().advance(RefreshCoordinator::kReleaseDelay);
  EXPECT_TRUE(eventually([&] { return harness_->memoryReleases() == 1; }));
}

// A coordinator without a dispatcher thread (Deadlines::kCallerDriven, as
// the fleet simulation drives thousands of them): the test's thread runs
// the engine and the deadlines.
class CallerDrivenRefreshTest : public ::testing::Test {
 protected:
  CallerDrivenRefreshTest()
      : engine_(config_, source_, writer_, time_, random_),
        coordinator_(
            engine_, config_.refresh, time_, [this] { ++wakes_; }, nullptr,
            RefreshCoordinator::Deadlines::kCallerDriven) {}

  std::unique_ptr<Answered> call(absl::Duration patience) {
    auto answered = std::make_unique<Answered>();
    coordinator_.start({"app", "AK-1", "test"}, patience, answered->callback());
    return answered;
  }
  // Runs the engine at its next scheduled fetch.
  void runScheduled() {
    time_.advance(engine_.status().front().next_refresh - time_.systemTime());
    engine_.runDue();
  }

  config::Config config_ =
      configWithProfiles({profile("app", "acs/ram/user/app", /*is_default=*/true)});
  testing::FakeSecretSource source_;
  testing::FakeWriter writer_;
  testing::SimulatedTimeSource time_;
  testing::FakeRandom random_{0.5};
  int wakes_ = 0;
  SyncEngine engine_;
  RefreshCoordinator coordinator_;
};

// Verifies that after a throttled fetch a Refresh does not pull the
// backoff's retry earlier: a caller whose patience covers the retry waits
// for it and is answered by it; one whose patience does not is told at
// once, with the throttling mark and how long until the retry.
TEST_F(CallerDrivenRefreshTest, ThrottledFetchIsNotPulledEarlier) {
  const absl::Status throttled =
      markThrottled(absl::UnavailableError("KMS GetSecretValue: Rejected.Throttling"));
  source_.script["app"] = {key("AK-1"), throttled, throttled, key("AK-2")};
  engine_.runDue();
  ASSERT_TRUE(engine_.ready());

  std::unique_ptr<Answered> first = call(kPatience);
  EXPECT_EQ(wakes_, 1);
  engine_.runDue();  // the requested fetch, throttled
  ASSERT_TRUE(first->done.HasBeenNotified());
  EXPECT_THAT(first->answer, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(isThrottled(first->answer.status()));

  std::unique_ptr<Answered> joined = call(kPatience);  // the retry is 4 s away
  std::unique_ptr<Answered> hurried = call(absl::Seconds(1));
  EXPECT_FALSE(joined->done.HasBeenNotified());
  ASSERT_TRUE(hurried->done.HasBeenNotified());
  EXPECT_THAT(hurried->answer, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("throttling")));
  EXPECT_TRUE(isThrottled(hurried->answer.status()));
  EXPECT_EQ(RefreshCoordinator::retryAfter(hurried->answer.status()), absl::Seconds(4));
  EXPECT_EQ(wakes_, 1);
  EXPECT_EQ(source_.callsOf("app"), 2);

  runScheduled();  // throttled again, 4 s later
  ASSERT_TRUE(joined->done.HasBeenNotified());
  EXPECT_THAT(joined->answer, StatusIs(absl::StatusCode::kUnavailable));

  std::unique_ptr<Answered> last = call(kPatience);
  runScheduled();  // 7 s later: the new key
  ASSERT_TRUE(last->done.HasBeenNotified());
  ASSERT_THAT(last->answer, IsOk());
  EXPECT_EQ(last->answer->access_key_id, "AK-2");
  EXPECT_TRUE(last->answer->coalesced);
  EXPECT_EQ(wakes_, 1);
  EXPECT_EQ(source_.callsOf("app"), 4);
}

// Verifies a caller-driven coordinator answers expired waiters when asked,
// and its stop() answers the rest.
TEST_F(CallerDrivenRefreshTest, DeadlinesAndStopWithoutADispatcher) {
  source_.script["app"] = {key("AK-1")};
  engine_.runDue();
  std::unique_ptr<Answered> brief = call(absl::Seconds(5));
  std::unique_ptr<Answered> patient = call(absl::Minutes(5));
  EXPECT_EQ(coordinator_.waiting(), 2);
  time_.advance(absl::Seconds(6));
  coordinator_.answerExpired();
  ASSERT_TRUE(brief->done.HasBeenNotified());
  EXPECT_THAT(brief->answer, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_FALSE(patient->done.HasBeenNotified());
  coordinator_.stop();
  ASSERT_TRUE(patient->done.HasBeenNotified());
  EXPECT_THAT(patient->answer, StatusIs(absl::StatusCode::kCancelled));
}

// Verifies a few answers at once do not release memory.
TEST_F(RefreshCoordinatorTest, SmallBatchesDoNotReleaseMemory) {
  start("AK-1");
  harness_->kmsAnswers("app", {key("AK-2")});
  ASSERT_THAT(refresh("AK-1"), IsOk());
  harness_->time().advance(RefreshCoordinator::kReleaseDelay * 2);
  absl::SleepFor(absl::Milliseconds(300));  // longer than a dispatcher pass
  EXPECT_EQ(harness_->memoryReleases(), 0);
}

// A generic profile "db" beside "app": Refresh speaks of secret versions.
class GenericRefreshTest : public RefreshCoordinatorTest {
 protected:
  void startGeneric(const std::string& first_version) {
    config_ = configWithProfiles(
        {profile("app", "acs/ram/user/app", /*is_default=*/true),
         genericProfile("db", "db/main", config::GenericFormat::kJsonKeys, "db.")});
    config_.refresh.on_demand_burst = 2;
    harness_ = std::make_unique<SyncHarness>(config_);
    harness_->start({{"app", {key("AK-1")}},
                     {"db", {genericValue(first_version, {{"db.password", first_version}})}}});
    ASSERT_TRUE(harness_->engine().ready());
  }
  absl::StatusOr<RefreshAnswer> refreshVersion(const std::string& failed_version) {
    RefreshRequest request{"db", "", "test"};
    request.failed_version_id = failed_version;
    return harness_->coordinator().refresh(request, kPatience);
  }
};

// Verifies a generic profile's Refresh naming an old version is answered
// from memory with the version in the files, and an empty one (the version
// in the files) fetches once and answers with the new version.
TEST_F(GenericRefreshTest, VersionsReplaceKeyIds) {
  startGeneric("v1");
  harness_->kmsAnswers("db", {genericValue("v2", {{"db.password", "v2"}})});
  absl::StatusOr<RefreshAnswer> answer = refreshVersion("");
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->outcome, RefreshOutcome::kRefreshed);
  EXPECT_EQ(answer->version_id, "v2");
  EXPECT_TRUE(answer->access_key_id.empty());
  EXPECT_EQ(harness_->writer().files().at("db.password"), "v2");
  EXPECT_EQ(harness_->source().callsOf("db"), 2);

  answer = refreshVersion("v1");
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->outcome, RefreshOutcome::kAlreadyCurrent);
  EXPECT_EQ(answer->version_id, "v2");
  EXPECT_EQ(harness_->source().callsOf("db"), 2);
}

// Verifies that when KMS has no newer version the caller learns so
// (FAILED_PRECONDITION naming the version), and the rate limit applies.
TEST_F(GenericRefreshTest, SameVersionIsFailedPreconditionAndRateLimited) {
  startGeneric("v1");
  EXPECT_THAT(refreshVersion(""),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("version v1")));
  EXPECT_THAT(refreshVersion("v1"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(refreshVersion(""), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(harness_->source().callsOf("db"), 3);
}

}  // namespace
}  // namespace credsync::sync
