#include "sidecar/server/grpc_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/common/logging.h"

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

  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("credsync-control");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  // gRPC sets SO_REUSEPORT by default, which lets a second process of the
  // same user bind the TCP port too and take a share of the calls (and their
  // pod tokens); a port in use must fail start instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(service);
  builder.RegisterService(server->health_.get());
  builder.AddListeningPort(absl::StrCat("unix:", options.socket_path),
                           grpc::InsecureServerCredentials());
  int tcp_port = 0;
  if (!options.tcp_address.empty()) {
    builder.AddListeningPort(options.tcp_address, grpc::InsecureServerCredentials(), &tcp_port);
  }

  // bind() creates the socket file with 0777 & ~umask: narrow the umask so
  // the socket is never reachable more widely than configured, even for the
  // instant before the chmod below.
  const mode_t previous_umask = ::umask(~options.socket_mode & 0777);
  server->server_ = builder.BuildAndStart();
  ::umask(previous_umask);
  if (server->server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("control: cannot listen on unix:", options.socket_path,
                     options.tcp_address.empty() ? "" : absl::StrCat(" or ", options.tcp_address),
                     " (address in use, or no permission)"));
  }
  if (!options.tcp_address.empty()) {
    if (tcp_port == 0) {
      server->server_->Shutdown();
      return absl::UnavailableError(
          absl::StrCat("control.tcp_address: cannot listen on ", options.tcp_address));
    }
    const std::string host = options.tcp_address.substr(0, options.tcp_address.rfind(':'));
    server->tcp_address_ = absl::StrCat(host, ":", tcp_port);
  }
  if (::chmod(options.socket_path.c_str(), options.socket_mode) != 0 ||
      (options.socket_group &&
       ::chown(options.socket_path.c_str(), static_cast<uid_t>(-1), *options.socket_group) != 0)) {
    const absl::Status error = socketError(options.socket_path, "cannot set mode or group");
    server->server_->Shutdown();
    return error;
  }
  return server;
}

void GrpcServer::shutdown(absl::Duration grace) {
  if (server_ == nullptr || stopped_.exchange(true)) return;
  // Health watchers learn the end, and their streams close.
  health_->shutdown();
  server_->Shutdown(absl::ToChronoTime(time_source_->systemTime() + grace));
  server_->Wait();
  ::unlink(options_.socket_path.c_str());
}

GrpcServer::~GrpcServer() { shutdown(absl::ZeroDuration()); }

}  // namespace credsync::server
