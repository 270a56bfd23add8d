#pragma once

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace credsync::testing {

// Polls `condition` every few milliseconds until it holds (true) or
// `patience` of real time passes (false). For conditions another thread or
// process brings about, such as a gRPC server's state; a bound, never a
// synchronisation by itself.
template <typename Condition>
bool eventually(Condition condition, absl::Duration patience = absl::Seconds(20)) {
  const absl::Time give_up = absl::Now() + patience;
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

}  // namespace credsync::testing
