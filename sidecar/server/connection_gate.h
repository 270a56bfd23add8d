#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/time_source.h"

namespace credsync::server {

struct ConnectionGateStats {
  size_t open = 0;  // handed over and not yet closed by the server
  uint64_t accepted = 0;
  uint64_t refused_for_descriptors = 0;
  uint64_t refused_at_limit = 0;
};

// The accept loop in front of a server that cannot bound its own
// connections (gRPC 1.51 has no connection limit): it accepts on a listener
// it owns and hands each connection over (grpc::AddInsecureChannelFromFd),
// closing at once, instead, every connection that would leave fewer than
// kDescriptorReserve descriptors free (sidecar/common/descriptors.h) or
// exceed `max_connections` open. A client opening connections without limit
// therefore costs credsync a bounded number of descriptors and connection
// states and never the descriptors a fetch and a publish need.
//
// Whether a handed-over connection is still open is read from the
// descriptor itself (its socket inode), so no callback from the server is
// needed. Thread-safe.
class ConnectionGate {
 public:
  using HandOver = std::function<void(int fd)>;

  // Takes `listener` (listening, non-blocking); accepts nothing until
  // serve(), so the gate can be stored where calls will look for it first.
  // `name` is the listener's name in logs ("unix").
  // `time_source` must outlive the gate.
  static absl::StatusOr<std::unique_ptr<ConnectionGate>> create(std::string name, int listener,
                                                                size_t max_connections,
                                                                HandOver hand_over,
                                                                const TimeSource& time_source);
  // Accepts on its own thread until stop().
  absl::Status serve();
  ~ConnectionGate();  // stops
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // Stops accepting and closes the listener; connections already handed
  // over stay with the server. Idempotent.
  void stop();

  // True when descriptor `fd` is a connection this gate handed over and
  // the server has not closed: how a call learns which listener its
  // connection came through (gRPC names such a peer "fd:N").
  bool handedOver(int fd) const;
  // handedOver() for a gRPC peer string ("fd:12"); false for any other.
  bool handedOverPeer(absl::string_view peer) const;

  ConnectionGateStats stats() const;

 private:
  class Impl;
  explicit ConnectionGate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace credsync::server
