#include "sidecar/server/probe_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <set>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "httplib.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"

namespace credsync::server {
namespace {

constexpr char kTextContentType[] = "text/plain; charset=utf-8";
constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Probes and scrapes come one at a time per client; three workers let a
// kubelet probe through while a scrape renders and a third client idles.
constexpr int kWorkerThreads = 3;
// Accepted connections beyond this are closed at once rather than queued
// behind the workers, so a burst cannot pile up descriptors.
constexpr size_t kMaxConnections = 32;
// How long a connection may sit between requests (and before its first).
// Scrape intervals are far longer, so keep-alive would not save a
// handshake anyway; a short wait keeps a worker from idling on it.
constexpr int kIdleTimeoutSeconds = 2;
// Each wait for the socket while reading or writing one request.
constexpr int kIoTimeoutMs = 2000;
constexpr size_t kMaxRequestsPerConnection = 100;
// A probe or scrape request is a few hundred bytes in one segment. These cap
// the head (request line and headers) in bytes and in socket reads, so a
// client trickling bytes cannot hold a worker for long.
constexpr size_t kMaxRequestHeadBytes = size_t{16} * 1024;
constexpr int kMaxReadsPerRequest = 64;
constexpr int kListenBacklog = 16;

struct HostPort {
  std::string host;  // without IPv6 brackets
  int port = 0;
};

absl::StatusOr<HostPort> parseAddress(const std::string& address) {
  const absl::Status invalid = absl::InvalidArgumentError(absl::StrCat(
      "probe address \"", absl::CEscape(address), "\": expected host:port ([::1]:port for IPv6)"));
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

// Both ends of a socket as httplib wants them for REMOTE_ADDR/LOCAL_ADDR.
void socketAddress(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  sockaddr* address = reinterpret_cast<sockaddr*>(&storage);
  if ((peer ? getpeername(fd, address, &length) : getsockname(fd, address, &length)) != 0) return;
  std::array<char, NI_MAXHOST> host{};
  std::array<char, NI_MAXSERV> service{};
  if (getnameinfo(address, length, host.data(), host.size(), service.data(), service.size(),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return;
  }
  int number = 0;
  if (!absl::SimpleAtoi(service.data(), &number)) return;
  ip = host.data();
  port = number;
}

// Waits until `fd` is ready for `events`; false on timeout or error.
bool waitFor(int fd, short events, int timeout_ms) {
  pollfd entry{fd, events, 0};
  for (;;) {
    const int ready = poll(&entry, 1, timeout_ms);
    if (ready > 0) return true;
    if (ready == 0 || errno != EINTR) return false;
  }
}

// One connection as httplib reads and writes it. Unlike httplib's own
// stream it lives as long as the connection, so bytes of a pipelined next
// request stay buffered, and it polls instead of select(), so descriptors
// above FD_SETSIZE work.
class ConnectionStream : public httplib::Stream {
 public:
  explicit ConnectionStream(int fd) : fd_(fd) {}

  // Waits for the next request's first byte (or the peer closing).
  bool waitForRequest(int timeout_ms) const {
    return position_ < length_ || waitFor(fd_, POLLIN, timeout_ms);
  }
  void beginRequest() {
    head_bytes_ = 0;
    reads_ = 0;
  }

  bool is_readable() const override {
    return position_ < length_ || waitFor(fd_, POLLIN, kIoTimeoutMs);
  }
  bool is_writable() const override { return waitFor(fd_, POLLOUT, kIoTimeoutMs); }

  ssize_t read(char* data, size_t size) override {
    if (position_ == length_) {
      const ssize_t received = fill();
      if (received <= 0) return received;
    }
    const size_t count = std::min(size, length_ - position_);
    std::memcpy(data, buffer_.data() + position_, count);
    position_ += count;
    return static_cast<ssize_t>(count);
  }

  ssize_t write(const char* data, size_t size) override {
    for (;;) {
      const ssize_t sent = ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent >= 0) return sent;
      if (errno == EINTR) continue;
      if ((errno != EAGAIN && errno != EWOULDBLOCK) || !waitFor(fd_, POLLOUT, kIoTimeoutMs)) {
        return -1;
      }
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    socketAddress(fd_, /*peer=*/true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    socketAddress(fd_, /*peer=*/false, ip, port);
  }
  // httplib asks only to refuse descriptors its select() cannot watch; this
  // stream polls, so it has none to refuse.
  socket_t socket() const override { return INVALID_SOCKET; }

 private:
  ssize_t fill() {
    if (++reads_ > kMaxReadsPerRequest) return -1;
    for (;;) {
      const ssize_t received = ::recv(fd_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
      if (received >= 0) {
        head_bytes_ += static_cast<size_t>(received);
        if (head_bytes_ > kMaxRequestHeadBytes) return -1;
        position_ = 0;
        length_ = static_cast<size_t>(received);
        return received;
      }
      if (errno == EINTR) continue;
      if ((errno != EAGAIN && errno != EWOULDBLOCK) || !waitFor(fd_, POLLIN, kIoTimeoutMs)) {
        return -1;
      }
    }
  }

  const int fd_;
  std::array<char, 4096> buffer_{};
  size_t position_ = 0;
  size_t length_ = 0;
  size_t head_bytes_ = 0;
  int reads_ = 0;
};

// httplib's request parser and response writer, reached through its
// protected entry point: the listener, the accept loop and the connection
// loop are ours (see ProbeServer::Impl).
class HttpCodec : public httplib::Server {
 public:
  using httplib::Server::process_request;
};

// A request this server may answer and keep the connection for: GET or HEAD
// without a body. Anything else is answered without reading what follows the
// headers, so the connection must close after the answer.
bool isBodilessRead(const httplib::Request& request) {
  if (request.method != "GET" && request.method != "HEAD") return false;
  if (request.has_header("Transfer-Encoding")) return false;
  const std::string length = request.get_header_value("Content-Length");
  return length.empty() || length == "0";
}

std::string withNewline(std::string text) {
  if (!text.empty() && text.back() != '\n') text += '\n';
  return text;
}

}  // namespace

class ProbeServer::Impl {
 public:
  Impl(ProbeHandlers handlers, int listener, int wake_read, int wake_write, std::string address,
       int port)
      : handlers_(std::move(handlers)),
        listener_(listener),
        wake_read_(wake_read),
        wake_write_(wake_write),
        address_(std::move(address)),
        port_(port) {
    codec_.set_keep_alive_timeout(kIdleTimeoutSeconds);
    codec_.set_keep_alive_max_count(kMaxRequestsPerConnection);
    codec_.set_pre_routing_handler(
        [this](const httplib::Request& request, httplib::Response& response) {
          route(request, response);
          return httplib::Server::HandlerResponse::Handled;
        });
    // A client announcing a body with "Expect: 100-continue" gets the final
    // answer instead of an invitation to send the body.
    codec_.set_expect_100_continue_handler(
        [this](const httplib::Request& request, httplib::Response& response) {
          if (isBodilessRead(request)) return 100;
          route(request, response);
          response.body.clear();
          return response.status;
        });
    // Never echo an exception's text to the client, as httplib would.
    codec_.set_exception_handler(
        [](const httplib::Request&, httplib::Response& response, const std::exception_ptr&) {
          response.status = 500;
          response.set_content("internal error\n", kTextContentType);
        });
  }

  ~Impl() {
    stop();
    close(wake_read_);
    close(wake_write_);
  }

  // Starts the acceptor and the workers; on failure, whatever started is
  // stopped again.
  absl::Status run() {
    try {
      for (int i = 0; i < kWorkerThreads; ++i) workers_.emplace_back([this] { workerLoop(); });
      acceptor_ = std::thread([this] { acceptLoop(); });
    } catch (const std::system_error& error) {
      stop();
      return absl::InternalError(
          absl::StrCat("probe server: cannot start threads: ", error.what()));
    }
    return absl::OkStatus();
  }

  void stop() {
    MutexLock stop_lock(&stop_mutex_);
    if (stopped_) return;
    {
      MutexLock lock(&mutex_);
      stopping_ = true;
      // Wakes workers blocked on a connection, idle keep-alive ones included:
      // their next read sees end of stream. Descriptors are closed only under
      // this mutex, so none of these can have been reused.
      for (const int fd : connections_) shutdown(fd, SHUT_RDWR);
      work_available_.SignalAll();
    }
    const char wake = 'x';
    while (::write(wake_write_, &wake, 1) < 0 && errno == EINTR) {
    }
    if (acceptor_.joinable()) acceptor_.join();
    // New clients are refused from here on instead of waiting in the
    // backlog for an accept that never comes.
    close(listener_);
    for (std::thread& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
    stopped_ = true;
  }

  int port() const { return port_; }
  const std::string& address() const { return address_; }

 private:
  void acceptLoop() {
    bool short_of_resources = false;
    for (;;) {
      std::array<pollfd, 2> entries = {pollfd{listener_, POLLIN, 0}, pollfd{wake_read_, POLLIN, 0}};
      if (poll(entries.data(), entries.size(), -1) < 0) {
        if (errno == EINTR) continue;
        log::error("probe server stopped accepting", {{"error", errnoText(errno)}});
        return;
      }
      if (entries[1].revents != 0) return;
      const int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0) {
        short_of_resources = false;
        admit(fd);
        continue;
      }
      switch (errno) {
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
          // The pending connection stays queued and poll() would report it
          // again at once: wait a little (or for stop) instead of spinning.
          if (!short_of_resources) {
            log::warn("probe server cannot accept connections",
                      {{"address", address_}, {"error", errnoText(errno)}});
            short_of_resources = true;
          }
          waitFor(wake_read_, POLLIN, 100);
          break;
        case EBADF:
        case EINVAL:
        case ENOTSOCK:
        case EOPNOTSUPP:
          log::error("probe server stopped accepting", {{"error", errnoText(errno)}});
          return;
        default:
          // EAGAIN (the client left first), ECONNABORTED, EINTR, and the
          // network errors Linux passes on from the new socket: accept(2)
          // says to retry.
          break;
      }
    }
  }

  void admit(int fd) {
    MutexLock lock(&mutex_);
    if (stopping_ || connections_.size() >= kMaxConnections) {
      close(fd);
      return;
    }
    connections_.insert(fd);
    pending_.push_back(fd);
    work_available_.Signal();
  }

  void workerLoop() {
    for (;;) {
      int fd = -1;
      {
        MutexLock lock(&mutex_);
        while (pending_.empty() && !stopping_) work_available_.Wait(&mutex_);
        // Connections queued at stop were shut down: serving them ends at once.
        if (pending_.empty()) return;
        fd = pending_.front();
        pending_.pop_front();
      }
      serve(fd);
      MutexLock lock(&mutex_);
      connections_.erase(fd);
      close(fd);
    }
  }

  void serve(int fd) {
    ConnectionStream stream(fd);
    for (size_t served = 0; served < kMaxRequestsPerConnection; ++served) {
      if (!stream.waitForRequest(kIdleTimeoutSeconds * 1000)) return;
      stream.beginRequest();
      bool parsed = false;
      bool must_close = false;
      bool connection_closed = false;
      const bool last = served + 1 == kMaxRequestsPerConnection;
      const bool written =
          codec_.process_request(stream, last, connection_closed, [&](httplib::Request& request) {
            parsed = true;
            if (!isBodilessRead(request)) {
              // What follows the headers is never read, so it must not be
              // taken for the next request: answer "Connection: close".
              must_close = true;
              request.headers.erase("Connection");
              request.headers.emplace("Connection", "close");
            }
          });
      // Without `parsed`, httplib answered a malformed request itself and
      // the rest of the stream cannot be trusted.
      if (!written || !parsed || must_close || connection_closed) return;
    }
  }

  void route(const httplib::Request& request, httplib::Response& response) const {
    response.set_header("Cache-Control", "no-store");
    const std::string& path = request.path;
    const bool known = (path == "/healthz" && handlers_.live) ||
                       (path == "/readyz" && handlers_.ready) ||
                       (path == "/metrics" && handlers_.metrics);
    if (!known) {
      response.status = 404;
      response.set_content("not found\n", kTextContentType);
      return;
    }
    if (request.method != "GET" && request.method != "HEAD") {
      response.status = 405;
      response.set_header("Allow", "GET, HEAD");
      response.set_content("method not allowed\n", kTextContentType);
      return;
    }
    if (!isBodilessRead(request)) {
      response.status = 413;
      response.set_content("request body not accepted\n", kTextContentType);
      return;
    }
    if (path == "/healthz") {
      const bool live = handlers_.live();
      response.status = live ? 200 : 503;
      response.set_content(live ? "ok\n" : "scheduler stalled\n", kTextContentType);
    } else if (path == "/readyz") {
      const Readiness readiness = handlers_.ready();
      response.status = readiness.ready ? 200 : 503;
      response.set_content(readiness.ready            ? std::string("ready\n")
                           : readiness.detail.empty() ? std::string("not ready\n")
                                                      : withNewline(readiness.detail),
                           kTextContentType);
    } else {
      response.status = 200;
      response.set_content(handlers_.metrics(), kMetricsContentType);
    }
  }

  const ProbeHandlers handlers_;
  const int listener_;  // closed by stop(), once the acceptor is joined
  const int wake_read_;
  const int wake_write_;
  const std::string address_;
  const int port_;
  HttpCodec codec_;

  std::thread acceptor_;
  std::vector<std::thread> workers_;

  Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  // Accepted and not yet closed; closed only with mutex_ held.
  std::set<int> connections_ ABSL_GUARDED_BY(mutex_);
  // Accepted, waiting for a worker.
  std::deque<int> pending_ ABSL_GUARDED_BY(mutex_);
  CondVar work_available_;

  // Serializes stop() so the threads are joined once.
  Mutex stop_mutex_;
  bool stopped_ ABSL_GUARDED_BY(stop_mutex_) = false;
};

absl::StatusOr<std::unique_ptr<ProbeServer>> ProbeServer::start(const std::string& address,
                                                                ProbeHandlers handlers) {
  absl::StatusOr<HostPort> parsed = parseAddress(address);
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
  const int port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);

  std::array<int, 2> wake{};
  if (pipe2(wake.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
    const int error = errno;
    close(listener);
    return absl::InternalError(absl::StrCat("probe server: pipe: ", errnoText(error)));
  }
  const std::string host = parsed->host.find(':') != std::string::npos
                               ? absl::StrCat("[", parsed->host, "]")
                               : parsed->host;
  auto impl = std::make_unique<Impl>(std::move(handlers), listener, wake[0], wake[1],
                                     absl::StrCat(host, ":", port), port);
  if (absl::Status status = impl->run(); !status.ok()) return status;
  return std::unique_ptr<ProbeServer>(new ProbeServer(std::move(impl)));
}

ProbeServer::ProbeServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ProbeServer::~ProbeServer() { stop(); }

int ProbeServer::portForTest() const { return impl_->port(); }

std::string ProbeServer::address() const { return impl_->address(); }

void ProbeServer::stop() { impl_->stop(); }

}  // namespace credsync::server
