#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/sync/sync_engine.h"
#include "sidecar/sync/token_bucket.h"

namespace credsync::sync {

struct RefreshRequest {
  std::string profile;
  std::string failed_access_key_id;  // empty: fetch regardless
  std::string reason;                // for the log only
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
  bool coalesced = false;  // joined a fetch it did not cause
};

// The app-facing Refresh of design §3.4, on top of the engine. A caller
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
//                       could not be written;
//   DEADLINE_EXCEEDED / CANCELLED  the caller stopped waiting.
// Thread-safe.
class RefreshCoordinator {
 public:
  // `wake` nudges the scheduler thread to run what is due now.
  RefreshCoordinator(SyncEngine& engine, const config::RefreshConfig& config,
                     const TimeSource& time_source, std::function<void()> wake);

  // Waits at most `timeout`, checking `cancelled` (when given) as it goes.
  absl::StatusOr<RefreshAnswer> refresh(const RefreshRequest& request, absl::Duration timeout,
                                        const std::function<bool()>& cancelled = nullptr);

  // Callers waiting for a fetch right now.
  int waiting() const { return waiting_.load(); }

  // Set on RESOURCE_EXHAUSTED: how long until the profile's next token.
  static std::optional<absl::Duration> retryAfter(const absl::Status& status);

 private:
  TokenBucket& bucketFor(const std::string& profile);

  SyncEngine& engine_;
  const config::RefreshConfig config_;
  const TimeSource& time_source_;
  const std::function<void()> wake_;
  std::atomic<int> waiting_{0};
  Mutex mutex_;
  std::map<std::string, std::unique_ptr<TokenBucket>> buckets_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::sync
