#pragma once

#include <atomic>
#include <functional>
#include <thread>

#include "absl/time/time.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/time_source.h"
#include "sidecar/sync/sync_engine.h"

namespace credsync::sync {

// Drives a SyncEngine from one thread: runs what is due, then sleeps until
// the next profile falls due, a wake() (a refresh request), or stop(). Also
// the liveness signal: heartbeat() is the last time the loop went round,
// which never depends on the cloud being reachable (fetches have timeouts).
class SyncRunner {
 public:
  SyncRunner(SyncEngine& engine, const TimeSource& time_source)
      : engine_(engine), time_source_(time_source) {}
  ~SyncRunner() { stop(); }

  void start();
  void stop();
  void wake();
  MonotonicTime heartbeat() const;
  // Runs the loop on the calling thread until `done` returns true, stop() is
  // called, or the deadline passes (for `sync --once`). Returns done().
  bool runUntil(const std::function<bool()>& done, absl::Duration timeout);

 private:
  // Sleeps until `until`, a wake() or stop(); the longest single wait is
  // bounded so the heartbeat keeps moving while idle.
  void waitUntil(absl::Time until);
  void loop();
  bool stopping() const;
  static bool interrupted(SyncRunner* runner) ABSL_NO_THREAD_SAFETY_ANALYSIS;

  SyncEngine& engine_;
  const TimeSource& time_source_;
  mutable Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  bool woken_ ABSL_GUARDED_BY(mutex_) = false;
  MonotonicTime heartbeat_ ABSL_GUARDED_BY(mutex_){};
  std::thread thread_;
};

}  // namespace credsync::sync
