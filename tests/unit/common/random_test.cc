#include "sidecar/common/random.h"

#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sidecar/common/mutex.h"
#include "tests/common/fake_random.h"

namespace credsync {
namespace {

// Verifies draws stay in [0, 1) and spread over it.
TEST(RandomTest, DrawsAreUniformInUnitInterval) {
  RandomPtr random = makeRandom();
  constexpr int kDraws = 10000;
  double sum = 0;
  int low_half = 0;
  std::set<double> distinct;
  for (int i = 0; i < kDraws; ++i) {
    const double value = random->uniform();
    ASSERT_GE(value, 0.0);
    ASSERT_LT(value, 1.0);
    sum += value;
    if (value < 0.5) ++low_half;
    distinct.insert(value);
  }
  // Loose bounds, dozens of standard deviations wide: they catch a constant
  // or a stuck generator, never chance.
  EXPECT_NEAR(sum / kDraws, 0.5, 0.1);
  EXPECT_NEAR(low_half, kDraws / 2, kDraws / 10);
  EXPECT_GT(distinct.size(), kDraws * 99 / 100);
}

// Verifies two generators are seeded apart, so pods started together do
// not draw the same jitter.
TEST(RandomTest, GeneratorsAreSeededApart) {
  RandomPtr first = makeRandom();
  RandomPtr second = makeRandom();
  std::vector<double> a;
  std::vector<double> b;
  for (int i = 0; i < 4; ++i) {
    a.push_back(first->uniform());
    b.push_back(second->uniform());
  }
  EXPECT_NE(a, b);
}

// Verifies uniformDuration scales a draw to [0, max) and is zero for a max
// that is not positive, without drawing.
TEST(RandomTest, UniformDurationScalesDraw) {
  testing::FakeRandom random(0.25);
  EXPECT_EQ(random.uniformDuration(absl::Minutes(4)), absl::Minutes(1));
  random.set(0.0);
  EXPECT_EQ(random.uniformDuration(absl::Minutes(4)), absl::ZeroDuration());
  random.set(0.999999);
  EXPECT_LT(random.uniformDuration(absl::Minutes(4)), absl::Minutes(4));
  const int draws = random.draws();
  EXPECT_EQ(random.uniformDuration(absl::ZeroDuration()), absl::ZeroDuration());
  EXPECT_EQ(random.uniformDuration(-absl::Seconds(1)), absl::ZeroDuration());
  EXPECT_EQ(random.draws(), draws);
}

// Verifies the real generator's uniformDuration stays below its bound.
TEST(RandomTest, RealUniformDurationStaysInRange) {
  RandomPtr random = makeRandom();
  for (int i = 0; i < 1000; ++i) {
    const absl::Duration drawn = random->uniformDuration(absl::Milliseconds(10));
    ASSERT_GE(drawn, absl::ZeroDuration());
    ASSERT_LT(drawn, absl::Milliseconds(10));
  }
}

// Verifies one generator serves concurrent callers (the engine and the
// identities share it): every draw in range, none lost to a data race.
TEST(RandomTest, SharedAcrossThreads) {
  RandomPtr random = makeRandom();
  constexpr int kThreads = 4;
  constexpr int kDraws = 5000;
  Mutex mutex;
  std::set<double> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      for (int i = 0; i < kDraws; ++i) mine.push_back(random->uniform());
      MutexLock lock(&mutex);
      seen.insert(mine.begin(), mine.end());
    });
  }
  for (std::thread& thread : threads) thread.join();
  MutexLock lock(&mutex);
  EXPECT_GE(*seen.begin(), 0.0);
  EXPECT_LT(*seen.rbegin(), 1.0);
  // A racy engine hands the same value to several threads.
  EXPECT_GT(seen.size(), kThreads * kDraws * 99 / 100);
}

}  // namespace
}  // namespace credsync
