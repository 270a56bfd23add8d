#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "sidecar/common/time_source.h"
#include "sidecar/server/health_service.h"

namespace credsync::server {

struct GrpcServerOptions {
  std::string socket_path;  // always served
  uint32_t socket_mode = 0660;
  std::optional<gid_t> socket_group;
  std::string tcp_address;  // empty: no TCP listener
  // Bounds the threads synchronous handlers may hold (a Refresh or Watch
  // holds one while it waits); calls beyond it get RESOURCE_EXHAUSTED.
  int max_threads = 1024;
  // How often a health Watch re-evaluates the status.
  absl::Duration health_interval = absl::Milliseconds(500);
};

// Serves gRPC services on a Unix socket (created with the configured mode and
// group, replacing a stale socket left by a crash but never a live one or a
// non-socket) and optionally on TCP, with grpc.health.v1 answered from
// `health`.
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
  // Reports NOT_SERVING, stops accepting, lets calls in flight finish for up
  // to `grace`, then cancels the rest and removes the socket. Idempotent.
  void shutdown(absl::Duration grace);

 private:
  GrpcServer() = default;
  GrpcServerOptions options_;
  const TimeSource* time_source_ = nullptr;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  std::string tcp_address_;
  std::atomic<bool> stopped_{false};
};

}  // namespace credsync::server
