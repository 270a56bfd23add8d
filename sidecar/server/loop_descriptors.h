#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/time_source.h"

// The descriptors an epoll server of credsync owns besides its connections
// (probe_server.cc, sidecar/injector/webhook_server.cc): a TCP listener, the
// epoll set, and an eventfd that wakes the loop from other threads.
namespace credsync::server {

// epoll user data of the listener and the eventfd; connection ids start at
// kFirstConnectionEventId.
inline constexpr uint64_t kListenerEventId = 0;
inline constexpr uint64_t kWakeEventId = 1;
inline constexpr uint64_t kFirstConnectionEventId = 2;

// One accept() of a loop pass.
struct Accepted {
  int fd = -1;  // the new connection (non-blocking, close-on-exec), or -1
  // Its descriptor touches the reserve (sidecar/common/descriptors.h): the
  // caller counts it, then closes `fd` (so the count precedes the close a
  // client sees) and accepts on.
  bool refused_for_descriptors = false;
};

// Owned by the loop thread except wake(), which any thread may call.
class LoopDescriptors {
 public:
  // Binds `address` (listenTcp; `what` names the setting in its errors),
  // creates the epoll set and the eventfd and registers both with it.
  // `name` ("probe server") starts INTERNAL errors and the warning logged
  // when accept() fails for want of descriptors or memory.
  static absl::StatusOr<std::unique_ptr<LoopDescriptors>> open(const std::string& address,
                                                               absl::string_view what,
                                                               std::string name,
                                                               const TimeSource& time_source);
  ~LoopDescriptors();  // closes all three
  LoopDescriptors(const LoopDescriptors&) = delete;
  LoopDescriptors& operator=(const LoopDescriptors&) = delete;

  int epoll() const { return epoll_; }
  int port() const { return port_; }
  // "host:port" with the bound port.
  const std::string& address() const { return address_; }

  void wake();
  // Consumes the wake-ups, on a kWakeEventId event.
  void drainWake();

  // Accepts one waiting connection. fd -1 without refused_for_descriptors:
  // none is waiting, or accept() failed for want of descriptors or memory,
  // and then the listener rests (is not watched) for a moment instead of
  // being reported again at once.
  Accepted accept();
  // Watches the listener again once its rest is over; call every pass.
  void resumeListener();
  // When the listener's rest ends, while it rests: a bound on the loop's wait.
  const std::optional<MonotonicTime>& listenerPausedUntil() const { return paused_until_; }
  // Stops accepting: the listener is closed (new clients are refused).
  // Idempotent.
  void closeListener();

  // For epoll_wait: milliseconds from now until `next` (-1: wait without
  // bound, when `next` is unset), at most a minute.
  int waitMilliseconds(const std::optional<MonotonicTime>& next) const;

 private:
  LoopDescriptors(int listener, int epoll, int wake, int port, std::string address,
                  std::string name, const TimeSource& time_source);

  int listener_;
  const int epoll_;
  const int wake_;
  const int port_;
  const std::string address_;
  const std::string name_;
  const TimeSource& time_source_;
  std::optional<MonotonicTime> paused_until_;
  log::Occasionally accept_warning_;
};

}  // namespace credsync::server
