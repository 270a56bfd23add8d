#include "sidecar/hooks/hook_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sidecar/common/logging.h"

namespace credsync::hooks {
namespace {

std::string signalName(int signal) {
  const char* abbreviation = sigabbrev_np(signal);
  return abbreviation != nullptr ? absl::StrCat("SIG", abbreviation) : absl::StrCat(signal);
}

absl::string_view baseName(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// A pid file holds a decimal pid and perhaps a newline; anything else, or
// more than a few bytes, is not one.
enum class PidFile { kPid, kMissing, kInvalid };
PidFile readPidFile(const std::string& path, pid_t& pid) {
  // O_NONBLOCK: a FIFO at the path must not hang the hook thread.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno == ENOENT ? PidFile::kMissing : PidFile::kInvalid;
  char buffer[32];
  ssize_t n = 0;
  do {
    n = ::read(fd, buffer, sizeof(buffer));
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0 || n == static_cast<ssize_t>(sizeof(buffer))) return PidFile::kInvalid;
  const absl::string_view text = absl::StripAsciiWhitespace(absl::string_view(buffer, n));
  if (!absl::SimpleAtoi(text, &pid) || pid <= 0) return PidFile::kInvalid;
  return PidFile::kPid;
}

}  // namespace

HookRunner::HookRunner(std::vector<config::HookConfig> hooks, HookRunnerOptions options,
                       ProcessTable& processes, CommandSpawner& spawner,
                       const TimeSource& time_source, HookObserver observer)
    : hooks_(std::move(hooks)),
      options_(std::move(options)),
      processes_(processes),
      spawner_(spawner),
      time_source_(time_source),
      observer_(std::move(observer)),
      has_run_(hooks_.size(), false) {
  MutexLock lock(&mutex_);
  pending_.resize(hooks_.size());
}

HookRunner::~HookRunner() { stop(absl::ZeroDuration()); }

void HookRunner::start() {
  if (hooks_.empty() || thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
}

void HookRunner::stop(absl::Duration grace) {
  {
    MutexLock lock(&mutex_);
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = time_source_.monotonicTime() + absl::ToChronoNanoseconds(grace);
    }
  }
  if (thread_.joinable()) thread_.join();
}

void HookRunner::onProfileChanged(const sync::ProfileChange& change) {
  if (hooks_.empty()) return;
  MutexLock lock(&mutex_);
  staged_.emplace_back(change.profile, change.generation);
}

void HookRunner::onRoundFinished() {
  MutexLock lock(&mutex_);
  for (const auto& [profile, generation] : staged_) {
    for (size_t i = 0; i < hooks_.size(); ++i) {
      const std::vector<std::string>& wanted = hooks_[i].profiles;
      if (!wanted.empty() && !absl::c_linear_search(wanted, profile)) continue;
      pending_[i].profiles.insert(profile);
      pending_[i].generation = std::max(pending_[i].generation, generation);
    }
  }
  staged_.clear();
}

bool HookRunner::hasWorkLocked() const {
  return absl::c_any_of(pending_, [](const Pending& p) { return !p.profiles.empty(); });
}

bool HookRunner::awaitIdleForTest(absl::Duration timeout) {
  MutexLock lock(&mutex_);
  const auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return !running_ && !hasWorkLocked();
  };
  return mutex_.AwaitWithTimeout(Condition(&idle), timeout);
}

void HookRunner::loop() {
  while (true) {
    size_t index = 0;
    Pending work;
    {
      MutexLock lock(&mutex_);
      const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
        return stopping_ || hasWorkLocked();
      };
      mutex_.Await(Condition(&ready));
      if (stopping_) return;
      // Round robin from the hook after the last one run: every change runs
      // the hooks in their configured order, and a hook whose changes keep
      // coming cannot starve the ones after it.
      for (size_t step = 0; step < hooks_.size(); ++step) {
        const size_t candidate = (next_ + step) % hooks_.size();
        if (!pending_[candidate].profiles.empty()) {
          index = candidate;
          break;
        }
      }
      work = std::move(pending_[index]);
      pending_[index] = Pending{};
      next_ = (index + 1) % hooks_.size();
      running_ = true;
    }
    runHook(index, work);
    MutexLock lock(&mutex_);
    running_ = false;
  }
}

bool HookRunner::shouldInterrupt(MonotonicTime now) {
  MutexLock lock(&mutex_);
  return stopping_ && now >= stop_deadline_;
}

void HookRunner::runHook(size_t index, const Pending& work) {
  const config::HookConfig& hook = hooks_[index];
  const bool first_run = !has_run_[index];
  has_run_[index] = true;
  const MonotonicTime started = time_source_.monotonicTime();
  std::string detail;
  const absl::string_view result = hook.kind == config::HookConfig::Kind::kSignal
                                       ? runSignal(hook, detail)
                                       : runCommand(hook, work, detail);
  const absl::Duration took = absl::FromChrono(time_source_.monotonicTime() - started);
  const std::string profiles = absl::StrJoin(work.profiles, ",");
  const auto generation = static_cast<long long>(work.generation);
  const auto duration_ms = static_cast<long long>(absl::ToInt64Milliseconds(took));
  const char* kind = hook.kind == config::HookConfig::Kind::kSignal ? "signal" : "command";
  if (result == kResultOk) {
    log::info("hook ran", {{"hook", hook.name},
                           {"kind", kind},
                           {"detail", detail},
                           {"generation", generation},
                           {"profiles", profiles},
                           {"duration_ms", duration_ms}});
  } else if (result == kResultNoProcess && first_run) {
    // At pod start the app container usually starts only once the file
    // exists (the startup probe), and reads the file then: nothing to reload.
    log::info(
        "hook found no process to signal (the first write; the app reads the file when "
        "it starts)",
        {{"hook", hook.name}, {"detail", detail}, {"generation", generation}});
  } else {
    log::warn("hook failed", {{"hook", hook.name},
                              {"kind", kind},
                              {"result", result},
                              {"detail", detail},
                              {"generation", generation},
                              {"profiles", profiles},
                              {"duration_ms", duration_ms}});
  }
  if (observer_) observer_(hook.name, result, took);
}

absl::string_view HookRunner::runSignal(const config::HookConfig& hook, std::string& detail) {
  const std::string signal = signalName(hook.signal);
  const pid_t self = processes_.self();
  std::vector<pid_t> targets;
  if (!hook.pid_file.empty()) {
    pid_t pid = 0;
    switch (readPidFile(hook.pid_file, pid)) {
      case PidFile::kMissing:
        detail = absl::StrCat("pid file ", hook.pid_file, " does not exist");
        return kResultNoProcess;
      case PidFile::kInvalid:
        detail = absl::StrCat("pid file ", hook.pid_file, " does not hold a pid");
        return kResultFailed;
      case PidFile::kPid:
        break;
    }
    // pid 1 is the pod's pause process with a shared process namespace (a
    // SIGHUP ends it, and the pod with it), or credsync itself without one.
    if (pid == 1 || pid == self) {
      detail = absl::StrCat("pid file ", hook.pid_file, " names pid ", pid,
                            ", which a hook never signals");
      return kResultFailed;
    }
    targets.push_back(pid);
  } else {
    absl::StatusOr<std::vector<ProcessInfo>> processes = processes_.list();
    if (!processes.ok()) {
      detail = std::string(processes.status().message());
      return kResultFailed;
    }
    const auto matches = [&](const ProcessInfo& process) {
      return process.name == hook.process || baseName(process.argv0) == hook.process;
    };
    std::set<pid_t> matching;
    for (const ProcessInfo& process : *processes) {
      if (process.pid != 1 && process.pid != self && matches(process)) {
        matching.insert(process.pid);
      }
    }
    // Only the topmost process of each matching tree: a server's master
    // (nginx, gunicorn, postgres) passes a reload on to its workers itself.
    for (const ProcessInfo& process : *processes) {
      if (matching.count(process.pid) > 0 && matching.count(process.parent_pid) == 0) {
        targets.push_back(process.pid);
      }
    }
    if (targets.empty()) {
      detail = absl::StrCat("no process named ", hook.process);
      return kResultNoProcess;
    }
  }
  std::vector<std::string> signalled;
  std::vector<std::string> errors;
  for (const pid_t pid : targets) {
    const absl::Status sent = processes_.sendSignal(pid, hook.signal);
    if (sent.ok()) {
      signalled.push_back(absl::StrCat(pid));
    } else if (!absl::IsNotFound(sent)) {
      errors.push_back(std::string(sent.message()));
    }
  }
  if (!errors.empty()) {
    detail = absl::StrCat(signal, " failed: ", absl::StrJoin(errors, "; "));
    return kResultFailed;
  }
  if (signalled.empty()) {
    detail = absl::StrCat("pid ", absl::StrJoin(targets, ","), " exited before ", signal);
    return kResultNoProcess;
  }
  detail = absl::StrCat(signal, " sent to pid ", absl::StrJoin(signalled, ","));
  return kResultOk;
}

absl::string_view HookRunner::runCommand(const config::HookConfig& hook, const Pending& work,
                                         std::string& detail) {
  // Only what the command needs: credsync's environment holds its identity
  // (role ARN, token file, in development even an AccessKey), which a hook
  // has no business with.
  const std::vector<std::string> environment = {
      absl::StrCat("PATH=", options_.path),
      absl::StrCat("CREDSYNC_HOOK=", hook.name),
      absl::StrCat("CREDSYNC_GENERATION=", work.generation),
      absl::StrCat("CREDSYNC_CHANGED_PROFILES=", absl::StrJoin(work.profiles, ",")),
      absl::StrCat("CREDSYNC_OUTPUT_DIRECTORY=", options_.output_directory),
      absl::StrCat("CREDSYNC_CREDENTIALS_FILE=", options_.credentials_file),
  };
  absl::StatusOr<ChildProcessPtr> spawned = spawner_.spawn(hook.command, environment);
  if (!spawned.ok()) {
    detail = std::string(spawned.status().message());
    return kResultFailed;
  }
  ChildProcess& child = **spawned;
  const auto now = [this] { return time_source_.monotonicTime(); };
  // Waits in slices until the command exits or `deadline` passes (or, when
  // `interruptible`, stop()'s deadline passes).
  const auto waitUntil = [&](MonotonicTime deadline,
                             bool interruptible) -> std::optional<ExitStatus> {
    while (true) {
      const absl::Duration left = absl::FromChrono(deadline - now());
      if (left <= absl::ZeroDuration()) return child.waitFor(absl::ZeroDuration());
      std::optional<ExitStatus> status = child.waitFor(std::min(left, options_.wait_slice));
      if (status.has_value()) return status;
      if (interruptible && shouldInterrupt(now())) return std::nullopt;
    }
  };
  std::optional<ExitStatus> status =
      waitUntil(now() + absl::ToChronoNanoseconds(hook.timeout), /*interruptible=*/true);
  if (!status.has_value()) {
    const bool shutting_down = shouldInterrupt(now());
    const std::string reason =
        shutting_down ? "credsync is stopping"
                      : absl::StrCat("timed out after ", absl::FormatDuration(hook.timeout));
    child.signalGroup(SIGTERM);
    const absl::Duration grace = shutting_down ? options_.shutdown_kill_grace : options_.kill_grace;
    status = waitUntil(now() + absl::ToChronoNanoseconds(grace), /*interruptible=*/false);
    if (!status.has_value()) {
      child.signalGroup(SIGKILL);
      status = waitUntil(now() + absl::ToChronoNanoseconds(options_.kill_grace), false);
    }
    const std::string ended = !status.has_value() ? "it did not exit after SIGKILL"
                              : status->signal.has_value()
                                  ? absl::StrCat("ended by ", signalName(*status->signal))
                                  : absl::StrCat("exit code ", status->exit_code.value_or(-1));
    detail = absl::StrCat(reason, "; process group terminated, ", ended);
    return shutting_down ? kResultFailed : kResultTimeout;
  }
  if (status->signal.has_value()) {
    detail = absl::StrCat("ended by ", signalName(*status->signal));
    return kResultFailed;
  }
  detail = absl::StrCat("exit code ", status->exit_code.value_or(-1));
  return status->exit_code == 0 ? kResultOk : kResultFailed;
}

}  // namespace credsync::hooks
