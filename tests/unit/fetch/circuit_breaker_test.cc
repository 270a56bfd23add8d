#include "sidecar/fetch/circuit_breaker.h"

#include "gtest/gtest.h"
#include "tests/common/simulated_time_source.h"

namespace credsync::fetch {
namespace {

using ::credsync::testing::SimulatedTimeSource;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreakerOptions options(int threshold, absl::Duration open_for,
                                absl::Duration max_open_for) {
    CircuitBreakerOptions options;
    options.failure_threshold = threshold;
    options.open_for = open_for;
    options.max_open_for = max_open_for;
    return options;
  }
  SimulatedTimeSource time_;
};

// Verifies the circuit opens only after `threshold` consecutive failures,
// and that a success in between resets the count.
TEST_F(CircuitBreakerTest, OpensAfterConsecutiveFailures) {
  CircuitBreaker breaker(options(3, absl::Seconds(30), absl::Minutes(5)), time_);
  breaker.recordFailure();
  breaker.recordFailure();
  breaker.recordSuccess();
  breaker.recordFailure();
  breaker.recordFailure();
  EXPECT_EQ(breaker.state(), CircuitState::kClosed);
  EXPECT_TRUE(breaker.tryAcquire());
  breaker.recordFailure();
  EXPECT_EQ(breaker.state(), CircuitState::kOpen);
  EXPECT_EQ(breaker.timesOpened(), 1u);
  EXPECT_EQ(breaker.remainingOpen(), absl::Seconds(30));
  EXPECT_FALSE(breaker.tryAcquire());
}

// Verifies one probe is admitted when the open period ends, others are
// refused while it is out, and its success closes the circuit.
TEST_F(CircuitBreakerTest, AdmitsOneProbeThenCloses) {
  CircuitBreaker breaker(options(1, absl::Seconds(30), absl::Minutes(5)), time_);
  breaker.recordFailure();
  time_.advance(absl::Seconds(29));
  EXPECT_FALSE(breaker.tryAcquire());
  EXPECT_EQ(breaker.remainingOpen(), absl::Seconds(1));
  time_.advance(absl::Seconds(1));
  EXPECT_TRUE(breaker.tryAcquire());
  EXPECT_EQ(breaker.state(), CircuitState::kHalfOpen);
  EXPECT_FALSE(breaker.tryAcquire());
  breaker.recordSuccess();
  EXPECT_EQ(breaker.state(), CircuitState::kClosed);
  EXPECT_TRUE(breaker.tryAcquire());
}

// Verifies each failed probe doubles the open period, capped at the maximum,
// and a later success starts again from the base period.
TEST_F(CircuitBreakerTest, FailedProbesBackOffUpToMaximum) {
  CircuitBreaker breaker(options(1, absl::Seconds(10), absl::Seconds(25)), time_);
  breaker.recordFailure();
  EXPECT_EQ(breaker.remainingOpen(), absl::Seconds(10));
  for (absl::Duration expected : {absl::Seconds(20), absl::Seconds(25), absl::Seconds(25)}) {
    time_.advance(breaker.remainingOpen());
    ASSERT_TRUE(breaker.tryAcquire());
    breaker.recordFailure();
    EXPECT_EQ(breaker.remainingOpen(), expected);
  }
  EXPECT_EQ(breaker.timesOpened(), 4u);
  time_.advance(breaker.remainingOpen());
  ASSERT_TRUE(breaker.tryAcquire());
  breaker.recordSuccess();
  breaker.recordFailure();
  EXPECT_EQ(breaker.remainingOpen(), absl::Seconds(10));
}

// Verifies a failure reported while open (a call that started before it
// opened) neither extends the period nor counts as an opening.
TEST_F(CircuitBreakerTest, LateFailureWhileOpenIsIgnored) {
  CircuitBreaker breaker(options(1, absl::Seconds(30), absl::Minutes(5)), time_);
  breaker.recordFailure();
  time_.advance(absl::Seconds(10));
  breaker.recordFailure();
  EXPECT_EQ(breaker.remainingOpen(), absl::Seconds(20));
  EXPECT_EQ(breaker.timesOpened(), 1u);
}

// Verifies threshold 0 never opens.
TEST_F(CircuitBreakerTest, ThresholdZeroNeverOpens) {
  CircuitBreaker breaker(options(0, absl::Seconds(30), absl::Minutes(5)), time_);
  for (int i = 0; i < 100; ++i) breaker.recordFailure();
  EXPECT_EQ(breaker.state(), CircuitState::kClosed);
  EXPECT_TRUE(breaker.tryAcquire());
}

// Verifies the state names used in metrics.
TEST_F(CircuitBreakerTest, StateNames) {
  EXPECT_EQ(circuitStateName(CircuitState::kClosed), "closed");
  EXPECT_EQ(circuitStateName(CircuitState::kOpen), "open");
  EXPECT_EQ(circuitStateName(CircuitState::kHalfOpen), "half_open");
}

}  // namespace
}  // namespace credsync::fetch
