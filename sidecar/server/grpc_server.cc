#include "sidecar/server/grpc_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_posix.h"
#include "sidecar/common/descriptors.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/common/logging.h"
#include "sidecar/server/listener.h"

namespace credsync::server {
namespace {

absl::Status socketError(const std::string& path, const std::string& what) {
  return absl::FailedPreconditionError(
      absl::StrCat("control.socket ", path, ": ", what, ": ", errnoText(errno)));
}

// A socket file left by a crashed credsync is removed; a live one (another
// credsync serving this directory) or anything that is not a socket stays.
absl::Status clearStaleSocket(const std::string& path) {
  sockaddr_un address{};
  // The liveness probe below needs the whole path in sun_path.
  if (path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("control.socket ", path, ": must be at most ", sizeof(address.sun_path) - 1,
                     " bytes (a Unix socket path limit); set a shorter path"));
  }
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return socketError(path, "cannot inspect");
  }
  if (!S_ISSOCK(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("control.socket ", path, ": exists and is not a socket; remove it or choose ",
                     "another path"));
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return socketError(path, "cannot create a probe socket");
  const bool live =
      ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  ::close(probe);
  if (live) {
    return absl::FailedPreconditionError(absl::StrCat(
        "control.socket ", path, ": another process is serving it (a second credsync?)"));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return socketError(path, "cannot remove the stale socket");
  }
  log::info("removed a stale control socket", {{"path", path}});
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::start(const GrpcServerOptions& options,
                                                              grpc::Service* service,
                                                              HealthSources health,
                                                              const TimeSource& time_source) {
  if (absl::Status cleared = clearStaleSocket(options.socket_path); !cleared.ok()) return cleared;

  std::unique_ptr<GrpcServer> server(new GrpcServer());
  server->options_ = options;
  server->time_source_ = &time_source;
  server->health_ = std::make_unique<HealthService>(std::move(health), options.health_interval);

  // credsync binds and accepts itself and hands gRPC each connection it
  // takes (ConnectionGate): gRPC would accept without limit.
  absl::StatusOr<int> unix_listener =
      listenUnix(options.socket_path, options.socket_mode, options.socket_group);
  if (!unix_listener.ok()) return unix_listener.status();
  std::optional<TcpListener> tcp_listener;
  if (!options.tcp_address.empty()) {
    absl::StatusOr<TcpListener> tcp = listenTcp(options.tcp_address, "control.tcp_address");
    if (!tcp.ok()) {
      ::close(*unix_listener);
      ::unlink(options.socket_path.c_str());
      return tcp.status();
    }
    tcp_listener = *std::move(tcp);
    server->tcp_address_ = tcp_listener->address;
  }

  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("credsync-control");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_streams_per_connection);
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONNECTION_IDLE_MS,
      static_cast<int>(absl::ToInt64Milliseconds(options.max_connection_idle)));
  builder.RegisterService(service);
  builder.RegisterService(server->health_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    ::close(*unix_listener);
    ::unlink(options.socket_path.c_str());
    if (tcp_listener) ::close(tcp_listener->fd);
    return absl::InternalError("control: gRPC did not start");
  }
  if (options.before_accepting) options.before_accepting(*server);
  grpc::Server* grpc_server = server->server_.get();
  // A quarter each of what the descriptor reserve leaves, at most: the
  // probe server may take half, so no listener can starve another.
  const size_t limit = descriptorLimit();
  const size_t max_connections =
      std::clamp<size_t>(limit > kDescriptorReserve ? (limit - kDescriptorReserve) / 4 : 1, 1,
                         options.max_connections);
  const auto hand_over = [grpc_server](int fd) { grpc::AddInsecureChannelFromFd(grpc_server, fd); };
  absl::StatusOr<std::unique_ptr<ConnectionGate>> unix_gate =
      ConnectionGate::create("unix", *unix_listener, max_connections, hand_over, time_source);
  if (!unix_gate.ok()) {
    if (tcp_listener) ::close(tcp_listener->fd);
    server->server_->Shutdown();
    ::unlink(options.socket_path.c_str());
    return unix_gate.status();
  }
  server->unix_gate_ = *std::move(unix_gate);
  server->unix_peers_.store(server->unix_gate_.get(), std::memory_order_release);
  if (tcp_listener) {
    absl::StatusOr<std::unique_ptr<ConnectionGate>> tcp_gate =
        ConnectionGate::create("tcp", tcp_listener->fd, max_connections, hand_over, time_source);
    if (!tcp_gate.ok()) {
      server->shutdown(absl::ZeroDuration());
      return tcp_gate.status();
    }
    server->tcp_gate_ = *std::move(tcp_gate);
  }
  // Only now, with both gates where isUnixPeer() looks, are connections
  // accepted.
  for (ConnectionGate* gate : {server->unix_gate_.get(), server->tcp_gate_.get()}) {
    if (gate == nullptr) continue;
    if (absl::Status serving = gate->serve(); !serving.ok()) {
      server->shutdown(absl::ZeroDuration());
      return serving;
    }
  }
  return server;
}

bool GrpcServer::isUnixPeer(absl::string_view peer) const {
  const ConnectionGate* gate = unix_peers_.load(std::memory_order_acquire);
  return gate != nullptr && gate->handedOverPeer(peer);
}

std::vector<std::pair<std::string, ConnectionGateStats>> GrpcServer::listenerStats() const {
  std::vector<std::pair<std::string, ConnectionGateStats>> stats;
  if (unix_gate_ != nullptr) stats.emplace_back("unix", unix_gate_->stats());
  if (tcp_gate_ != nullptr) stats.emplace_back("tcp", tcp_gate_->stats());
  return stats;
}

void GrpcServer::shutdown(absl::Duration grace) {
  if (server_ == nullptr || stopped_.exchange(true)) return;
  // No new connections from here on; those open end with the server.
  if (unix_gate_ != nullptr) unix_gate_->stop();
  if (tcp_gate_ != nullptr) tcp_gate_->stop();
  // Health watchers learn the end, and their streams close.
  health_->shutdown();
  server_->Shutdown(absl::ToChronoTime(time_source_->systemTime() + grace));
  server_->Wait();
  ::unlink(options_.socket_path.c_str());
}

GrpcServer::~GrpcServer() { shutdown(absl::ZeroDuration()); }

UnixPeerCheck makeUnixPeerCheck() {
  auto server = std::make_shared<std::atomic<const GrpcServer*>>(nullptr);
  return UnixPeerCheck{[server](absl::string_view peer) {
                         const GrpcServer* bound = server->load();
                         return bound != nullptr && bound->isUnixPeer(peer);
                       },
                       [server](const GrpcServer& bound) { server->store(&bound); }};
}

}  // namespace credsync::server
