#pragma once

#include <chrono>

#include "absl/time/time.h"

namespace credsync {

using MonotonicTime = std::chrono::steady_clock::time_point;

// The one way production code learns the time (Envoy's TimeSource). Wall-clock
// time stamps requests and is compared with upstream expiries; monotonic time
// measures durations and drives timers. Tests inject SimulatedTimeSource
// (tests/common) and advance it by hand, so no unit test sleeps.
// Implementations are thread-safe.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual absl::Time systemTime() const = 0;
  virtual MonotonicTime monotonicTime() const = 0;
};

// Reads the operating system's clocks; the only place in sidecar/ that does.
class RealTimeSource : public TimeSource {
 public:
  absl::Time systemTime() const override;
  MonotonicTime monotonicTime() const override;
};

}  // namespace credsync
