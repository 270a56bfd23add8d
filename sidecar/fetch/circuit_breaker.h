#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/time_source.h"

namespace credsync::fetch {

struct CircuitBreakerOptions {
  // Consecutive failures that open the circuit; 0 turns the breaker off
  // (it never opens).
  int failure_threshold = 3;
  // How long the circuit stays open the first time; every failed probe
  // doubles it, up to max_open_for.
  absl::Duration open_for = absl::Seconds(30);
  absl::Duration max_open_for = absl::Minutes(5);
};

enum class CircuitState {
  kClosed,    // calls go through; failures are counted
  kOpen,      // calls are skipped until the open period ends
  kHalfOpen,  // the open period ended: one probe call is out
};
absl::string_view circuitStateName(CircuitState state);

// The health of one upstream endpoint, as the classic circuit breaker keeps
// it (closed -> open after `failure_threshold` consecutive failures -> after
// the open period one probe -> closed on its success, open again for twice as
// long on its failure). Only failures that say something about the endpoint
// count (the network, timeouts, 5xx, throttling); callers decide which.
// Thread-safe. Time is the injected source's monotonic clock.
class CircuitBreaker {
 public:
  CircuitBreaker(const CircuitBreakerOptions& options, const TimeSource& time_source)
      : options_(options), time_source_(time_source) {}

  // Whether a call may go now. Closed: always. Open: not before the open
  // period ends; then the first caller gets the probe (the state becomes
  // half-open) and later callers are refused until the probe reports.
  bool tryAcquire();
  // The call reached the endpoint and it answered (even with an error that
  // is not the endpoint's fault). Closes the circuit.
  void recordSuccess();
  // The call failed in a way that counts against the endpoint.
  void recordFailure();

  CircuitState state() const;
  // How long until an open circuit admits its probe (zero unless open).
  absl::Duration remainingOpen() const;
  // How many times the circuit has opened (including re-openings after a
  // failed probe), for metrics.
  uint64_t timesOpened() const;

 private:
  void openLocked(MonotonicTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const CircuitBreakerOptions options_;
  const TimeSource& time_source_;
  mutable Mutex mutex_;
  CircuitState state_ ABSL_GUARDED_BY(mutex_) = CircuitState::kClosed;
  int consecutive_failures_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::Duration current_open_for_ ABSL_GUARDED_BY(mutex_);
  MonotonicTime open_until_ ABSL_GUARDED_BY(mutex_){};
  uint64_t times_opened_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace credsync::fetch
