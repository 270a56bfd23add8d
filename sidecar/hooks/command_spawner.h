#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace credsync::hooks {

// How a command ended: exactly one of an exit code or a signal.
struct ExitStatus {
  std::optional<int> exit_code;
  std::optional<int> signal;
};

// A started command, the leader of a process group of its own.
// Thread-compatible: one owner.
class ChildProcess {
 public:
  // Destroying a child that has not been seen to exit kills its whole
  // process group (SIGKILL) and reaps it.
  virtual ~ChildProcess() = default;
  // Waits up to `timeout` for the command to exit. When it has, kills what it
  // left running in its process group (a hook is a finished action, and
  // leftovers would outlive every bound), reaps it and returns how it ended;
  // later calls return the same. nullopt while it still runs.
  virtual std::optional<ExitStatus> waitFor(absl::Duration timeout) = 0;
  // Sends `signal` to the command's whole process group.
  virtual void signalGroup(int signal) = 0;
  virtual pid_t pid() const = 0;
};
using ChildProcessPtr = std::unique_ptr<ChildProcess>;

// Starts commands for command hooks. One production implementation
// (posix_spawn); tests use a fake. Thread-safe.
class CommandSpawner {
 public:
  virtual ~CommandSpawner() = default;
  // Starts argv (argv[0] searched in the PATH of `environment` when it has
  // no '/') with exactly `environment` ("NAME=value" entries), no shell, in
  // a new process group, stdin, stdout and stderr on /dev/null, no other
  // descriptor of credsync's, every signal at its default disposition and
  // none blocked. A program that cannot be started is an error
  // (NOT_FOUND for a missing one).
  virtual absl::StatusOr<ChildProcessPtr> spawn(const std::vector<std::string>& argv,
                                                const std::vector<std::string>& environment) = 0;
};
using CommandSpawnerPtr = std::unique_ptr<CommandSpawner>;

CommandSpawnerPtr makeCommandSpawner();

}  // namespace credsync::hooks
