#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "sidecar/common/time_source.h"
#include "sidecar/server/connection_gate.h"
#include "sidecar/server/health_service.h"

namespace credsync::server {

class GrpcServer;

struct GrpcServerOptions {
  std::string socket_path;  // always served
  uint32_t socket_mode = 0660;
  std::optional<gid_t> socket_group;
  std::string tcp_address;  // empty: no TCP listener
  // Bounds the threads synchronous handlers may hold (a Refresh or Watch
  // holds one while it waits); calls beyond it get RESOURCE_EXHAUSTED.
  int max_threads = 1024;
  // Connections open at most per listener (Unix socket, TCP); more are
  // refused as they are accepted (ConnectionGate). An idle gRPC connection
  // holds about 12 KiB. Lowered to a quarter of what RLIMIT_NOFILE leaves
  // beside the descriptor reserve, so the listeners together never take it.
  size_t max_connections = 1024;
  // Calls at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
  int max_streams_per_connection = 100;
  // A connection with no call for this long is closed (with GOAWAY, which
  // gRPC clients answer by reconnecting when next needed), so connections
  // a client leaks do not stay forever.
  absl::Duration max_connection_idle = absl::Minutes(2);
  // Called once the server is built, before the first connection is
  // accepted: where a service learns the server it runs in (isUnixPeer).
  std::function<void(const GrpcServer&)> before_accepting;
  // How often a health Watch re-evaluates the status.
  absl::Duration health_interval = absl::Milliseconds(500);
};

// Serves gRPC services on a Unix socket (created with the configured mode and
// group, replacing a stale socket left by a crash but never a live one or a
// non-socket) and optionally on TCP, with grpc.health.v1 answered from
// `health`. credsync accepts the connections itself and hands them to gRPC
// (ConnectionGate), so a client opening connections without limit meets a
// bounded count and never takes the descriptors publishing needs.
class GrpcServer {
 public:
  // Must run before other threads create files: it narrows the umask while
  // the socket is bound, so the socket never exists with a wider mode.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> start(const GrpcServerOptions& options,
                                                           grpc::Service* service,
                                                           HealthSources health,
                                                           const TimeSource& time_source);
  ~GrpcServer();

  // The bound TCP address ("127.0.0.1:40123"); empty without TCP.
  const std::string& tcpAddress() const { return tcp_address_; }
  // True when a call's peer (grpc::ServerContext::peer()) is a connection
  // that came in over the Unix socket and is still open.
  bool isUnixPeer(absl::string_view peer) const;
  // Each listener's connection counts: "unix", and "tcp" when served.
  std::vector<std::pair<std::string, ConnectionGateStats>> listenerStats() const;
  // Reports NOT_SERVING, stops accepting, lets calls in flight finish for up
  // to `grace`, then cancels the rest and removes the socket. Idempotent.
  void shutdown(absl::Duration grace);

 private:
  GrpcServer() = default;
  GrpcServerOptions options_;
  const TimeSource* time_source_ = nullptr;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<ConnectionGate> unix_gate_;
  std::unique_ptr<ConnectionGate> tcp_gate_;
  // unix_gate_, for isUnixPeer() on gRPC's threads: published before the
  // first connection is accepted, in a way ThreadSanitizer can see (gRPC's
  // own synchronisation is not instrumented).
  std::atomic<const ConnectionGate*> unix_peers_{nullptr};
  std::string tcp_address_;
  std::atomic<bool> stopped_{false};
};

// Binds a service built before its server to that server's isUnixPeer:
// `check` goes in ControlServiceOptions::is_unix_peer, `bind` in
// GrpcServerOptions::before_accepting. Until bound, no peer is a Unix one.
struct UnixPeerCheck {
  std::function<bool(absl::string_view peer)> check;
  std::function<void(const GrpcServer&)> bind;
};
UnixPeerCheck makeUnixPeerCheck();

}  // namespace credsync::server
