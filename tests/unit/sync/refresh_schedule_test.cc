#include "gtest/gtest.h"
#include "sidecar/sync/sync_engine.h"
#include "tests/common/fake_random.h"

namespace credsync::sync {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1767225600);

config::RefreshConfig defaults() { return config::RefreshConfig(); }

// Verifies the slow interval is jittered symmetrically by the configured
// fraction.
TEST(RefreshScheduleTest, SlowIntervalJitter) {
  testing::FakeRandom random(0.0);
  RefreshSchedule schedule(defaults(), random);
  EXPECT_EQ(schedule.afterSuccess(kNow, std::nullopt), kNow + absl::Minutes(54));
  random.set(0.5);
  EXPECT_EQ(schedule.afterSuccess(kNow, std::nullopt), kNow + absl::Hours(1));
  random.set(0.999999);
  EXPECT_LT(schedule.afterSuccess(kNow, std::nullopt), kNow + absl::Minutes(66));
  EXPECT_GT(schedule.afterSuccess(kNow, std::nullopt), kNow + absl::Minutes(65));
}

// Verifies a rotation due sooner than the slow interval is followed a few
// minutes after NextRotationDate, and a far or past one is ignored.
TEST(RefreshScheduleTest, FollowsNextRotationDate) {
  testing::FakeRandom random(0.0);
  RefreshSchedule schedule(defaults(), random);
  EXPECT_EQ(schedule.afterSuccess(kNow, kNow + absl::Minutes(10)), kNow + absl::Minutes(15));
  random.set(0.5);
  EXPECT_EQ(schedule.afterSuccess(kNow, kNow + absl::Minutes(10)),
            kNow + absl::Minutes(17) + absl::Seconds(30));
  EXPECT_EQ(schedule.afterSuccess(kNow, kNow + absl::Hours(7 * 24)), kNow + absl::Hours(1));
  EXPECT_EQ(schedule.afterSuccess(kNow, kNow - absl::Minutes(1)), kNow + absl::Hours(1));
}

// Verifies retryable failures back off as full jitter over
// min(10 s, 2 s * 2^(n-1)), and the others fall back to the slow interval.
TEST(RefreshScheduleTest, BackoffBoundsAndSlowFallback) {
  testing::FakeRandom random(0.999999);
  RefreshSchedule schedule(defaults(), random);
  const absl::Duration expected_ceiling[] = {absl::Seconds(2), absl::Seconds(4), absl::Seconds(8),
                                             absl::Seconds(10), absl::Seconds(10)};
  for (int failures = 1; failures <= 5; ++failures) {
    const absl::Duration delay = schedule.afterFailure(kNow, failures, true) - kNow;
    EXPECT_LE(delay, expected_ceiling[failures - 1]) << failures;
    EXPECT_GT(delay, expected_ceiling[failures - 1] * 0.99) << failures;
  }
  EXPECT_LE(schedule.afterFailure(kNow, 1000, true) - kNow, absl::Seconds(10));
  random.set(0.0);
  EXPECT_EQ(schedule.afterFailure(kNow, 3, true) - kNow, absl::Milliseconds(100));
  EXPECT_EQ(schedule.afterFailure(kNow, 1, false) - kNow, absl::Minutes(54));
}

// Verifies the first fetch waits at most the startup jitter.
// Verifies a throttling answer backs off with decorrelated jitter: each
// delay uniform in [2 s, min(1 min, 3 x the previous)], growing from the
// pod's own last draw up to the longer cap.
TEST(RefreshScheduleTest, ThrottlingBacksOffWithDecorrelatedJitterToALongerCap) {
  testing::FakeRandom random(0.999999);
  RefreshSchedule schedule(defaults(), random);
  absl::Duration previous;
  // At the top of each range: 6 s, 18 s, 54 s, then the 60 s cap.
  const absl::Duration expected[] = {absl::Seconds(6), absl::Seconds(18), absl::Seconds(54),
                                     absl::Seconds(60), absl::Seconds(60)};
  for (absl::Duration delay : expected) {
    const absl::Time next = schedule.afterThrottling(kNow, previous);
    EXPECT_NEAR(absl::ToDoubleSeconds(next - kNow), absl::ToDoubleSeconds(delay), 0.01);
    EXPECT_EQ(previous, next - kNow);
  }
  // Past a plain retry's 10 s cap, and never below the initial backoff.
  random.set(0.0);
  EXPECT_EQ(schedule.afterThrottling(kNow, previous), kNow + absl::Seconds(2));
  EXPECT_EQ(previous, absl::Seconds(2));
  random.set(0.5);
  EXPECT_EQ(schedule.afterThrottling(kNow, previous), kNow + absl::Seconds(4));

  config::RefreshConfig short_cap = defaults();
  short_cap.throttled_max_backoff = absl::Seconds(2);
  RefreshSchedule capped(short_cap, random);
  absl::Duration none;
  EXPECT_EQ(capped.afterThrottling(kNow, none), kNow + absl::Seconds(2));
}

TEST(RefreshScheduleTest, StartupJitter) {
  testing::FakeRandom random(0.5);
  config::RefreshConfig config = defaults();
  EXPECT_EQ(RefreshSchedule(config, random).first(kNow), kNow);
  config.startup_jitter = absl::Seconds(10);
  EXPECT_EQ(RefreshSchedule(config, random).first(kNow), kNow + absl::Seconds(5));
}

}  // namespace
}  // namespace credsync::sync
