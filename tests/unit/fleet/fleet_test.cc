// Drives the fleet simulation (bench/fleet) at small N, so that it cannot
// rot, and checks what a fleet of real credsync sidecars does against
// quotas: everyone gets a key, nobody exceeds what the quota admits, and a
// Refresh storm costs one upstream call per pod.
#include "bench/fleet/fleet.h"

#include "gtest/gtest.h"
#include "sidecar/common/logging.h"

namespace credsync::fleet {
namespace {

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override { log::setLevel(log::Level::kError); }
  void TearDown() override { log::setLevel(log::Level::kInfo); }

  static FleetOptions small(int pods) {
    FleetOptions options;
    options.pods = pods;
    options.refresh.startup_jitter = absl::Seconds(30);
    return options;
  }

  static std::unique_ptr<Fleet> make(const FleetOptions& options) {
    absl::StatusOr<std::unique_ptr<Fleet>> fleet = Fleet::create(options);
    EXPECT_TRUE(fleet.ok()) << fleet.status();
    return fleet.ok() ? *std::move(fleet) : nullptr;
  }

  // A fleet whose rollout has finished, every pod ready; null (and a
  // failure) otherwise.
  static std::unique_ptr<Fleet> rolledOut(const FleetOptions& options) {
    std::unique_ptr<Fleet> fleet = make(options);
    if (fleet == nullptr) return nullptr;
    const PhaseReport rollout = fleet->rollout(absl::Hours(1));
    EXPECT_EQ(rollout.pods.missing, 0);
    return rollout.pods.missing == 0 ? std::move(fleet) : nullptr;
  }
};

TEST_F(FleetTest, RolloutUnderTheQuotasCostsOneCallOfEachKindPerPod) {
  auto fleet = make(small(50));
  ASSERT_NE(fleet, nullptr);
  const PhaseReport rollout = fleet->rollout(absl::Hours(1));
  EXPECT_EQ(rollout.pods.reached, 50);
  EXPECT_EQ(rollout.pods.missing, 0);
  // Each pod's first fetch falls within the startup jitter.
  EXPECT_LE(rollout.pods.max, absl::Seconds(30));
  EXPECT_EQ(rollout.traffic.sts, 50);
  EXPECT_EQ(rollout.traffic.kms, 50);
  EXPECT_EQ(rollout.traffic.sts_throttled + rollout.traffic.kms_throttled, 0);
  EXPECT_EQ(rollout.traffic.retries, 0);
}

TEST_F(FleetTest, RolloutAboveTheStsQuotaWaitsForItAndNeverExceedsIt) {
  FleetOptions options = small(40);
  options.refresh.startup_jitter = absl::ZeroDuration();
  options.cloud.sts_per_minute = 10;
  auto fleet = make(options);
  ASSERT_NE(fleet, nullptr);
  const PhaseReport rollout = fleet->rollout(absl::Hours(1));
  EXPECT_EQ(rollout.pods.missing, 0);
  // 40 sessions at 10 a minute: the last cannot come before minute 3.
  EXPECT_GE(rollout.pods.max, absl::Minutes(3));
  EXPECT_GT(rollout.traffic.sts_throttled, 0);
  // Exactly one accepted exchange per pod: a session is never asked twice.
  EXPECT_EQ(rollout.traffic.sts - rollout.traffic.sts_throttled, 40);
  EXPECT_EQ(rollout.traffic.kms - rollout.traffic.kms_throttled, 40);
  // Throttling answers back off with a long cap: far fewer calls than a
  // 2 s..10 s retry loop of 40 pods over three minutes would make (~1,400).
  EXPECT_LT(rollout.traffic.sts, 400);
}

TEST_F(FleetTest, ScheduledRotationReachesEveryPodAfterTheRotationDelay) {
  auto fleet = rolledOut(small(30));
  ASSERT_NE(fleet, nullptr);
  const PhaseReport rotation = fleet->scheduledRotation(absl::Hours(1));
  EXPECT_EQ(rotation.pods.missing, 0);
  // refresh.rotation_delay 5m plus up to refresh.rotation_jitter 5m.
  EXPECT_GE(rotation.pods.p50, absl::Minutes(5));
  EXPECT_LE(rotation.pods.max, absl::Minutes(10));
  EXPECT_EQ(rotation.traffic.kms_throttled, 0);
}

TEST_F(FleetTest, EmergencyRefreshStormCostsOneKmsCallPerPod) {
  FleetOptions options = small(25);
  options.callers_per_pod = 6;
  auto fleet = rolledOut(options);
  ASSERT_NE(fleet, nullptr);
  const PhaseReport emergency = fleet->emergencyRotation(absl::Hours(1));
  EXPECT_EQ(emergency.pods.missing, 0);
  EXPECT_EQ(emergency.pods.max, absl::ZeroDuration());
  EXPECT_EQ(emergency.traffic.kms, 25);
  ASSERT_EQ(emergency.refresh_answers.size(), 1u);
  EXPECT_EQ(emergency.refresh_answers.at("refreshed"), 25 * 6);
}

TEST_F(FleetTest, EmergencyStormAboveTheKmsQuotaLeavesRetriesToTheBackoff) {
  FleetOptions options = small(40);
  options.cloud.kms_per_second = 4;
  options.callers_per_pod = 4;
  auto fleet = rolledOut(options);
  ASSERT_NE(fleet, nullptr);
  const PhaseReport emergency = fleet->emergencyRotation(absl::Hours(1));
  EXPECT_EQ(emergency.pods.missing, 0);
  EXPECT_GE(emergency.pods.max, absl::Seconds(9));  // 40 pods at 4 a second
  EXPECT_GT(emergency.traffic.kms_throttled, 0);
  EXPECT_EQ(emergency.traffic.kms - emergency.traffic.kms_throttled, 40);
  // The apps called Refresh every second while throttled; those calls wait
  // for the backoff's retry instead of adding their own: each pod makes
  // one call on demand, then only its scheduled retries.
  int64_t app_calls = 0;
  for (const auto& [outcome, count] : emergency.refresh_answers) app_calls += count;
  EXPECT_GT(app_calls, emergency.traffic.kms);
  EXPECT_GT(emergency.refresh_answers.count("UNAVAILABLE"), 0u);
  EXPECT_EQ(emergency.refresh_answers.count("RESOURCE_EXHAUSTED"), 0u);
}

TEST_F(FleetTest, SteadyStateFetchesAboutOncePerIntervalAndKeepsSessions) {
  auto fleet = rolledOut(small(40));
  ASSERT_NE(fleet, nullptr);
  const PhaseReport steady = fleet->steadyState(absl::Hours(3), absl::Hours(6));
  // refresh.interval 1h +- 10%: 40 pods over 6 hours.
  EXPECT_GE(steady.traffic.kms, 40 * 6 * 9 / 10);
  EXPECT_LE(steady.traffic.kms, 40 * 6 * 11 / 10);
  // A 1h session is stale 15 minutes (plus up to 6) before it ends, so
  // each hourly fetch finds it stale: one exchange per fetch, no more.
  EXPECT_EQ(steady.traffic.sts, steady.traffic.kms);
  EXPECT_EQ(steady.traffic.sts_throttled + steady.traffic.kms_throttled, 0);
}

TEST_F(FleetTest, TheSameSeedGivesTheSameFleet) {
  FleetOptions options = small(30);
  options.cloud.sts_per_minute = 12;
  auto first = make(options);
  auto second = make(options);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  const PhaseReport a = first->rollout(absl::Hours(1));
  const PhaseReport b = second->rollout(absl::Hours(1));
  EXPECT_EQ(a.pods.p50, b.pods.p50);
  EXPECT_EQ(a.pods.max, b.pods.max);
  EXPECT_EQ(a.traffic.sts, b.traffic.sts);
  EXPECT_EQ(a.traffic.wasted_retries, b.traffic.wasted_retries);
}

TEST_F(FleetTest, RefusesAnEmptyFleet) {
  FleetOptions options;
  options.pods = 0;
  EXPECT_FALSE(Fleet::create(options).ok());
}

}  // namespace
}  // namespace credsync::fleet
