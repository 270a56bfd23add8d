#include "sidecar/fetch/circuit_breaker.h"

#include <algorithm>

namespace credsync::fetch {

absl::string_view circuitStateName(CircuitState state) {
  switch (state) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

bool CircuitBreaker::tryAcquire() {
  MutexLock lock(&mutex_);
  switch (state_) {
    case CircuitState::kClosed:
      return true;
    case CircuitState::kHalfOpen:
      return false;  // the probe is out
    case CircuitState::kOpen:
      if (time_source_.monotonicTime() < open_until_) return false;
      state_ = CircuitState::kHalfOpen;
      return true;
  }
  return true;
}

void CircuitBreaker::recordSuccess() {
  MutexLock lock(&mutex_);
  state_ = CircuitState::kClosed;
  consecutive_failures_ = 0;
  current_open_for_ = absl::ZeroDuration();
}

void CircuitBreaker::recordFailure() {
  MutexLock lock(&mutex_);
  if (options_.failure_threshold <= 0) return;
  const MonotonicTime now = time_source_.monotonicTime();
  if (state_ == CircuitState::kHalfOpen) {
    // The probe failed: the endpoint is still down; wait twice as long.
    current_open_for_ = std::min(current_open_for_ * 2, options_.max_open_for);
    openLocked(now);
    return;
  }
  if (state_ == CircuitState::kOpen) return;  // a call that started before it opened
  if (++consecutive_failures_ >= options_.failure_threshold) {
    current_open_for_ = std::min(options_.open_for, options_.max_open_for);
    openLocked(now);
  }
}

void CircuitBreaker::openLocked(MonotonicTime now) {
  state_ = CircuitState::kOpen;
  open_until_ = now + absl::ToChronoNanoseconds(current_open_for_);
  ++times_opened_;
}

CircuitState CircuitBreaker::state() const {
  MutexLock lock(&mutex_);
  return state_;
}

absl::Duration CircuitBreaker::remainingOpen() const {
  MutexLock lock(&mutex_);
  if (state_ != CircuitState::kOpen) return absl::ZeroDuration();
  const MonotonicTime now = time_source_.monotonicTime();
  if (now >= open_until_) return absl::ZeroDuration();
  return absl::FromChrono(open_until_ - now);
}

uint64_t CircuitBreaker::timesOpened() const {
  MutexLock lock(&mutex_);
  return times_opened_;
}

}  // namespace credsync::fetch
