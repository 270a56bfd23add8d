#include "sidecar/sync/sync_runner.h"

#include <algorithm>

namespace credsync::sync {
namespace {

constexpr absl::Duration kMaxIdleWait = absl::Seconds(10);

}  // namespace

void SyncRunner::start() {
  {
    MutexLock lock(&mutex_);
    stopping_ = false;
    heartbeat_ = time_source_.monotonicTime();
  }
  thread_ = std::thread([this] { loop(); });
}

void SyncRunner::stop() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void SyncRunner::wake() {
  MutexLock lock(&mutex_);
  woken_ = true;
}

MonotonicTime SyncRunner::heartbeat() const {
  MutexLock lock(&mutex_);
  return heartbeat_;
}

void SyncRunner::waitUntil(absl::Time until) {
  MutexLock lock(&mutex_);
  heartbeat_ = time_source_.monotonicTime();
  const absl::Duration wait =
      std::clamp(until - time_source_.systemTime(), absl::ZeroDuration(), kMaxIdleWait);
  mutex_.AwaitWithTimeout(Condition(&SyncRunner::interrupted, this), wait);
  woken_ = false;
}

bool SyncRunner::interrupted(SyncRunner* runner) {
  runner->mutex_.AssertHeld();
  return runner->stopping_ || runner->woken_;
}

bool SyncRunner::stopping() const {
  MutexLock lock(&mutex_);
  return stopping_;
}

void SyncRunner::loop() {
  while (!stopping()) waitUntil(engine_.runDue());
}

bool SyncRunner::runUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = time_source_.systemTime() + timeout;
  while (true) {
    const absl::Time next = engine_.runDue();
    if (done()) return true;
    if (stopping() || time_source_.systemTime() >= deadline) return done();
    waitUntil(std::min(next, deadline));
  }
}

}  // namespace credsync::sync
