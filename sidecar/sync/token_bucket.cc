#include "sidecar/sync/token_bucket.h"

#include <algorithm>

namespace credsync::sync {

TokenBucket::TokenBucket(int capacity, absl::Duration refill_every, const TimeSource& time_source)
    : capacity_(std::max(1, capacity)),
      refill_every_(std::max(refill_every, absl::Nanoseconds(1))),
      time_source_(time_source),
      tokens_(capacity_),
      refill_start_(time_source.monotonicTime()) {}

void TokenBucket::refillLocked() const {
  const MonotonicTime now = time_source_.monotonicTime();
  if (tokens_ >= capacity_) {
    // A full bucket does not bank time towards tokens it cannot hold.
    refill_start_ = now;
    return;
  }
  const absl::Duration elapsed = absl::FromChrono(now - refill_start_);
  absl::Duration remainder;  // IDivDuration requires somewhere to put it
  const int64_t earned = absl::IDivDuration(elapsed, refill_every_, &remainder);
  if (earned <= 0) return;
  tokens_ = static_cast<int>(std::min<int64_t>(capacity_, tokens_ + earned));
  refill_start_ = tokens_ >= capacity_
                      ? now
                      : refill_start_ + absl::ToChronoNanoseconds(refill_every_ * earned);
}

bool TokenBucket::tryTake() {
  MutexLock lock(&mutex_);
  refillLocked();
  if (tokens_ == 0) return false;
  if (tokens_ == capacity_) refill_start_ = time_source_.monotonicTime();
  --tokens_;
  return true;
}

int TokenBucket::available() const {
  MutexLock lock(&mutex_);
  refillLocked();
  return tokens_;
}

absl::Duration TokenBucket::timeUntilNext() const {
  MutexLock lock(&mutex_);
  refillLocked();
  if (tokens_ > 0) return absl::ZeroDuration();
  const absl::Duration elapsed = absl::FromChrono(time_source_.monotonicTime() - refill_start_);
  return refill_every_ - elapsed;
}

}  // namespace credsync::sync
