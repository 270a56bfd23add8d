#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// Listening sockets credsync binds itself, so its own accept loops decide
// which connections to take (probe_server.h, connection_gate.h).
namespace credsync::server {

// The kernel queues this many completed handshakes per listener (capped by
// net.core.somaxconn): a connect storm must not overflow it and make a
// legitimate client's SYN wait for a retransmit (1 s, a kubelet probe's
// whole timeout).
inline constexpr int kListenBacklog = 4096;

struct TcpListener {
  int fd = -1;  // non-blocking, close-on-exec; the caller closes it
  int port = 0;
  std::string address;  // "host:port" with the bound port, IPv6 in brackets
};

// Binds and listens on `address`, "host:port" (IPv6 as "[::1]:port"; port 0
// picks a free one). `what` names the setting in errors ("probe address",
// "control.tcp_address"). Errors:
//   INVALID_ARGUMENT  a malformed address;
//   UNAVAILABLE       the host does not resolve, or bind/listen failed (the
//                     message names the address and the errno text).
// SO_REUSEADDR (a restarted sidecar binds past TIME_WAIT), never
// SO_REUSEPORT (a second process could take a share of the connections);
// "[::]" serves IPv4 too.
absl::StatusOr<TcpListener> listenTcp(const std::string& address, absl::string_view what);

// Binds and listens on the Unix socket `path` with `mode` and, when set,
// `group`. The socket never exists with a wider mode: the umask is narrowed
// while it is bound, so this must run before other threads create files.
// The path must be free (see GrpcServer for clearing a stale socket).
// Errors name the path: INVALID_ARGUMENT for an overlong one,
// FAILED_PRECONDITION when bind, listen, chmod or chown fail.
absl::StatusOr<int> listenUnix(const std::string& path, uint32_t mode, std::optional<gid_t> group);

// The connection limit of a listener that sheds (probe_server.h,
// webhook_server.h): `requested` when not 0; else half of what the
// descriptor reserve (sidecar/common/descriptors.h) leaves of RLIMIT_NOFILE,
// since other listeners and the process's own work share the rest, at most
// kDefaultConnectionLimit and at least 1.
inline constexpr size_t kDefaultConnectionLimit = 4096;
size_t connectionLimit(size_t requested);

}  // namespace credsync::server
