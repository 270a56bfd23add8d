#include "sidecar/server/connection_gate.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "sidecar/common/descriptors.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"

namespace credsync::server {
namespace {

// Accepts per wake-up, so stop() is never kept waiting by a storm.
constexpr int kAcceptsPerPass = 256;
// At the limit, the table of handed-over connections is checked against
// the descriptors at most this often; in between, new connections are
// refused without the check, so a storm costs no more than that.
constexpr auto kSweepInterval = std::chrono::milliseconds(100);
// After EMFILE/ENFILE the listener rests this long instead of spinning.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
constexpr auto kWarningInterval = std::chrono::seconds(60);

// The socket inode behind `fd`, if it is open.
std::optional<ino_t> inodeOf(int fd) {
  struct stat info {};
  if (fstat(fd, &info) != 0 || !S_ISSOCK(info.st_mode)) return std::nullopt;
  return info.st_ino;
}

}  // namespace

class ConnectionGate::Impl {
 public:
  Impl(std::string name, int listener, int wake, size_t max_connections, HandOver hand_over,
       const TimeSource& time_source)
      : time_source_(time_source),
        name_(std::move(name)),
        listener_(listener),
        wake_(wake),
        max_connections_(max_connections),
        hand_over_(std::move(hand_over)) {}

  ~Impl() {
    stop();
    close(wake_);
  }

  absl::Status run() {
    try {
      thread_ = std::thread([this] { acceptLoop(); });
    } catch (const std::system_error& error) {
      close(listener_);
      listener_closed_ = true;
      return absl::InternalError(
          absl::StrCat("control ", name_, ": cannot start a thread: ", error.what()));
    }
    return absl::OkStatus();
  }

  void stop() {
    MutexLock stop_lock(&stop_mutex_);
    if (stopped_) return;
    const uint64_t one = 1;
    while (::write(wake_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    if (thread_.joinable()) {
      thread_.join();  // the accept loop closed the listener as it ended
    } else if (!listener_closed_) {
      close(listener_);
    }
    stopped_ = true;
  }

  bool handedOver(int fd) const {
    // The descriptor is read under the mutex the accept loop recorded it
    // under, which orders this read after its accept for ThreadSanitizer too
    // (the hand-over itself goes through gRPC, which TSan does not see).
    MutexLock lock(&mutex_);
    const auto found = handed_.find(fd);
    return found != handed_.end() && inodeOf(fd) == found->second;
  }

  ConnectionGateStats stats() const {
    MutexLock lock(&mutex_);
    sweepLocked();
    ConnectionGateStats stats = stats_;
    stats.open = handed_.size();
    return stats;
  }

 private:
  void acceptLoop() {
    // After EMFILE the listener rests until then, unwatched.
    MonotonicTime resume_at = MonotonicTime::min();
    for (;;) {
      const MonotonicTime now = time_source_.monotonicTime();
      const bool resting = now < resume_at;
      std::array<pollfd, 2> entries = {pollfd{wake_, POLLIN, 0}, pollfd{listener_, POLLIN, 0}};
      const int timeout_ms =
          resting ? static_cast<int>(
                        std::chrono::ceil<std::chrono::milliseconds>(resume_at - now).count())
                  : -1;
      const int ready = poll(entries.data(), resting ? 1 : 2, timeout_ms);
      if (ready < 0 && errno != EINTR) {
        log::error("control stopped accepting", {{"listener", name_}, {"error", errnoText(errno)}});
        break;
      }
      if (entries[0].revents != 0) break;  // stop()
      if (!resting && entries[1].revents != 0) {
        if (const std::optional<int> error = acceptSome(); error) {
          resume_at = time_source_.monotonicTime() + kAcceptPause;
          if (last_accept_warning_.due(time_source_.monotonicTime())) {
            log::warn("control cannot accept connections",
                      {{"listener", name_}, {"error", errnoText(*error)}});
          }
        }
      }
    }
    close(listener_);
  }

  // Accepts what is queued, up to a pass's worth. Returns the errno when
  // the process (or system) is out of descriptors or memory.
  std::optional<int> acceptSome() {
    for (int i = 0; i < kAcceptsPerPass; ++i) {
      const int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          return errno;
        }
        return std::nullopt;  // EAGAIN: none left; others: the next event retries
      }
      // Counted before the close, so a client that sees it closed sees it
      // counted.
      if (!leavesDescriptorReserve(fd)) {
        refuse("descriptor_reserve");
        close(fd);
        continue;
      }
      if (!admit(fd)) {
        refuse("limit");
        close(fd);
        continue;
      }
      hand_over_(fd);
    }
    return std::nullopt;
  }

  // Records `fd` as handed over, unless max_connections are open.
  bool admit(int fd) {
    const std::optional<ino_t> inode = inodeOf(fd);
    if (!inode) return false;
    MutexLock lock(&mutex_);
    if (handed_.size() >= max_connections_) {
      const MonotonicTime now = time_source_.monotonicTime();
      if (!last_sweep_ || now - *last_sweep_ >= kSweepInterval) {
        last_sweep_ = now;
        sweepLocked();
      }
      if (handed_.size() >= max_connections_) return false;
    }
    // A descriptor number the server closed and the kernel reused: the
    // entry is replaced, its old connection is gone.
    handed_[fd] = *inode;
    ++stats_.accepted;
    return true;
  }

  // Forgets the connections the server has closed: their descriptor is
  // closed, or reused for another socket.
  void sweepLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    for (auto it = handed_.begin(); it != handed_.end();) {
      const std::optional<ino_t> inode = inodeOf(it->first);
      it = inode == it->second ? std::next(it) : handed_.erase(it);
    }
  }

  void refuse(absl::string_view reason) {
    uint64_t total = 0;
    {
      MutexLock lock(&mutex_);
      total = reason == "limit" ? ++stats_.refused_at_limit : ++stats_.refused_for_descriptors;
    }
    if ((reason == "limit" ? last_limit_warning_ : last_descriptor_warning_)
            .due(time_source_.monotonicTime())) {
      log::warn(reason == "limit"
                    ? "control refusing connections at its connection limit"
                    : "control refusing connections to keep descriptors for publishing",
                {{"listener", name_},
                 {"max_connections", max_connections_},
                 {"descriptor_limit", descriptorLimit()},
                 {"reserve", kDescriptorReserve},
                 {"refused_total", static_cast<unsigned long>(total)}});
    }
  }

  const TimeSource& time_source_;
  const std::string name_;
  const int listener_;  // closed by the accept loop as it ends
  const int wake_;
  const size_t max_connections_;
  const HandOver hand_over_;
  std::thread thread_;
  bool listener_closed_ = false;  // by a failed run()

  // Only the accept loop touches these.
  std::optional<MonotonicTime> last_sweep_;
  log::Occasionally last_accept_warning_{kWarningInterval};
  log::Occasionally last_limit_warning_{kWarningInterval};
  log::Occasionally last_descriptor_warning_{kWarningInterval};

  mutable Mutex mutex_;
  // Handed-over descriptors and the socket inode each had then.
  mutable std::unordered_map<int, ino_t> handed_ ABSL_GUARDED_BY(mutex_);
  ConnectionGateStats stats_ ABSL_GUARDED_BY(mutex_);

  Mutex stop_mutex_;
  bool stopped_ ABSL_GUARDED_BY(stop_mutex_) = false;
};

absl::StatusOr<std::unique_ptr<ConnectionGate>> ConnectionGate::create(
    std::string name, int listener, size_t max_connections, HandOver hand_over,
    const TimeSource& time_source) {
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    const int error = errno;
    close(listener);
    return absl::InternalError(absl::StrCat("control ", name, ": ", errnoText(error)));
  }
  auto impl = std::make_unique<Impl>(std::move(name), listener, wake, max_connections,
                                     std::move(hand_over), time_source);
  return std::unique_ptr<ConnectionGate>(new ConnectionGate(std::move(impl)));
}

ConnectionGate::ConnectionGate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ConnectionGate::~ConnectionGate() { stop(); }

absl::Status ConnectionGate::serve() { return impl_->run(); }

void ConnectionGate::stop() { impl_->stop(); }

bool ConnectionGate::handedOver(int fd) const { return impl_->handedOver(fd); }

bool ConnectionGate::handedOverPeer(absl::string_view peer) const {
  int fd = -1;
  return absl::ConsumePrefix(&peer, "fd:") && absl::SimpleAtoi(peer, &fd) && fd >= 0 &&
         handedOver(fd);
}

ConnectionGateStats ConnectionGate::stats() const { return impl_->stats(); }

}  // namespace credsync::server
