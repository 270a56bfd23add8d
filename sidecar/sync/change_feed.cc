#include "sidecar/sync/change_feed.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace credsync::sync {

struct ChangeFeed::Subscription::State {
  explicit State(std::string filter) : profile(std::move(filter)) {}

  // The oldest news: a change, or the end of the subscription.
  absl::StatusOr<std::optional<ProfileChange>> take() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
    if (overflowed) {
      return absl::AbortedError(
          "watch: this subscriber fell too far behind the changes; subscribe again");
    }
    if (!backlog.empty()) {
      ProfileChange change = std::move(backlog.front());
      backlog.pop_front();
      return change;
    }
    if (closed) return absl::CancelledError("watch: credsync is shutting down");
    return std::nullopt;
  }

  // Tells the subscriber there is news. Called with neither the feed's mutex
  // nor `mutex` held: the notifier reads with tryNext().
  void notify() ABSL_LOCKS_EXCLUDED(mutex) {
    MutexLock lock(&notifier_mutex);
    if (notifier) notifier();
  }

  const std::string profile;  // empty: every profile
  // Held while the notifier runs, so that clearNotifier() waits out a call in
  // progress. Never taken while `mutex` or the feed's mutex is held.
  Mutex notifier_mutex ABSL_ACQUIRED_BEFORE(mutex);
  std::function<void()> notifier ABSL_GUARDED_BY(notifier_mutex);
  Mutex mutex;
  std::deque<ProfileChange> backlog ABSL_GUARDED_BY(mutex);
  bool overflowed ABSL_GUARDED_BY(mutex) = false;
  bool closed ABSL_GUARDED_BY(mutex) = false;
};

ChangeFeed::Subscription::~Subscription() {
  clearNotifier();
  feed_.unsubscribe(state_.get());
}

absl::StatusOr<std::optional<ProfileChange>> ChangeFeed::Subscription::next(
    absl::Duration timeout) {
  State& state = *state_;
  MutexLock lock(&state.mutex);
  const auto has_news = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mutex) {
    return !state.backlog.empty() || state.overflowed || state.closed;
  };
  state.mutex.AwaitWithTimeout(Condition(&has_news), timeout);
  return state.take();
}

absl::StatusOr<std::optional<ProfileChange>> ChangeFeed::Subscription::tryNext() {
  MutexLock lock(&state_->mutex);
  return state_->take();
}

void ChangeFeed::Subscription::setNotifier(std::function<void()> notifier) {
  MutexLock lock(&state_->notifier_mutex);
  state_->notifier = std::move(notifier);
}

void ChangeFeed::Subscription::clearNotifier() {
  std::function<void()> cleared;
  {
    MutexLock lock(&state_->notifier_mutex);
    cleared.swap(state_->notifier);
  }
  // `cleared` (and what it captured) is destroyed here, outside the lock.
}

std::unique_ptr<ChangeFeed::Subscription> ChangeFeed::subscribe(const std::string& profile) {
  auto state = std::make_shared<Subscription::State>(profile);
  MutexLock lock(&mutex_);
  if (closed_) {
    MutexLock state_lock(&state->mutex);
    state->closed = true;
  } else {
    subscribers_.push_back(state);
  }
  return std::unique_ptr<Subscription>(new Subscription(*this, std::move(state)));
}

void ChangeFeed::unsubscribe(const Subscription::State* state) {
  MutexLock lock(&mutex_);
  subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                    [state](const auto& s) { return s.get() == state; }),
                     subscribers_.end());
}

void ChangeFeed::close() {
  std::vector<std::shared_ptr<Subscription::State>> closed;
  {
    MutexLock lock(&mutex_);
    closed_ = true;
    for (const auto& state : subscribers_) {
      MutexLock state_lock(&state->mutex);
      state->closed = true;
    }
    closed.swap(subscribers_);
  }
  // The shared_ptrs keep each state alive while its notifier runs, even if
  // the subscription is being destroyed meanwhile.
  for (const auto& state : closed) state->notify();
}

int ChangeFeed::subscribers() const {
  MutexLock lock(&mutex_);
  return static_cast<int>(subscribers_.size());
}

void ChangeFeed::onProfileChanged(const ProfileChange& change) {
  std::vector<std::shared_ptr<Subscription::State>> woken;
  {
    MutexLock lock(&mutex_);
    for (const auto& state : subscribers_) {
      if (!state->profile.empty() && state->profile != change.profile) continue;
      MutexLock state_lock(&state->mutex);
      if (state->overflowed) continue;
      if (state->backlog.size() >= backlog_) {
        // Dropping a change silently would leave the app on a dead key.
        state->overflowed = true;
        state->backlog.clear();
      } else {
        state->backlog.push_back(change);
      }
      woken.push_back(state);
    }
  }
  // Outside the locks: a notifier reads with tryNext(), and the engine's lock,
  // which our caller holds, is the only one it may run under.
  for (const auto& state : woken) state->notify();
}

}  // namespace credsync::sync
