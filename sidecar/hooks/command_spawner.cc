#include "sidecar/hooks/command_spawner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sidecar/common/errno_text.h"

namespace credsync::hooks {
namespace {

// The longest single sleep while a child runs without a pidfd to poll.
constexpr absl::Duration kFallbackSlice = absl::Milliseconds(10);

int openPidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
  }
#endif
  return -1;
}

class SpawnedChild : public ChildProcess {
 public:
  explicit SpawnedChild(pid_t pid) : pid_(pid), pidfd_(openPidfd(pid)) {}

  ~SpawnedChild() override {
    if (!status_.has_value()) {
      ::kill(-pid_, SIGKILL);
      int ignored = 0;
      while (::waitpid(pid_, &ignored, 0) < 0 && errno == EINTR) {
      }
      reapGroup();
    }
    if (pidfd_ >= 0) ::close(pidfd_);
  }

  std::optional<ExitStatus> waitFor(absl::Duration timeout) override {
    if (status_.has_value()) return status_;
    if (!exitedWithin(timeout)) return std::nullopt;
    // The leader is a zombie until reaped, which keeps its pid and thus the
    // group id from being reused: signal the group first, then reap.
    ::kill(-pid_, SIGKILL);
    int raw = 0;
    pid_t reaped = 0;
    do {
      reaped = ::waitpid(pid_, &raw, 0);
    } while (reaped < 0 && errno == EINTR);
    reapGroup();
    // Neither field set (reported as a failure) if someone else reaped it.
    ExitStatus status;
    if (reaped == pid_ && WIFEXITED(raw)) status.exit_code = WEXITSTATUS(raw);
    if (reaped == pid_ && WIFSIGNALED(raw)) status.signal = WTERMSIG(raw);
    status_ = status;
    return status_;
  }

  void signalGroup(int signal) override {
    if (!status_.has_value()) ::kill(-pid_, signal);
  }

  pid_t pid() const override { return pid_; }

 private:
  // Whether the leader has exited, without reaping it.
  bool hasExited() {
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
      if (errno != EINTR) return true;  // ECHILD: nothing left to wait for
    }
    return info.si_pid == pid_;
  }

  // Relative waits only: the hook runner measures time on its TimeSource and
  // calls this in short slices, so no clock is read here.
  bool exitedWithin(absl::Duration timeout) {
    if (hasExited()) return true;
    if (pidfd_ >= 0) {
      // Readable once the process exits; an EINTR only ends the wait early.
      pollfd fd{pidfd_, POLLIN, 0};
      const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(
          std::clamp(timeout, absl::ZeroDuration(), absl::Hours(1)), absl::Milliseconds(1)));
      ::poll(&fd, 1, static_cast<int>(ms));
      return hasExited();
    }
    for (absl::Duration slept; slept < timeout; slept += kFallbackSlice) {
      ::usleep(static_cast<useconds_t>(absl::ToInt64Microseconds(kFallbackSlice)));
      if (hasExited()) return true;
    }
    return false;
  }

  // Reaps the members of the (just killed) group that are credsync's
  // children: when credsync is its container's pid 1, orphans of the command
  // are re-parented to it, and nobody else would. Bounded (a process stuck in
  // the kernel may take long to die), so the hook thread cannot hang here.
  void reapGroup() {
    constexpr int kAttempts = 200;  // 1 ms apart
    for (int attempt = 0; attempt < kAttempts;) {
      int ignored = 0;
      const pid_t reaped = ::waitpid(-pid_, &ignored, WNOHANG);
      if (reaped > 0) continue;
      if (reaped < 0 && errno == EINTR) continue;
      if (reaped < 0) return;  // ECHILD: no child of ours left in the group
      ::usleep(1000);
      ++attempt;
    }
  }

  const pid_t pid_;
  const int pidfd_;
  std::optional<ExitStatus> status_;
};

class PosixCommandSpawner : public CommandSpawner {
 public:
  absl::StatusOr<ChildProcessPtr> spawn(const std::vector<std::string>& argv,
                                        const std::vector<std::string>& environment) override {
    if (argv.empty() || argv.front().empty()) {
      return absl::InvalidArgumentError("the command is empty");
    }
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    std::vector<char*> env;
    env.reserve(environment.size() + 1);
    for (const std::string& entry : environment) env.push_back(const_cast<char*>(entry.c_str()));
    env.push_back(nullptr);

    // posix_spawn (clone with CLONE_VM|CLONE_VFORK in glibc) is safe in a
    // multi-threaded process, unlike arbitrary code after fork().
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    // credsync blocks SIGTERM and SIGINT in every thread (sigwait) and
    // ignores SIGPIPE; both would be inherited across exec, and a command
    // that cannot be terminated makes the timeout useless.
    sigset_t none;
    sigemptyset(&none);
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    // A group of its own, so a timeout ends everything the command started.
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(
        &attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    // The command may print the credentials it was told about: its output
    // goes nowhere, never into credsync's log.
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    // Whatever credsync has open (sockets, the control socket) stays out,
    // even a descriptor some library opened without O_CLOEXEC.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);

    // posix_spawnp searches credsync's PATH; the command's own PATH is the
    // same value (the hook runner passes it through).
    pid_t pid = 0;
    const int error = ::posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (error != 0) {
      const std::string message = absl::StrCat("cannot start ", argv[0], ": ", errnoText(error));
      if (error == ENOENT) return absl::NotFoundError(message);
      if (error == EACCES) return absl::PermissionDeniedError(message);
      return absl::InternalError(message);
    }
    return std::make_unique<SpawnedChild>(pid);
  }
};

}  // namespace

CommandSpawnerPtr makeCommandSpawner() { return std::make_unique<PosixCommandSpawner>(); }

}  // namespace credsync::hooks
