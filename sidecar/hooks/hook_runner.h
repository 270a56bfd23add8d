#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/hooks/command_spawner.h"
#include "sidecar/hooks/process_table.h"
#include "sidecar/sync/sync_listener.h"

namespace credsync::hooks {

// How a hook run ended, the `result` label of credsync_hook_runs_total.
inline constexpr absl::string_view kResultOk = "ok";
inline constexpr absl::string_view kResultFailed = "failed";
inline constexpr absl::string_view kResultTimeout = "timeout";
inline constexpr absl::string_view kResultNoProcess = "no_process";

// Told about every finished hook run (metrics).
using HookObserver =
    std::function<void(const std::string& hook, absl::string_view result, absl::Duration took)>;

struct HookRunnerOptions {
  std::string output_directory;  // CREDSYNC_OUTPUT_DIRECTORY
  std::string credentials_file;  // CREDSYNC_CREDENTIALS_FILE
  // The PATH commands get (credsync's own, or a standard one).
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  // After a timeout, SIGTERM to the command's process group, then SIGKILL
  // this much later.
  absl::Duration kill_grace = absl::Seconds(5);
  // At shutdown, the same with a shorter grace.
  absl::Duration shutdown_kill_grace = absl::Seconds(1);
  // The longest single wait for a command, so a stop() is noticed.
  absl::Duration wait_slice = absl::Milliseconds(100);
};

// Runs the configured hooks after each change of the published output, on a
// thread of its own, so the scheduler never waits for a hook. Changes are
// collected from onProfileChanged (called under the engine's lock: it only
// records) and released by onRoundFinished, so one publish is one run with
// every profile it changed. Hooks run one at a time, in the configured order;
// a hook whose changes arrive while a hook runs runs once more afterwards
// with all of them (coalesced, not queued). A failure is logged and counted,
// and never touches the file or readiness. Thread-safe.
class HookRunner : public sync::SyncListener {
 public:
  HookRunner(std::vector<config::HookConfig> hooks, HookRunnerOptions options,
             ProcessTable& processes, CommandSpawner& spawner, const TimeSource& time_source,
             HookObserver observer);
  ~HookRunner() override;

  void start();
  // Runs nothing new; a command still running gets `grace` (on the time
  // source), then SIGTERM and, after shutdown_kill_grace, SIGKILL. Waits for
  // the thread. Idempotent.
  void stop(absl::Duration grace);

  void onProfileChanged(const sync::ProfileChange& change) override;
  void onRoundFinished() override;

  // Waits (real time) until no hook is pending or running; for tests.
  bool awaitIdleForTest(absl::Duration timeout);

 private:
  struct Pending {
    std::set<std::string> profiles;
    uint64_t generation = 0;
  };

  void loop();
  // Runs hook `index` for `work`, logs and reports how it went.
  void runHook(size_t index, const Pending& work);
  absl::string_view runSignal(const config::HookConfig& hook, std::string& detail);
  absl::string_view runCommand(const config::HookConfig& hook, const Pending& work,
                               std::string& detail);
  bool shouldInterrupt(MonotonicTime now);
  bool hasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::vector<config::HookConfig> hooks_;
  const HookRunnerOptions options_;
  ProcessTable& processes_;
  CommandSpawner& spawner_;
  const TimeSource& time_source_;
  const HookObserver observer_;
  // Touched by the hook thread only: whether each hook has run since start.
  std::vector<bool> has_run_;

  mutable Mutex mutex_;
  // Changes of the round under way, released by onRoundFinished.
  std::vector<std::pair<std::string, uint64_t>> staged_ ABSL_GUARDED_BY(mutex_);
  std::vector<Pending> pending_ ABSL_GUARDED_BY(mutex_);
  size_t next_ ABSL_GUARDED_BY(mutex_) = 0;  // where the next search for work starts
  bool running_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  MonotonicTime stop_deadline_ ABSL_GUARDED_BY(mutex_){};
  std::thread thread_;
};

}  // namespace credsync::hooks
