#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/sync/sync_engine.h"
#include "sidecar/sync/sync_listener.h"
#include "sidecar/sync/token_bucket.h"

namespace credsync::sync {

struct RefreshRequest {
  std::string profile;
  // Empty differs from every key: answered at once once a key is written.
  std::string failed_access_key_id;
  std::string reason;  // for the log only
  // Generic profiles: the secret version that failed; empty names the
  // version in the files when the request is admitted.
  std::string failed_version_id = {};
};

enum class RefreshOutcome {
  kAlreadyCurrent,  // the file already held another key; no upstream call
  kRefreshed,       // a fetch (this call's or one it joined) brought a new key
};

struct RefreshAnswer {
  RefreshOutcome outcome = RefreshOutcome::kAlreadyCurrent;
  std::string profile;
  std::string access_key_id;
  uint64_t generation = 0;
  std::optional<absl::Time> change_time;
  bool coalesced = false;       // joined a fetch it did not cause
  std::string version_id = {};  // the secret version in the files
};

// What a Refresh is finally answered with.
using RefreshCallback = std::function<void(absl::StatusOr<RefreshAnswer>)>;

// The app-facing Refresh of docs/design.md §3.4, on top of the engine. A caller
// naming a key that is no longer in the file is answered from memory. Else
// it joins the profile's pending or in-flight fetch if there is one, and
// otherwise spends a token of the profile's bucket to request one, wakes the
// scheduler and waits for it: so any number of concurrent callers cause one
// upstream call. Errors:
//   INVALID_ARGUMENT    empty profile;
//   NOT_FOUND           unknown profile;
//   RESOURCE_EXHAUSTED  the bucket is empty (retry_after says for how long);
//   FAILED_PRECONDITION KMS still returns the failed key, or refuses for a
//                       reason no retry fixes (upstream code kept);
//   UNAVAILABLE         the fetch failed in a retryable way, or the new key
//                       could not be written, or upstream throttled the last
//                       fetch and its retry is further off than the caller's
//                       timeout (retry_after says when);
//   DEADLINE_EXCEEDED / CANCELLED  the caller stopped waiting (or credsync
//                       is shutting down).
// A waiting caller is a record, not a thread: one dispatcher thread settles
// every waiter when its profile's fetch completes or its deadline passes, so
// a thousand callers cost a thousand small records (bench/run, P2). It
// listens to the engine (registered by the constructor, so it must be built
// before the engine runs, and destroyed after it stops). Thread-safe.
class RefreshCoordinator : public SyncListener {
 public:
  // After this many callers are answered at once, `release_memory` runs a
  // little later, once gRPC has freed their calls.
  static constexpr size_t kBurstAnswers = 64;
  static constexpr absl::Duration kReleaseDelay = absl::Seconds(1);

  // Who answers waiters whose deadline passed: the coordinator's own
  // dispatcher thread, or its owner calling answerExpired() (a simulation
  // that drives thousands of coordinators from one thread on one clock).
  enum class Deadlines { kOwnThread, kCallerDriven };

  // `wake` nudges the scheduler thread to run what is due now.
  // `release_memory` (optional) returns freed memory to the system after a
  // burst of answers (releaseFreedMemory() in production).
  RefreshCoordinator(SyncEngine& engine, const config::RefreshConfig& config,
                     const TimeSource& time_source, std::function<void()> wake,
                     std::function<void()> release_memory = nullptr,
                     Deadlines deadlines = Deadlines::kOwnThread);
  // Answers every caller still waiting with CANCELLED.
  ~RefreshCoordinator() override;
  RefreshCoordinator(const RefreshCoordinator&) = delete;
  RefreshCoordinator& operator=(const RefreshCoordinator&) = delete;

  // Starts a refresh that waits at most `timeout` (on the time source's
  // monotonic clock). `done` is called exactly once: before start() returns
  // when the answer needs no fetch, else later from the dispatcher thread or
  // from cancel(). Returns the id cancel() takes (0 when already answered).
  // `done` must not call back into this coordinator.
  uint64_t start(const RefreshRequest& request, absl::Duration timeout, RefreshCallback done);
  // The caller went away: its `done` gets CANCELLED now, unless it has been
  // answered already. Unknown ids are ignored.
  void cancel(uint64_t id);

  // start() and wait: for callers with a thread to spare (tests, the CLI).
  // `cancelled`, when given, is polled while waiting.
  absl::StatusOr<RefreshAnswer> refresh(const RefreshRequest& request, absl::Duration timeout,
                                        const std::function<bool()>& cancelled = nullptr);

  // Answers every waiting caller with CANCELLED and stops the dispatcher;
  // later calls are answered at once with CANCELLED. Idempotent.
  void stop();

  // Answers the callers whose deadline has passed, with DEADLINE_EXCEEDED.
  // The dispatcher thread does this itself; a kCallerDriven coordinator's
  // owner calls it as its clock moves.
  void answerExpired();

  // Callers waiting for a fetch right now (the control service caps them).
  int waiting() const { return waiting_.load(); }

  // Set on RESOURCE_EXHAUSTED: how long until the profile's next token.
  static std::optional<absl::Duration> retryAfter(const absl::Status& status);

  // SyncListener: a fetch of `profile` completed (engine lock held): its
  // waiters are looked at when the round finishes, on the same thread, so
  // the answer goes out without a hop to the dispatcher.
  void onFetchCompleted(const std::string& profile, const absl::Status& result) override;
  void onRoundFinished() override;

 private:
  // What admitting a request decided: an answer now, or a fetch to wait for.
  struct Admission;
  struct Waiter {
    RefreshRequest request;
    std::string profile;     // the configured name the request resolved to
    uint64_t awaited = 0;    // the fetch number whose completion settles it
    bool requested = false;  // this caller's request started that fetch
    bool joined_earlier_fetch = false;
    int round = 0;
    MonotonicTime deadline;
    absl::Duration timeout;
    RefreshCallback done;
    // Being re-admitted outside the lock; cancel() only marks it.
    bool readmitting = false;
    bool cancelled = false;
  };

  using Answer = std::pair<RefreshCallback, absl::StatusOr<RefreshAnswer>>;

  // Fills in a generic request's empty failed_version_id. `patience`: how
  // long the caller may still wait.
  Admission admit(RefreshRequest& request, int round, absl::Duration patience);
  // Answers or re-admits the waiters of the profiles marked dirty. Called
  // without mutex_ (it calls the engine and the callbacks).
  void settleDirty();
  // Runs the callbacks (without mutex_); schedules a release of memory
  // after a burst.
  void answerAll(std::vector<Answer>& answers);
  // The answer for a waiter whose profile now looks like `view`: nullopt
  // while unsettled; a retry (round 2) is reported through `retry`.
  std::optional<absl::StatusOr<RefreshAnswer>> settle(const Waiter& waiter, const RefreshView& view,
                                                      bool* retry);
  void dispatch();
  // Moves every waiter's answer, CANCELLED (shutting down), into `answers`.
  void collectAllLocked(std::vector<Answer>& answers) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Moves the answers of waiters past their deadline (by `now`) into
  // `answers`.
  void collectExpiredLocked(MonotonicTime now, std::vector<Answer>& answers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  TokenBucket& bucketFor(const std::string& profile);

  SyncEngine& engine_;
  const config::RefreshConfig config_;
  const TimeSource& time_source_;
  const std::function<void()> wake_;
  const std::function<void()> release_memory_;
  std::atomic<int> waiting_{0};
  // Lock order: SyncEngine's mutex, then this one, then a TokenBucket's
  // (admit() looks up and takes a bucket token inside the callback that
  // SyncEngine::inspectAndRequest() runs under the engine's lock). Never call
  // into the engine while holding this mutex. clang cannot check an order
  // across classes; the TSan tree's deadlock detector reports an inversion.
  Mutex mutex_;
  std::map<std::string, std::unique_ptr<TokenBucket>> buckets_ ABSL_GUARDED_BY(mutex_);
  std::map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_id_ ABSL_GUARDED_BY(mutex_) = 1;
  // Profiles whose waiters must be looked at again.
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mutex_);
  // Fetch completions seen, to tell whether one fell inside an admission.
  uint64_t completions_ ABSL_GUARDED_BY(mutex_) = 0;
  // The dispatcher must look again before sleeping: a first waiter was
  // added, or a release of memory was scheduled.
  bool rescan_ ABSL_GUARDED_BY(mutex_) = false;
  std::optional<MonotonicTime> release_at_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread dispatcher_;
};

}  // namespace credsync::sync
