#include "sidecar/common/signals.h"

#include <pthread.h>

namespace credsync {
namespace {

sigset_t stopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

}  // namespace

void blockStopSignals() {
  const sigset_t signals = stopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int waitForStopSignal() {
  const sigset_t signals = stopSignals();
  int received = 0;
  sigwait(&signals, &received);
  return received;
}

std::optional<int> waitForStopSignalFor(absl::Duration timeout) {
  const sigset_t signals = stopSignals();
  const timespec wait = absl::ToTimespec(timeout);
  const int received = sigtimedwait(&signals, nullptr, &wait);
  // -1: the time is up (EAGAIN), or a handled signal ended the wait (EINTR).
  if (received > 0) return received;
  return std::nullopt;
}

}  // namespace credsync
