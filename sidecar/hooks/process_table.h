#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace credsync::hooks {

// One live process as /proc shows it.
struct ProcessInfo {
  pid_t pid = 0;
  pid_t parent_pid = 0;
  std::string name;   // /proc/<pid>/comm: the executable's name, cut to 15 bytes
  std::string argv0;  // the first word of /proc/<pid>/cmdline; empty if unreadable
};

// The processes credsync can see (its own container's, or the whole pod's
// with shareProcessNamespace) and the means to signal them. One production
// implementation reads /proc; tests use a fake. Thread-compatible: the hook
// runner is its only user.
class ProcessTable {
 public:
  virtual ~ProcessTable() = default;
  // Every live process; zombies, which cannot act on a signal, are left out.
  // A process that exits during the scan is simply missing.
  virtual absl::StatusOr<std::vector<ProcessInfo>> list() const = 0;
  // kill(pid, signal). NOT_FOUND when the process is gone (ESRCH),
  // PERMISSION_DENIED when credsync may not signal it (EPERM: another user).
  virtual absl::Status sendSignal(pid_t pid, int signal) = 0;
  // credsync's own pid, which a hook never signals.
  virtual pid_t self() const = 0;
};
using ProcessTablePtr = std::unique_ptr<ProcessTable>;

// Reads `proc_root` ("/proc" in production; a test may point elsewhere).
ProcessTablePtr makeProcessTable(std::string proc_root = "/proc");

}  // namespace credsync::hooks
