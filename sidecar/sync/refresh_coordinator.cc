#include "sidecar/sync/refresh_coordinator.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/common/logging.h"

namespace credsync::sync {
namespace {

// The status payload carrying how long a rate-limited caller should wait.
constexpr char kRetryAfterPayload[] = "type.credsync.dev/retry-after-seconds";
// Waits are sliced so a cancelled caller is noticed within this.
constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(200);
constexpr size_t kMaxReasonBytes = 256;

// Counts a caller as waiting for as long as it lives.
class WaitingCaller {
 public:
  explicit WaitingCaller(std::atomic<int>& count) : count_(count) { ++count_; }
  ~WaitingCaller() { --count_; }

 private:
  std::atomic<int>& count_;
};

bool holdsOtherKey(const RefreshView& view, const std::string& failed_key) {
  return !view.access_key_id.empty() && view.access_key_id != failed_key;
}

RefreshAnswer answer(const RefreshView& view, RefreshOutcome outcome, bool coalesced) {
  return RefreshAnswer{outcome,         view.profile,     view.access_key_id,
                       view.generation, view.last_change, coalesced};
}

// Why a completed fetch left the failed key in place, as the caller's error.
absl::Status unchangedError(const RefreshView& view, const std::string& failed_key) {
  if (view.publish_pending) {
    return absl::UnavailableError(absl::StrCat(
        "profile ", view.profile,
        ": a new key was fetched but the file could not be written; credsync keeps trying"));
  }
  const absl::Status& fetch = view.last_fetch;
  if (!fetch.ok()) {
    const std::string detail =
        absl::StrCat("profile ", view.profile, ": fetching from KMS failed: ", fetch.message());
    absl::Status error =
        alibaba::isRetryable(fetch)
            ? absl::UnavailableError(absl::StrCat(detail, "; the previous key stays in the file"))
            : absl::FailedPreconditionError(detail);
    fetch.ForEachPayload([&](absl::string_view type, const absl::Cord& payload) {
      error.SetPayload(type, payload);
    });
    return error;
  }
  if (view.access_key_id.empty()) {
    return absl::UnavailableError(
        absl::StrCat("profile ", view.profile, ": no key has been written yet"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("profile ", view.profile, ": KMS still returns AccessKey ", failed_key,
                   "; the secret has not been rotated, so there is no newer key to give"));
}

}  // namespace

RefreshCoordinator::RefreshCoordinator(SyncEngine& engine, const config::RefreshConfig& config,
                                       const TimeSource& time_source, std::function<void()> wake)
    : engine_(engine), config_(config), time_source_(time_source), wake_(std::move(wake)) {}

TokenBucket& RefreshCoordinator::bucketFor(const std::string& profile) {
  MutexLock lock(&mutex_);
  std::unique_ptr<TokenBucket>& bucket = buckets_[profile];
  if (bucket == nullptr) {
    bucket = std::make_unique<TokenBucket>(config_.on_demand_burst, config_.on_demand_refill,
                                           time_source_);
  }
  return *bucket;
}

std::optional<absl::Duration> RefreshCoordinator::retryAfter(const absl::Status& status) {
  const auto payload = status.GetPayload(kRetryAfterPayload);
  double seconds = 0;
  if (!payload || !absl::SimpleAtod(std::string(*payload), &seconds)) return std::nullopt;
  return absl::Seconds(seconds);
}

absl::StatusOr<RefreshAnswer> RefreshCoordinator::refresh(const RefreshRequest& request,
                                                          absl::Duration timeout,
                                                          const std::function<bool()>& cancelled) {
  if (request.profile.empty()) return absl::InvalidArgumentError("profile: must not be empty");
  const std::string& failed_key = request.failed_access_key_id;
  // Counted down by the waits that ran out: the waiting itself is real time
  // (a mutex wait), and a wait that ends early ends because it is settled.
  absl::Duration remaining = timeout;
  const std::string reason = request.reason.substr(0, kMaxReasonBytes);

  // At most two rounds: a caller that joined a fetch already in flight when
  // it arrived may see that fetch return the failed key (it may have been
  // sent before the key was revoked); it then asks for one fetch of its own.
  bool joined_earlier_fetch = false;
  for (int round = 0; round < 2; ++round) {
    bool rate_limited = false;
    bool requested = false;
    std::optional<RefreshView> seen =
        engine_.inspectAndRequest(request.profile, [&](const RefreshView& view) {
          if (holdsOtherKey(view, failed_key)) return false;
          // Join: in the second round any fetch in flight started after
          // this caller's first one completed, so it is fresh enough.
          if (view.fetch_requested || view.fetch_in_flight) return false;
          if (!bucketFor(view.profile).tryTake()) {
            rate_limited = true;
            return false;
          }
          requested = true;
          return true;
        });
    if (!seen) {
      return absl::NotFoundError(
          absl::StrCat("profile ", request.profile, ": no such profile is configured"));
    }
    const RefreshView& view = *seen;
    if (holdsOtherKey(view, failed_key)) {
      return answer(view, RefreshOutcome::kAlreadyCurrent, /*coalesced=*/false);
    }
    if (rate_limited) {
      const absl::Duration wait = bucketFor(view.profile).timeUntilNext();
      absl::Status error = absl::ResourceExhaustedError(absl::StrCat(
          "profile ", view.profile, ": too many refreshes (at most ", config_.on_demand_burst,
          " at once, then one every ", absl::FormatDuration(config_.on_demand_refill),
          "); retry in ", absl::FormatDuration(absl::Ceil(wait, absl::Seconds(1)))));
      error.SetPayload(kRetryAfterPayload,
                       absl::Cord(absl::StrCat(std::ceil(absl::ToDoubleSeconds(wait)))));
      return error;
    }
    // The fetch this caller waits for: its own or a pending one starts next;
    // otherwise it joins the one in flight.
    const uint64_t awaited =
        view.fetch_requested || requested ? view.fetches_started + 1 : view.fetches_started;
    joined_earlier_fetch = !requested && !view.fetch_requested;
    if (requested) {
      log::info(
          "refresh requested",
          {{"profile", view.profile}, {"failed_access_key_id", failed_key}, {"reason", reason}});
      wake_();
    }
    const auto settled = [&](const RefreshView& v) {
      return holdsOtherKey(v, failed_key) || v.fetches_completed >= awaited;
    };
    RefreshView latest = view;
    const WaitingCaller waiting(waiting_);
    while (!settled(latest)) {
      if (remaining <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(absl::StrCat(
            "profile ", view.profile, ": no answer from KMS within ", absl::FormatDuration(timeout),
            "; the fetch goes on and Watch reports its result"));
      }
      if (cancelled && cancelled()) return absl::CancelledError("refresh: the caller went away");
      const absl::Duration slice = std::min(kCancelPollInterval, remaining);
      latest = engine_.awaitProfile(view.profile, settled, slice);
      remaining -= slice;
    }
    if (holdsOtherKey(latest, failed_key)) {
      return answer(latest, RefreshOutcome::kRefreshed, /*coalesced=*/!requested);
    }
    const bool fetched_fine = latest.last_fetch.ok() && !latest.publish_pending;
    if (round == 0 && joined_earlier_fetch && fetched_fine && !latest.access_key_id.empty()) {
      continue;
    }
    return unchangedError(latest, failed_key);
  }
  return absl::InternalError("refresh: unreachable");
}

}  // namespace credsync::sync
