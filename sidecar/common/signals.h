#pragma once

#include <signal.h>

namespace credsync {

// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it
// starts afterwards) and ignores SIGPIPE. Call before any thread exists;
// then waitForStopSignal() is the one place that sees a stop request.
void blockStopSignals();

// Waits for SIGTERM or SIGINT; returns the signal number.
int waitForStopSignal();

}  // namespace credsync
