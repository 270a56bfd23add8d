#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/common/mutex.h"
#include "sidecar/sync/sync_listener.h"

namespace credsync::sync {

// Fans profile changes out to Watch subscribers. Publishing never blocks on a
// subscriber: each has its own bounded backlog, and one that falls that far
// behind is ended (ABORTED) rather than slowing the fetch path or silently
// missing a change; it re-subscribes and starts from the current state.
// A subscriber either waits in next() (a thread per subscriber) or is told by
// a notifier that there is news and takes it with tryNext() (no thread).
// Thread-safe.
class ChangeFeed : public SyncListener {
 public:
  static constexpr size_t kDefaultBacklog = 64;

  class Subscription {
   public:
    // Clears the notifier (see clearNotifier()) and unsubscribes.
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

    // The next change, waiting up to `timeout`: nullopt when none came in
    // time; CANCELLED once the feed is closed (shutdown) and the backlog is
    // drained; ABORTED when the backlog overflowed.
    absl::StatusOr<std::optional<ProfileChange>> next(absl::Duration timeout);
    // As next(), without waiting: nullopt when there is nothing to read now.
    absl::StatusOr<std::optional<ProfileChange>> tryNext();

    // `notifier` is called each time this subscription gains something to
    // read (a change, the overflow, the close) from then on; news that came
    // before it was set is for the caller to take with tryNext() after. It
    // runs on the publishing thread (the sync engine's, under the engine's
    // lock, or the one closing the feed), with no lock of the feed or of the
    // subscription held, so it may call tryNext(); it must return quickly and
    // must not call setNotifier(), clearNotifier() or destroy the
    // subscription. Calls are never concurrent with each other. Replaces any
    // earlier notifier.
    void setNotifier(std::function<void()> notifier);
    // Removes the notifier. When this returns, a call in progress on another
    // thread has returned and no further call will start, so whatever the
    // notifier refers to may be destroyed. Idempotent.
    void clearNotifier();

   private:
    friend class ChangeFeed;
    struct State;
    Subscription(ChangeFeed& feed, std::shared_ptr<State> state)
        : feed_(feed), state_(std::move(state)) {}
    ChangeFeed& feed_;
    std::shared_ptr<State> state_;
  };

  explicit ChangeFeed(size_t backlog = kDefaultBacklog) : backlog_(backlog) {}

  // Changes of `profile` from now on; an empty name subscribes to all.
  std::unique_ptr<Subscription> subscribe(const std::string& profile);
  // Ends every subscription, present and future (shutdown).
  void close();
  int subscribers() const;

  void onProfileChanged(const ProfileChange& change) override;

 private:
  void unsubscribe(const Subscription::State* state);

  const size_t backlog_;
  mutable Mutex mutex_;
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::shared_ptr<Subscription::State>> subscribers_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::sync
