#pragma once

#include "absl/time/time.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/time_source.h"

namespace credsync::sync {

// Rate-limits upstream calls made on an app's request (docs/design.md
// §3.4): up to `capacity` calls at once, then one more per `refill_every`,
// as the official managed-credentials plug-ins do (5 tokens, one per 10
// minutes). Refill is computed from the monotonic clock when asked, so an
// idle bucket costs nothing and a wall-clock step cannot refill it.
// Thread-safe.
class TokenBucket {
 public:
  TokenBucket(int capacity, absl::Duration refill_every, const TimeSource& time_source);

  // Takes a token if one is available.
  bool tryTake();
  // Tokens available now.
  int available() const;
  // How long until a token is available (zero when one is).
  absl::Duration timeUntilNext() const;

 private:
  void refillLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const int capacity_;
  const absl::Duration refill_every_;
  const TimeSource& time_source_;
  mutable Mutex mutex_;
  mutable int tokens_ ABSL_GUARDED_BY(mutex_);
  // When the partial refill in progress started.
  mutable MonotonicTime refill_start_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::sync
