#include "sidecar/sync/token_bucket.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/common/simulated_time_source.h"

namespace credsync::sync {
namespace {

// Verifies the official plug-ins' defaults: a burst of 5, then one call per
// 10 minutes.
TEST(TokenBucketTest, BurstThenRefill) {
  testing::SimulatedTimeSource time;
  TokenBucket bucket(5, absl::Minutes(10), time);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(bucket.tryTake()) << i;
  EXPECT_FALSE(bucket.tryTake());
  EXPECT_EQ(bucket.timeUntilNext(), absl::Minutes(10));
  time.advance(absl::Minutes(9));
  EXPECT_FALSE(bucket.tryTake());
  EXPECT_EQ(bucket.timeUntilNext(), absl::Minutes(1));
  time.advance(absl::Minutes(1));
  EXPECT_EQ(bucket.timeUntilNext(), absl::ZeroDuration());
  EXPECT_TRUE(bucket.tryTake());
  EXPECT_FALSE(bucket.tryTake());
}

// Verifies refill accrues whole intervals without losing the partial one,
// and never beyond capacity.
TEST(TokenBucketTest, RefillKeepsPartialProgressAndCaps) {
  testing::SimulatedTimeSource time;
  TokenBucket bucket(3, absl::Seconds(10), time);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(bucket.tryTake());
  time.advance(absl::Seconds(25));
  EXPECT_EQ(bucket.available(), 2);
  time.advance(absl::Seconds(5));
  EXPECT_EQ(bucket.available(), 3);
  time.advance(absl::Hours(10));
  EXPECT_EQ(bucket.available(), 3);
}

// Verifies a full bucket banks no time: after a long idle spell, draining it
// again still waits a whole interval for the next token.
TEST(TokenBucketTest, FullBucketBanksNoTime) {
  testing::SimulatedTimeSource time;
  TokenBucket bucket(1, absl::Minutes(10), time);
  time.advance(absl::Hours(1));
  ASSERT_TRUE(bucket.tryTake());
  EXPECT_FALSE(bucket.tryTake());
  EXPECT_EQ(bucket.timeUntilNext(), absl::Minutes(10));
}

// Verifies a wall-clock step does not refill the bucket: only monotonic time
// counts.
TEST(TokenBucketTest, WallClockStepDoesNotRefill) {
  testing::SimulatedTimeSource time;
  TokenBucket bucket(1, absl::Minutes(10), time);
  ASSERT_TRUE(bucket.tryTake());
  time.setSystemTime(time.systemTime() + absl::Hours(5));
  EXPECT_FALSE(bucket.tryTake());
}

// Verifies concurrent takers never get more tokens than the bucket holds.
TEST(TokenBucketTest, ConcurrentTakersShareCapacity) {
  testing::SimulatedTimeSource time;
  TokenBucket bucket(5, absl::Minutes(10), time);
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 10; ++j) {
        if (bucket.tryTake()) ++taken;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(taken, 5);
}

}  // namespace
}  // namespace credsync::sync
