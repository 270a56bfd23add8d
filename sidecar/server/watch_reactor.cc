#include "sidecar/server/watch_reactor.h"

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/mutex.h"
#include "sidecar/server/proto_time.h"
#include "sidecar/server/reactor_support.h"

namespace credsync::server {
namespace {

using credsync::v1::WatchResponse;

WatchResponse initialMessage(const sync::ProfileStatus& status) {
  WatchResponse message;
  message.set_profile(status.name);
  message.set_access_key_id(status.access_key_id);
  message.set_version_id(status.version_id);
  message.set_generation(status.generation);
  setTime(status.last_change, &message, &WatchResponse::mutable_change_time);
  message.set_initial(true);
  return message;
}

WatchResponse changeMessage(const sync::ProfileChange& change) {
  WatchResponse message;
  message.set_profile(change.profile);
  message.set_access_key_id(change.access_key_id);
  message.set_previous_access_key_id(change.previous_access_key_id);
  message.set_version_id(change.version_id);
  message.set_previous_version_id(change.previous_version_id);
  message.set_generation(change.generation);
  setTime(change.change_time, message.mutable_change_time());
  return message;
}

// A call that is over before it started.
class FinishedWatch final : public grpc::ServerWriteReactor<WatchResponse> {
 public:
  // gRPC holds a Finish made before the handler returns until it binds the
  // reactor.
  explicit FinishedWatch(const grpc::Status& status) {
    Finish(status);
    handOver(this);
  }
  void OnDone() override {
    takeOver(this);
    delete this;
  }
};

// One open Watch stream.
//
// Three kinds of thread drive it: gRPC's (OnWriteDone, OnCancel, OnDone), the
// publisher's (the subscription's notifier, from the sync engine or from the
// feed's close()) and the handler's (start()). Each takes mutex_ and, in
// step(), starts what comes next: at most one write is outstanding (writing_)
// and Finish is called once (finished_), only with no write outstanding.
//
// gRPC operations are started with mutex_ held. That is safe because gRPC
// never runs a reaction inside StartWrite or Finish (write reactions are not
// inlineable; an inlined finish callback only schedules OnDone elsewhere), and
// it orders every start with the reactions that follow it, OnDone's delete
// included, as far as ThreadSanitizer can see.
//
// Lifetime: gRPC calls OnDone after Finish and after every other reaction has
// returned. The notifier is the only caller gRPC does not know about; OnDone
// destroys the subscription first, which waits for a notifier call in
// progress to return and stops further ones, and only then deletes the
// reactor.
//
// Lock order: the subscription's notifier lock, then mutex_, then the
// subscription's own; so mutex_ is never held while setting or clearing the
// notifier.
class WatchReactor final : public grpc::ServerWriteReactor<WatchResponse> {
 public:
  // `initial` is sent first; a change is sent only if its generation is newer
  // than `reported` says for its profile.
  WatchReactor(std::unique_ptr<sync::ChangeFeed::Subscription> subscription,
               std::deque<WatchResponse> initial, std::map<std::string, uint64_t> reported)
      : subscription_(std::move(subscription)),
        initial_(std::move(initial)),
        reported_(std::move(reported)) {}

  // Starts sending. Called once, by the handler, before it returns the reactor.
  void start() ABSL_LOCKS_EXCLUDED(mutex_) {
    sync::ChangeFeed::Subscription* subscription = nullptr;
    {
      MutexLock lock(&mutex_);
      subscription = subscription_.get();
    }
    // Only OnDone releases the subscription, and gRPC cannot call it before
    // the handler has returned.
    subscription->setNotifier([this] { advance(); });
    // Whatever the feed queued before the notifier was set is read here.
    advance();
    handOver(this);
  }

  void OnWriteDone(bool ok) override {
    takeOver(this);
    MutexLock lock(&mutex_);
    writing_ = false;
    // The caller is gone; the synchronous handler returned OK here.
    if (!ok && !ending_) ending_ = grpc::Status::OK;
    step();
  }

  void OnCancel() override {
    takeOver(this);
    MutexLock lock(&mutex_);
    if (!ending_) {
      ending_ = grpc::Status(grpc::StatusCode::CANCELLED, "watch: the caller went away");
    }
    step();
  }

  void OnDone() override {
    takeOver(this);
    std::unique_ptr<sync::ChangeFeed::Subscription> subscription;
    {
      MutexLock lock(&mutex_);
      subscription = std::move(subscription_);
    }
    // Not under mutex_: this waits for a notifier call in progress, which
    // takes mutex_. Once it returns no notifier call can reach this reactor.
    subscription.reset();
    delete this;
  }

 private:
  // The notifier: the subscription has news.
  void advance() ABSL_LOCKS_EXCLUDED(mutex_) {
    MutexLock lock(&mutex_);
    step();
  }

  // Starts the next write, or the Finish, if it is due.
  void step() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (finished_ || writing_) return;
    if (ending_) return finish(*ending_);
    if (!initial_.empty()) {
      message_ = std::move(initial_.front());
      initial_.pop_front();
      return write();
    }
    if (subscription_ == nullptr) return;  // unreachable before Finish
    while (true) {
      absl::StatusOr<std::optional<sync::ProfileChange>> next = subscription_->tryNext();
      // Shutdown (CANCELLED, once what was queued is sent) or a backlog
      // overflow (ABORTED).
      if (!next.ok()) return finish(toGrpc(next.status()));
      if (!next->has_value()) return;
      const sync::ProfileChange& change = **next;
      // Already reported, in the initial state or as a change.
      if (auto it = reported_.find(change.profile);
          it != reported_.end() && change.generation <= it->second) {
        continue;
      }
      reported_[change.profile] = change.generation;
      message_ = changeMessage(change);
      return write();
    }
  }

  // gRPC reads message_ until OnWriteDone; only a step() that finds writing_
  // false changes it.
  void write() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    writing_ = true;
    handOver(this);
    StartWrite(&message_);
  }

  void finish(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    finished_ = true;
    handOver(this);
    Finish(status);
  }

  Mutex mutex_;
  std::unique_ptr<sync::ChangeFeed::Subscription> subscription_ ABSL_GUARDED_BY(mutex_);
  std::deque<WatchResponse> initial_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, uint64_t> reported_ ABSL_GUARDED_BY(mutex_);  // profile → generation
  WatchResponse message_ ABSL_GUARDED_BY(mutex_);                     // the write in flight
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  std::optional<grpc::Status> ending_ ABSL_GUARDED_BY(mutex_);  // sent once no write is out
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace

grpc::ServerWriteReactor<WatchResponse>* startWatch(grpc::CallbackServerContext* /*context*/,
                                                    const credsync::v1::WatchRequest& request,
                                                    sync::SyncEngine& engine,
                                                    sync::ChangeFeed& feed) {
  std::string profile;
  if (!request.profile().empty()) {
    const std::optional<sync::RefreshView> view =
        engine.inspectAndRequest(request.profile(), [](const sync::RefreshView&) { return false; });
    if (!view) {
      return finishedWatch(grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("profile ", request.profile(), ": no such profile is configured")));
    }
    profile = view->profile;
  }
  // Subscribe before reading the state, so no change falls between the two;
  // a change already reported in the initial state is skipped.
  std::unique_ptr<sync::ChangeFeed::Subscription> subscription = feed.subscribe(profile);
  std::deque<WatchResponse> initial;
  std::map<std::string, uint64_t> reported;
  for (const sync::ProfileStatus& status : engine.status()) {
    if (!status.written || (!profile.empty() && status.name != profile)) continue;
    initial.push_back(initialMessage(status));
    reported[status.name] = status.generation;
  }
  auto* reactor =
      new WatchReactor(std::move(subscription), std::move(initial), std::move(reported));
  reactor->start();
  return reactor;
}

grpc::ServerWriteReactor<WatchResponse>* finishedWatch(const grpc::Status& status) {
  return new FinishedWatch(status);
}

}  // namespace credsync::server
