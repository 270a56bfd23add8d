#pragma once

#include <signal.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "sidecar/common/mutex.h"
#include "sidecar/hooks/command_spawner.h"
#include "sidecar/hooks/process_table.h"
#include "tests/common/simulated_time_source.h"

namespace credsync::testing {

// A process table the test fills in; records every signal sent. Thread-safe.
class FakeProcessTable : public hooks::ProcessTable {
 public:
  explicit FakeProcessTable(pid_t self = 7) : self_(self) {}

  void add(pid_t pid, pid_t parent, std::string name, std::string argv0 = "") {
    MutexLock lock(&mutex_);
    processes_.push_back({pid, parent, std::move(name), std::move(argv0)});
  }
  // sendSignal(pid, ...) answers `status` from now on.
  void failSignal(pid_t pid, absl::Status status) {
    MutexLock lock(&mutex_);
    failures_[pid] = std::move(status);
  }
  std::vector<std::pair<pid_t, int>> signalled() const {
    MutexLock lock(&mutex_);
    return signalled_;
  }

  absl::StatusOr<std::vector<hooks::ProcessInfo>> list() const override {
    MutexLock lock(&mutex_);
    return processes_;
  }
  absl::Status sendSignal(pid_t pid, int signal) override {
    MutexLock lock(&mutex_);
    if (const auto it = failures_.find(pid); it != failures_.end()) return it->second;
    signalled_.emplace_back(pid, signal);
    return absl::OkStatus();
  }
  pid_t self() const override { return self_; }

 private:
  const pid_t self_;
  mutable Mutex mutex_;
  std::vector<hooks::ProcessInfo> processes_ ABSL_GUARDED_BY(mutex_);
  std::map<pid_t, absl::Status> failures_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::pair<pid_t, int>> signalled_ ABSL_GUARDED_BY(mutex_);
};

// Starts scripted commands on a SimulatedTimeSource: waiting for one moves
// the clock, so timeouts play out without real time. Thread-safe.
class FakeCommandSpawner : public hooks::CommandSpawner {
 public:
  // How the next spawned commands behave (the last script repeats).
  struct Script {
    absl::Duration runs_for = absl::ZeroDuration();
    int exit_code = 0;
    bool ignores_sigterm = false;
    // When set, the command runs (without moving the clock) until the test
    // notifies it.
    Notification* gate = nullptr;
    // When set, spawning fails with it.
    absl::Status spawn_error;
  };
  struct Spawned {
    std::vector<std::string> argv;
    std::vector<std::string> environment;
  };

  explicit FakeCommandSpawner(SimulatedTimeSource& clock) : clock_(clock) {}

  void push(Script script) {
    MutexLock lock(&mutex_);
    scripts_.push_back(std::move(script));
  }
  std::vector<Spawned> spawned() const {
    MutexLock lock(&mutex_);
    return spawned_;
  }
  // Signals sent to every spawned group, in order.
  std::vector<int> groupSignals() const {
    MutexLock lock(&mutex_);
    return group_signals_;
  }

  absl::StatusOr<hooks::ChildProcessPtr> spawn(
      const std::vector<std::string>& argv, const std::vector<std::string>& environment) override {
    MutexLock lock(&mutex_);
    Script script = scripts_.empty() ? Script{} : scripts_.front();
    if (scripts_.size() > 1) scripts_.erase(scripts_.begin());
    if (!script.spawn_error.ok()) return script.spawn_error;
    spawned_.push_back({argv, environment});
    return hooks::ChildProcessPtr(new Child(*this, script));
  }

 private:
  class Child : public hooks::ChildProcess {
   public:
    Child(FakeCommandSpawner& spawner, Script script)
        : spawner_(spawner),
          script_(script),
          exit_at_(spawner.clock_.monotonicTime() + absl::ToChronoNanoseconds(script.runs_for)) {}

    std::optional<hooks::ExitStatus> waitFor(absl::Duration timeout) override {
      if (status_.has_value()) return status_;
      if (script_.gate != nullptr) {
        if (!script_.gate->WaitForNotificationWithTimeout(absl::Milliseconds(1))) {
          return std::nullopt;
        }
        return exit(std::nullopt);
      }
      const absl::Duration left = absl::FromChrono(exit_at_ - spawner_.clock_.monotonicTime());
      if (left > timeout) {
        spawner_.clock_.advance(timeout);
        return std::nullopt;
      }
      spawner_.clock_.advance(std::max(left, absl::ZeroDuration()));
      return exit(std::nullopt);
    }
    void signalGroup(int signal) override {
      {
        MutexLock lock(&spawner_.mutex_);
        spawner_.group_signals_.push_back(signal);
      }
      if (status_.has_value()) return;
      if (signal == SIGKILL || (signal == SIGTERM && !script_.ignores_sigterm)) exit(signal);
    }
    pid_t pid() const override { return 4242; }

   private:
    std::optional<hooks::ExitStatus> exit(std::optional<int> signal) {
      hooks::ExitStatus status;
      if (signal.has_value()) {
        status.signal = signal;
      } else {
        status.exit_code = script_.exit_code;
      }
      status_ = status;
      return status_;
    }

    FakeCommandSpawner& spawner_;
    const Script script_;
    const MonotonicTime exit_at_;
    std::optional<hooks::ExitStatus> status_;
  };

  SimulatedTimeSource& clock_;
  mutable Mutex mutex_;
  std::vector<Script> scripts_ ABSL_GUARDED_BY(mutex_);
  std::vector<Spawned> spawned_ ABSL_GUARDED_BY(mutex_);
  std::vector<int> group_signals_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::testing
