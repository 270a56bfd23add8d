#include "sidecar/sync/change_feed.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace credsync::sync {

struct ChangeFeed::Subscription::State {
  explicit State(std::string filter) : profile(std::move(filter)) {}
  const std::string profile;  // empty: every profile
  Mutex mutex;
  std::deque<ProfileChange> backlog ABSL_GUARDED_BY(mutex);
  bool overflowed ABSL_GUARDED_BY(mutex) = false;
  bool closed ABSL_GUARDED_BY(mutex) = false;
};

ChangeFeed::Subscription::~Subscription() { feed_.unsubscribe(state_.get()); }

absl::StatusOr<std::optional<ProfileChange>> ChangeFeed::Subscription::next(
    absl::Duration timeout) {
  State& state = *state_;
  MutexLock lock(&state.mutex);
  const auto has_news = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mutex) {
    return !state.backlog.empty() || state.overflowed || state.closed;
  };
  state.mutex.AwaitWithTimeout(Condition(&has_news), timeout);
  if (state.overflowed) {
    return absl::AbortedError(
        "watch: this subscriber fell too far behind the changes; subscribe again");
  }
  if (!state.backlog.empty()) {
    ProfileChange change = std::move(state.backlog.front());
    state.backlog.pop_front();
    return change;
  }
  if (state.closed) return absl::CancelledError("watch: credsync is shutting down");
  return std::nullopt;
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
  MutexLock lock(&mutex_);
  closed_ = true;
  for (const auto& state : subscribers_) {
    MutexLock state_lock(&state->mutex);
    state->closed = true;
  }
  subscribers_.clear();
}

int ChangeFeed::subscribers() const {
  MutexLock lock(&mutex_);
  return static_cast<int>(subscribers_.size());
}

void ChangeFeed::onProfileChanged(const ProfileChange& change) {
  MutexLock lock(&mutex_);
  for (const auto& state : subscribers_) {
    if (!state->profile.empty() && state->profile != change.profile) continue;
    MutexLock state_lock(&state->mutex);
    if (state->overflowed) continue;
    if (state->backlog.size() >= backlog_) {
      // Dropping a change silently would leave the app on a dead key.
      state->overflowed = true;
      state->backlog.clear();
      continue;
    }
    state->backlog.push_back(change);
  }
}

}  // namespace credsync::sync
