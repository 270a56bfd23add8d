// credsync: keeps a pod supplied with Alibaba Cloud managed RAM credentials.
// This file is only the process entry; the commands live in sidecar/cli,
// which the tests link.
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "sidecar/cli/cli.h"
#include "sidecar/config/config.h"

int main(int argc, char** argv) {
  // Debian's abseil is built with deadlock detection on, which records lock
  // order on every Mutex acquisition (visible in a perf profile of Refresh,
  // bench/run P1). Instead, clang's -Wthread-safety checks in CI that every
  // guarded field is used under its lock (the clang tree builds every
  // library), and the TSan tree's deadlock detector reports lock-order
  // inversions (the order is written down in sync/refresh_coordinator.h).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return credsync::cli::runCommandLine(std::vector<std::string>(argv + 1, argv + argc),
                                       credsync::config::processEnvironment());
}
