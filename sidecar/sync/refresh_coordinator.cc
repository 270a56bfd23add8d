#include "sidecar/sync/refresh_coordinator.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/upstream_error.h"

namespace credsync::sync {
namespace {

// The status payload carrying how long a rate-limited caller should wait.
constexpr char kRetryAfterPayload[] = "type.credsync.dev/retry-after-seconds";
// Blocking callers look at their cancellation, and the dispatcher at the
// deadlines, at least this often.
constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(200);
constexpr size_t kMaxReasonBytes = 256;

// What identifies a profile's secret in the files: the AccessKey id, or a
// generic profile's secret version.
const std::string& heldId(const RefreshView& view) {
  return view.generic ? view.version_id : view.access_key_id;
}

const std::string& failedId(const RefreshRequest& request, const RefreshView& view) {
  return view.generic ? request.failed_version_id : request.failed_access_key_id;
}

bool holdsOtherKey(const RefreshView& view, const RefreshRequest& request) {
  return !heldId(view).empty() && heldId(view) != failedId(request, view);
}

RefreshAnswer answer(const RefreshView& view, RefreshOutcome outcome, bool coalesced) {
  return RefreshAnswer{outcome,          view.profile, view.access_key_id, view.generation,
                       view.last_change, coalesced,    view.version_id};
}

// Why a completed fetch left the failed key in place, as the caller's error.
absl::Status unchangedError(const RefreshView& view, const RefreshRequest& request) {
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
        isRetryable(fetch)
            ? absl::UnavailableError(absl::StrCat(detail, "; the previous key stays in the file"))
            : absl::FailedPreconditionError(detail);
    fetch.ForEachPayload([&](absl::string_view type, const absl::Cord& payload) {
      error.SetPayload(type, payload);
    });
    return error;
  }
  if (heldId(view).empty()) {
    return absl::UnavailableError(
        absl::StrCat("profile ", view.profile, ": no key has been written yet"));
  }
  if (view.generic) {
    return absl::FailedPreconditionError(absl::StrCat(
        "profile ", view.profile, ": KMS still returns version ", request.failed_version_id,
        "; the secret has no newer version, so the files already hold the latest value"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "profile ", view.profile, ": KMS still returns AccessKey ", request.failed_access_key_id,
      "; the secret has not been rotated, so there is no newer key to give"));
}

}  // namespace

// Admitting a request: either answered now, or a fetch to wait for.
struct RefreshCoordinator::Admission {
  std::optional<absl::StatusOr<RefreshAnswer>> answer;
  std::string profile;
  uint64_t awaited = 0;
  bool requested = false;
  bool joined_earlier_fetch = false;
};

RefreshCoordinator::RefreshCoordinator(SyncEngine& engine, const config::RefreshConfig& config,
                                       const TimeSource& time_source, std::function<void()> wake,
                                       std::function<void()> release_memory, Deadlines deadlines)
    : engine_(engine),
      config_(config),
      time_source_(time_source),
      wake_(std::move(wake)),
      release_memory_(std::move(release_memory)) {
  engine_.addListener(this);
  if (deadlines == Deadlines::kOwnThread) dispatcher_ = std::thread([this] { dispatch(); });
}

RefreshCoordinator::~RefreshCoordinator() { stop(); }

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

RefreshCoordinator::Admission RefreshCoordinator::admit(RefreshRequest& request, int round,
                                                        absl::Duration patience) {
  Admission admission;
  const std::string& failed_key = request.failed_access_key_id;
  bool rate_limited = false;
  bool requested = false;
  bool throttled = false;
  const absl::Time now = time_source_.systemTime();
  std::optional<RefreshView> seen =
      engine_.inspectAndRequest(request.profile, [&](const RefreshView& view) {
        // "The value I have is wrong", for a generic profile, means the
        // version in the files now.
        if (view.generic && request.failed_version_id.empty()) {
          request.failed_version_id = view.version_id;
        }
        if (holdsOtherKey(view, request)) return false;
        // Join: in the second round any fetch in flight started after this
        // caller's first one completed, so it is fresh enough.
        if (view.fetch_requested || view.fetch_in_flight) return false;
        // Upstream asked to slow down: a Refresh must not pull the retry
        // its backoff scheduled earlier, or a fleet of apps would undo the
        // backoff of a fleet of sidecars. It waits for that retry instead.
        if (isThrottled(view.last_fetch) && view.next_fetch > now) {
          throttled = true;
          return false;
        }
        if (!bucketFor(view.profile).tryTake()) {
          rate_limited = true;
          return false;
        }
        requested = true;
        return true;
      });
  if (!seen) {
    admission.answer = absl::NotFoundError(
        absl::StrCat("profile ", request.profile, ": no such profile is configured"));
    return admission;
  }
  const RefreshView& view = *seen;
  if (holdsOtherKey(view, request)) {
    admission.answer = answer(view, RefreshOutcome::kAlreadyCurrent, /*coalesced=*/false);
    return admission;
  }
  if (rate_limited) {
    const absl::Duration wait = bucketFor(view.profile).timeUntilNext();
    absl::Status error = absl::ResourceExhaustedError(absl::StrCat(
        "profile ", view.profile, ": too many refreshes (at most ", config_.on_demand_burst,
        " at once, then one every ", absl::FormatDuration(config_.on_demand_refill), "); retry in ",
        absl::FormatDuration(absl::Ceil(wait, absl::Seconds(1)))));
    error.SetPayload(kRetryAfterPayload,
                     absl::Cord(absl::StrCat(std::ceil(absl::ToDoubleSeconds(wait)))));
    admission.answer = std::move(error);
    return admission;
  }
  if (throttled) {
    const absl::Duration wait = view.next_fetch - now;
    if (wait > patience) {
      absl::Status error = markThrottled(absl::UnavailableError(absl::StrCat(
          "profile ", view.profile, ": KMS or STS is throttling; the next attempt is in ",
          absl::FormatDuration(absl::Ceil(wait, absl::Seconds(1))),
          " and the previous key stays in the file")));
      error.SetPayload(kRetryAfterPayload,
                       absl::Cord(absl::StrCat(std::ceil(absl::ToDoubleSeconds(wait)))));
      admission.answer = std::move(error);
      return admission;
    }
    // Joins the scheduled retry: the next fetch to start.
    admission.profile = view.profile;
    admission.awaited = view.fetches_started + 1;
    return admission;
  }
  admission.profile = view.profile;
  // The fetch this caller waits for: its own or a pending one starts next;
  // otherwise it joins the one in flight.
  admission.awaited =
      view.fetch_requested || requested ? view.fetches_started + 1 : view.fetches_started;
  admission.requested = requested;
  admission.joined_earlier_fetch = round == 0 && !requested && !view.fetch_requested;
  if (requested) {
    log::info("refresh requested", {{"profile", view.profile},
                                    {"failed_access_key_id", failed_key},
                                    {"failed_version_id", request.failed_version_id},
                                    {"reason", request.reason}});
    wake_();
  }
  return admission;
}

std::optional<absl::StatusOr<RefreshAnswer>> RefreshCoordinator::settle(const Waiter& waiter,
                                                                        const RefreshView& view,
                                                                        bool* retry) {
  *retry = false;
  const RefreshRequest& request = waiter.request;
  if (!holdsOtherKey(view, request) && view.fetches_completed < waiter.awaited) {
    return std::nullopt;
  }
  if (holdsOtherKey(view, request)) {
    return answer(view, RefreshOutcome::kRefreshed, /*coalesced=*/!waiter.requested);
  }
  // A caller that joined a fetch already in flight when it arrived may see
  // that fetch return the failed key (it may have been sent before the key
  // was revoked): it then asks for one fetch of its own.
  const bool fetched_fine = view.last_fetch.ok() && !view.publish_pending;
  if (waiter.round == 0 && waiter.joined_earlier_fetch && fetched_fine && !heldId(view).empty()) {
    *retry = true;
    return std::nullopt;
  }
  return unchangedError(view, request);
}

uint64_t RefreshCoordinator::start(const RefreshRequest& request, absl::Duration timeout,
                                   RefreshCallback done) {
  if (request.profile.empty()) {
    done(absl::InvalidArgumentError("profile: must not be empty"));
    return 0;
  }
  {
    MutexLock lock(&mutex_);
    if (stopping_) {
      done(absl::CancelledError("refresh: credsync is shutting down"));
      return 0;
    }
  }
  RefreshRequest bounded = request;
  bounded.reason = request.reason.substr(0, kMaxReasonBytes);
  uint64_t completions_before = 0;
  {
    MutexLock lock(&mutex_);
    completions_before = completions_;
  }
  Admission admission = admit(bounded, /*round=*/0, timeout);
  if (admission.answer) {
    done(*std::move(admission.answer));
    return 0;
  }
  Waiter waiter;
  waiter.request = std::move(bounded);
  waiter.profile = admission.profile;
  waiter.awaited = admission.awaited;
  waiter.requested = admission.requested;
  waiter.joined_earlier_fetch = admission.joined_earlier_fetch;
  waiter.deadline = time_source_.monotonicTime() + absl::ToChronoNanoseconds(timeout);
  waiter.timeout = timeout;
  waiter.done = std::move(done);
  const std::string profile = waiter.profile;
  {
    MutexLock lock(&mutex_);
    if (!stopping_) {
      const uint64_t id = next_id_++;
      // A fetch that completed since admit() looked may be the awaited one,
      // and its onRoundFinished() may have missed this waiter: look again.
      if (completions_ != completions_before) dirty_.insert(profile);
      // The dispatcher sleeps without a timeout only while there are no
      // waiters; otherwise it looks at the deadlines within 200 ms anyway.
      if (waiters_.empty()) rescan_ = true;
      waiters_.emplace(id, std::move(waiter));
      ++waiting_;
      return id;
    }
  }
  // stop() ran since the check above and no longer answers new waiters.
  waiter.done(absl::CancelledError("refresh: credsync is shutting down"));
  return 0;
}

void RefreshCoordinator::cancel(uint64_t id) {
  RefreshCallback done;
  {
    MutexLock lock(&mutex_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;
    if (it->second.readmitting) {
      it->second.cancelled = true;
      return;
    }
    done = std::move(it->second.done);
    waiters_.erase(it);
    --waiting_;
  }
  done(absl::CancelledError("refresh: the caller went away"));
}

void RefreshCoordinator::onFetchCompleted(const std::string& profile,
                                          const absl::Status& /*result*/) {
  MutexLock lock(&mutex_);
  dirty_.insert(profile);
  ++completions_;
}

absl::StatusOr<RefreshAnswer> RefreshCoordinator::refresh(const RefreshRequest& request,
                                                          absl::Duration timeout,
                                                          const std::function<bool()>& cancelled) {
  Notification answered;
  std::optional<absl::StatusOr<RefreshAnswer>> result;
  const uint64_t id = start(request, timeout, [&](absl::StatusOr<RefreshAnswer> answer) {
    result = std::move(answer);
    answered.Notify();
  });
  while (!answered.WaitForNotificationWithTimeout(kCancelPollInterval)) {
    if (cancelled && cancelled()) cancel(id);
  }
  return *std::move(result);
}

void RefreshCoordinator::stop() {
  std::vector<Answer> answers;
  {
    MutexLock lock(&mutex_);
    if (stopping_) return;
    stopping_ = true;
    // No dispatcher to answer the waiters: answer them here.
    if (!dispatcher_.joinable()) collectAllLocked(answers);
  }
  for (auto& [done, result] : answers) done(std::move(result));
  if (dispatcher_.joinable()) dispatcher_.join();
}

void RefreshCoordinator::collectAllLocked(std::vector<Answer>& answers) {
  for (auto& [id, waiter] : waiters_) {
    answers.emplace_back(std::move(waiter.done),
                         absl::CancelledError("refresh: credsync is shutting down"));
  }
  waiters_.clear();
  waiting_ = 0;
}

void RefreshCoordinator::collectExpiredLocked(MonotonicTime now, std::vector<Answer>& answers) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    Waiter& waiter = it->second;
    if (waiter.readmitting || waiter.deadline > now) {
      ++it;
      continue;
    }
    answers.emplace_back(std::move(waiter.done),
                         absl::DeadlineExceededError(absl::StrCat(
                             "profile ", waiter.profile, ": no answer from KMS within ",
                             absl::FormatDuration(waiter.timeout),
                             "; the fetch goes on and Watch reports its result")));
    it = waiters_.erase(it);
    --waiting_;
  }
}

void RefreshCoordinator::answerExpired() {
  std::vector<Answer> answers;
  bool release = false;
  {
    MutexLock lock(&mutex_);
    const MonotonicTime now = time_source_.monotonicTime();
    collectExpiredLocked(now, answers);
    if (release_at_ && *release_at_ <= now) {
      release_at_.reset();
      release = true;
    }
  }
  answerAll(answers);
  if (release) release_memory_();
  settleDirty();
}

void RefreshCoordinator::onRoundFinished() { settleDirty(); }

void RefreshCoordinator::answerAll(std::vector<Answer>& answers) {
  // Scheduled before any caller hears its answer, so the release time is
  // fixed by the moment the burst ended, never by what a caller does next
  // (such as a test advancing the clock once it has its answer).
  if (answers.size() >= kBurstAnswers && release_memory_ != nullptr) {
    MutexLock lock(&mutex_);
    release_at_ = time_source_.monotonicTime() + absl::ToChronoNanoseconds(kReleaseDelay);
    rescan_ = true;
  }
  for (auto& [done, result] : answers) done(std::move(result));
  answers.clear();
}

void RefreshCoordinator::settleDirty() {
  std::set<std::string> dirty;
  {
    MutexLock lock(&mutex_);
    dirty.swap(dirty_);
  }
  if (dirty.empty()) return;
  // One look at each profile, without the lock (the engine calls in here
  // with its own lock held).
  std::map<std::string, RefreshView> views;
  for (const std::string& profile : dirty) {
    std::optional<RefreshView> view =
        engine_.inspectAndRequest(profile, [](const RefreshView&) { return false; });
    if (view) views.emplace(profile, *std::move(view));
  }
  std::vector<Answer> answers;
  std::vector<std::tuple<uint64_t, RefreshRequest, absl::Duration>> retries;
  {
    MutexLock lock(&mutex_);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      Waiter& waiter = it->second;
      const auto view = views.find(waiter.profile);
      if (waiter.readmitting || view == views.end()) {
        ++it;
        continue;
      }
      bool retry = false;
      std::optional<absl::StatusOr<RefreshAnswer>> result = settle(waiter, view->second, &retry);
      if (retry) {
        waiter.readmitting = true;
        retries.emplace_back(it->first, waiter.request,
                             absl::FromChrono(waiter.deadline - time_source_.monotonicTime()));
      }
      if (!result) {
        ++it;
        continue;
      }
      answers.emplace_back(std::move(waiter.done), *std::move(result));
      it = waiters_.erase(it);
      --waiting_;
    }
  }
  // Answers and second rounds run without the lock: a callback finishes a
  // gRPC call, and admitting calls the engine.
  answerAll(answers);
  if (retries.empty()) return;
  std::vector<std::pair<uint64_t, Admission>> admissions;
  admissions.reserve(retries.size());
  for (auto& [id, request, patience] : retries) {
    admissions.emplace_back(id, admit(request, /*round=*/1, patience));
  }
  {
    MutexLock lock(&mutex_);
    for (auto& [id, admission] : admissions) {
      auto it = waiters_.find(id);
      if (it == waiters_.end()) continue;  // answered by stop()
      Waiter& waiter = it->second;
      waiter.readmitting = false;
      if (waiter.cancelled || admission.answer) {
        answers.emplace_back(std::move(waiter.done),
                             waiter.cancelled
                                 ? absl::CancelledError("refresh: the caller went away")
                                 : *std::move(admission.answer));
        waiters_.erase(it);
        --waiting_;
        continue;
      }
      waiter.round = 1;
      waiter.awaited = admission.awaited;
      waiter.requested = admission.requested;
      waiter.joined_earlier_fetch = false;
      // Its fetch may have completed during admit(): look again.
      dirty_.insert(waiter.profile);
    }
  }
  answerAll(answers);
}

void RefreshCoordinator::dispatch() {
  while (true) {
    std::vector<Answer> answers;
    bool release = false;
    {
      MutexLock lock(&mutex_);
      const auto has_news = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
        return stopping_ || !dirty_.empty() || rescan_;
      };
      if (waiters_.empty() && !release_at_) {
        // Nothing has a deadline: sleep until something changes, so an idle
        // sidecar does not wake for nothing (bench/run, P4 idle CPU).
        mutex_.Await(Condition(&has_news));
      } else {
        // Deadlines are checked at least this often: the wait is real
        // time, the deadlines are on the injected clock.
        absl::Duration wait = kCancelPollInterval;
        const MonotonicTime now = time_source_.monotonicTime();
        for (const auto& [id, waiter] : waiters_) {
          if (!waiter.readmitting) wait = std::min(wait, absl::FromChrono(waiter.deadline - now));
        }
        if (release_at_) wait = std::min(wait, absl::FromChrono(*release_at_ - now));
        mutex_.AwaitWithTimeout(Condition(&has_news), std::max(wait, absl::ZeroDuration()));
      }
      rescan_ = false;
      if (release_at_ && *release_at_ <= time_source_.monotonicTime() && !stopping_) {
        release_at_.reset();
        release = true;
      }
      if (stopping_) {
        collectAllLocked(answers);
      } else {
        collectExpiredLocked(time_source_.monotonicTime(), answers);
      }
    }
    answerAll(answers);
    if (release) release_memory_();
    {
      MutexLock lock(&mutex_);
      if (stopping_) return;
    }
    // Usually done already by onRoundFinished() on the scheduler's thread;
    // here for waiters whose fetch completed while they were being admitted.
    settleDirty();
  }
}

}  // namespace credsync::sync
