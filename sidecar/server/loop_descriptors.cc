#include "sidecar/server/loop_descriptors.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/descriptors.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/server/listener.h"

namespace credsync::server {
namespace {

// After EMFILE/ENFILE the listener rests this long instead of spinning on
// the connection it cannot take.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
// How often at most the accept failure warning is logged.
constexpr auto kWarningInterval = std::chrono::seconds(60);

void watchListener(int epoll, int listener, uint32_t events, int operation) {
  epoll_event event{};
  event.events = events;
  event.data.u64 = kListenerEventId;
  epoll_ctl(epoll, operation, listener, &event);
}

}  // namespace

absl::StatusOr<std::unique_ptr<LoopDescriptors>> LoopDescriptors::open(
    const std::string& address, absl::string_view what, std::string name,
    const TimeSource& time_source) {
  absl::StatusOr<TcpListener> listener = listenTcp(address, what);
  if (!listener.ok()) return listener.status();
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  if (wake < 0 || epoll < 0) {
    const int error = errno;
    close(listener->fd);
    if (wake >= 0) close(wake);
    if (epoll >= 0) close(epoll);
    return absl::InternalError(absl::StrCat(name, ": ", errnoText(error)));
  }
  watchListener(epoll, listener->fd, EPOLLIN, EPOLL_CTL_ADD);
  epoll_event wake_event{};
  wake_event.events = EPOLLIN;
  wake_event.data.u64 = kWakeEventId;
  epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &wake_event);
  return std::unique_ptr<LoopDescriptors>(new LoopDescriptors(
      listener->fd, epoll, wake, listener->port, listener->address, std::move(name), time_source));
}

LoopDescriptors::LoopDescriptors(int listener, int epoll, int wake, int port, std::string address,
                                 std::string name, const TimeSource& time_source)
    : listener_(listener),
      epoll_(epoll),
      wake_(wake),
      port_(port),
      address_(std::move(address)),
      name_(std::move(name)),
      time_source_(time_source),
      accept_warning_(kWarningInterval) {}

LoopDescriptors::~LoopDescriptors() {
  closeListener();
  close(epoll_);
  close(wake_);
}

void LoopDescriptors::wake() {
  const uint64_t one = 1;
  while (::write(wake_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

void LoopDescriptors::drainWake() {
  uint64_t count = 0;
  while (::read(wake_, &count, sizeof(count)) < 0 && errno == EINTR) {
  }
}

Accepted LoopDescriptors::accept() {
  Accepted accepted;
  if (listener_ < 0) return accepted;
  const int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) {
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      // The connection stays queued and epoll would report it again at
      // once: rest the listener a little instead of spinning.
      const int error = errno;
      if (!paused_until_) {
        paused_until_ = time_source_.monotonicTime() + kAcceptPause;
        watchListener(epoll_, listener_, 0, EPOLL_CTL_MOD);
      }
      if (accept_warning_.due(time_source_.monotonicTime())) {
        log::warn(absl::StrCat(name_, " cannot accept connections"),
                  {{"address", address_}, {"error", errnoText(error)}});
      }
    }
    // EAGAIN: none left. ECONNABORTED, EINTR and the network errors Linux
    // passes on from the new socket: the next event retries.
    return accepted;
  }
  accepted.fd = fd;
  accepted.refused_for_descriptors = !leavesDescriptorReserve(fd);
  return accepted;
}

void LoopDescriptors::resumeListener() {
  if (!paused_until_ || *paused_until_ > time_source_.monotonicTime()) return;
  paused_until_.reset();
  if (listener_ >= 0) watchListener(epoll_, listener_, EPOLLIN, EPOLL_CTL_MOD);
}

void LoopDescriptors::closeListener() {
  if (listener_ < 0) return;
  epoll_ctl(epoll_, EPOLL_CTL_DEL, listener_, nullptr);
  close(listener_);
  listener_ = -1;
  paused_until_.reset();
}

int LoopDescriptors::waitMilliseconds(const std::optional<MonotonicTime>& next) const {
  if (!next) return -1;
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(*next - time_source_.monotonicTime());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 60'000));
}

}  // namespace credsync::server
