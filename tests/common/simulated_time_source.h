#pragma once

#include "sidecar/common/mutex.h"
#include "sidecar/common/time_source.h"

namespace credsync::testing {

// A TimeSource that moves only when a test advances it; both clocks move
// together. Thread-safe.
class SimulatedTimeSource : public TimeSource {
 public:
  explicit SimulatedTimeSource(absl::Time start = absl::FromUnixSeconds(1767225600))
      : system_(start) {}

  absl::Time systemTime() const override {
    MutexLock lock(&mutex_);
    return system_;
  }
  MonotonicTime monotonicTime() const override {
    MutexLock lock(&mutex_);
    return monotonic_;
  }
  void advance(absl::Duration by) {
    MutexLock lock(&mutex_);
    system_ += by;
    monotonic_ += absl::ToChronoNanoseconds(by);
  }
  // Moves only the wall clock, as an NTP step or skew would.
  void setSystemTime(absl::Time time) {
    MutexLock lock(&mutex_);
    system_ = time;
  }

 private:
  mutable Mutex mutex_;
  absl::Time system_ ABSL_GUARDED_BY(mutex_);
  MonotonicTime monotonic_ ABSL_GUARDED_BY(mutex_){};
};

}  // namespace credsync::testing
