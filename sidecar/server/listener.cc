#include "sidecar/server/listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "sidecar/common/descriptors.h"
#include "sidecar/common/errno_text.h"

namespace credsync::server {
namespace {

struct HostPort {
  std::string host;  // without IPv6 brackets
  int port = 0;
};

absl::StatusOr<HostPort> parseAddress(const std::string& address, absl::string_view what) {
  const absl::Status invalid = absl::InvalidArgumentError(absl::StrCat(
      what, " \"", absl::CEscape(address), "\": expected host:port ([::1]:port for IPv6)"));
  HostPort result;
  absl::string_view rest;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == std::string::npos) return invalid;
    result.host = address.substr(1, close - 1);
    rest = absl::string_view(address).substr(close + 1);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) return invalid;
    result.host = address.substr(0, colon);
    // An unbracketed IPv6 address is ambiguous: is the last group a port?
    if (result.host.find(':') != std::string::npos) return invalid;
    rest = absl::string_view(address).substr(colon);
  }
  if (result.host.empty() || std::any_of(result.host.begin(), result.host.end(), [](char c) {
        return absl::ascii_iscntrl(static_cast<unsigned char>(c)) ||
               absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '[' || c == ']';
      })) {
    return invalid;
  }
  if (!absl::ConsumePrefix(&rest, ":") || rest.empty() || rest.size() > 5 ||
      !std::all_of(rest.begin(), rest.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(rest, &result.port) || result.port > 65535) {
    return invalid;
  }
  return result;
}

}  // namespace

absl::StatusOr<TcpListener> listenTcp(const std::string& address, absl::string_view what) {
  absl::StatusOr<HostPort> parsed = parseAddress(address, what);
  if (!parsed.ok()) return parsed.status();

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* resolved = nullptr;
  const std::string service = absl::StrCat(parsed->port);
  if (const int error = getaddrinfo(parsed->host.c_str(), service.c_str(), &hints, &resolved);
      error != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", gai_strerror(error)));
  }
  int listener = -1;
  int bind_error = 0;
  for (const addrinfo* candidate = resolved; candidate != nullptr && listener < 0;
       candidate = candidate->ai_next) {
    const int fd = socket(candidate->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      bind_error = errno;
      continue;
    }
    // SO_REUSEADDR lets a restarted sidecar bind while old connections sit
    // in TIME_WAIT. Not SO_REUSEPORT (httplib's default): a second process
    // could then bind the same port and take half the probes.
    const int on = 1;
    const int off = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    // "[::]" serves IPv4 too, whatever the host's bindv6only default.
    if (candidate->ai_family == AF_INET6) {
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    }
    if (bind(fd, candidate->ai_addr, candidate->ai_addrlen) == 0 &&
        listen(fd, kListenBacklog) == 0) {
      listener = fd;
    } else {
      bind_error = errno;
      close(fd);
    }
  }
  freeaddrinfo(resolved);
  if (listener < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": ", errnoText(bind_error)));
  }

  sockaddr_storage bound{};
  socklen_t bound_length = sizeof(bound);
  getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &bound_length);
  TcpListener result;
  result.fd = listener;
  result.port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  const std::string host = parsed->host.find(':') != std::string::npos
                               ? absl::StrCat("[", parsed->host, "]")
                               : parsed->host;
  result.address = absl::StrCat(host, ":", result.port);
  return result;
}

absl::StatusOr<int> listenUnix(const std::string& path, uint32_t mode, std::optional<gid_t> group) {
  sockaddr_un address{};
  if (path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("control.socket ", path, ": must be at most ", sizeof(address.sun_path) - 1,
                     " bytes (a Unix socket path limit); set a shorter path"));
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const auto failed = [&](const char* doing, int error) {
    return absl::FailedPreconditionError(
        absl::StrCat("control.socket ", path, ": cannot ", doing, ": ", errnoText(error)));
  };
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return failed("create a socket", errno);
  // bind() creates the file with 0777 & ~umask: narrowed to the configured
  // mode, the socket is never reachable more widely, even for the instant
  // before the chmod below.
  const mode_t previous_umask = ::umask(~mode & 0777);
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const int bind_error = errno;
  ::umask(previous_umask);
  if (bound != 0) {
    ::close(fd);
    return failed("bind", bind_error);
  }
  const auto undo = [&](const char* doing) {
    const int error = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return failed(doing, error);
  };
  if (::listen(fd, kListenBacklog) != 0) return undo("listen");
  if (::chmod(path.c_str(), mode) != 0) return undo("set its mode");
  if (group && ::chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    return undo("set its group");
  }
  return fd;
}

size_t connectionLimit(size_t requested) {
  if (requested != 0) return requested;
  const size_t limit = descriptorLimit();
  const size_t spare = limit > kDescriptorReserve ? (limit - kDescriptorReserve) / 2 : 1;
  return std::clamp<size_t>(spare, 1, kDefaultConnectionLimit);
}

}  // namespace credsync::server
