#pragma once

#include <signal.h>

#include <optional>

#include "absl/time/time.h"

namespace credsync {

// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it
// starts afterwards) and ignores SIGPIPE. Call before any thread exists;
// then waitForStopSignal() is the one place that sees a stop request.
void blockStopSignals();

// Waits for SIGTERM or SIGINT; returns the signal number.
int waitForStopSignal();

// Waits up to `timeout` for SIGTERM or SIGINT (blocked by blockStopSignals());
// returns the signal number, or nullopt when none came in time (or a
// handled signal ended the wait early).
std::optional<int> waitForStopSignalFor(absl::Duration timeout);

}  // namespace credsync
