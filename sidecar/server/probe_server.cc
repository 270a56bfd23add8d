#include "sidecar/server/probe_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <list>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
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
#include "sidecar/common/descriptors.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"
#include "sidecar/server/http_head.h"
#include "sidecar/server/listener.h"
#include "sidecar/server/loop_descriptors.h"

namespace credsync::server {
namespace {

constexpr char kTextContentType[] = "text/plain; charset=utf-8";
constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

constexpr size_t kMaxRequestsPerConnection = 100;
// A probe or scrape request is a few hundred bytes in one segment.
constexpr size_t kMaxRequestHeadBytes = size_t{16} * 1024;
// An answer not yet read by its client stops the reading of more requests
// on that connection; pipelined requests wait in the kernel's buffer.
constexpr size_t kReadChunkBytes = 4096;
// Accepts per loop pass, so a connect storm cannot starve answering.
constexpr int kAcceptsPerPass = 256;
constexpr int kEventsPerWait = 256;
// How often at most a warning about shed or refused connections is logged.
constexpr auto kWarningInterval = std::chrono::seconds(60);

// A request for /metrics, by its request line: rendered off the loop.
bool asksForMetrics(absl::string_view head) {
  const size_t space = head.find(' ');
  if (space == absl::string_view::npos) return false;
  absl::string_view target = head.substr(space + 1);
  target = target.substr(0, target.find_first_of(" ?\r\n"));
  return target == "/metrics";
}

// The answer to one request head and whether the connection must close
// after it.
struct Answer {
  std::string bytes;
  bool close = false;
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
  Impl(ProbeHandlers handlers, const TimeSource& time_source, const ProbeServerOptions& options,
       size_t max_connections, std::unique_ptr<LoopDescriptors> descriptors)
      : handlers_(std::move(handlers)),
        time_source_(time_source),
        request_timeout_(absl::ToChronoNanoseconds(options.request_timeout)),
        max_connections_(max_connections),
        max_queued_renders_(options.max_queued_renders),
        descriptors_(std::move(descriptors)) {
    codec_.set_keep_alive_timeout(
        std::max<time_t>(1, static_cast<time_t>(absl::ToInt64Seconds(options.request_timeout))));
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

  ~Impl() { stop(); }

  // Starts the loop and the render thread; on failure, whatever started is
  // stopped again.
  absl::Status run() {
    try {
      renderer_ = std::thread([this] { renderLoop(); });
      loop_ = std::thread([this] { eventLoop(); });
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
    }
    render_ready_.SignalAll();
    descriptors_->wake();
    // The loop closes every connection and the listener as it ends, so new
    // clients are refused from here on.
    if (loop_.joinable()) loop_.join();
    if (renderer_.joinable()) renderer_.join();
    stopped_ = true;
  }

  int port() const { return descriptors_->port(); }
  const std::string& address() const { return descriptors_->address(); }

  ProbeServerStats stats() const {
    MutexLock lock(&mutex_);
    return stats_;
  }

 private:
  // A connection's state: a few hundred bytes while it idles.
  struct Connection {
    uint64_t id = 0;
    int fd = -1;
    std::string input;   // read, not yet parsed
    std::string output;  // answered, not yet sent
    size_t sent = 0;     // of output
    size_t served = 0;   // requests answered
    MonotonicTime deadline;
    // Its place in waiting_, while it is in it.
    std::list<uint64_t>::iterator waiting_position;
    bool in_waiting = false;
    bool rendering = false;    // a /metrics answer is being rendered for it
    bool close_after = false;  // close once output is sent
    bool peer_done = false;    // the client sent end of stream
  };

  // A /metrics request for the render thread, and its answer.
  struct Render {
    uint64_t connection = 0;
    int fd = -1;  // for httplib's REMOTE_ADDR only
    std::string head;
    bool last = false;
    Answer answer;
  };

  // --- the event loop ---------------------------------------------------------

  void eventLoop() {
    std::array<epoll_event, kEventsPerWait> events{};
    for (;;) {
      const int ready =
          epoll_wait(descriptors_->epoll(), events.data(), kEventsPerWait, waitMilliseconds());
      if (ready < 0 && errno != EINTR) {
        log::error("probe server stopped", {{"error", errnoText(errno)}});
        break;
      }
      bool stopping = false;
      for (int i = 0; i < std::max(ready, 0); ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == kListenerEventId) {
          acceptConnections();
        } else if (id == kWakeEventId) {
          descriptors_->drainWake();
          MutexLock lock(&mutex_);
          stopping = stopping_;
        } else {
          onEvent(id, events[i].events);
        }
      }
      if (stopping) break;
      deliverRenders();
      expire();
      descriptors_->resumeListener();
    }
    for (auto& [id, connection] : connections_) close(connection.fd);
    connections_.clear();
    waiting_.clear();
    descriptors_->closeListener();
    {
      MutexLock lock(&mutex_);
      stats_.open_connections = 0;
      stopping_ = true;
      render_queue_.clear();
    }
    render_ready_.SignalAll();
  }

  // Until the earliest deadline (the front of waiting_) or the listener's
  // pause ends; -1 when nothing waits.
  int waitMilliseconds() const {
    std::optional<MonotonicTime> next;
    if (!waiting_.empty()) next = connections_.at(waiting_.front()).deadline;
    const std::optional<MonotonicTime>& paused_until = descriptors_->listenerPausedUntil();
    if (paused_until && (!next || *paused_until < *next)) next = paused_until;
    return descriptors_->waitMilliseconds(next);
  }

  void acceptConnections() {
    for (int i = 0; i < kAcceptsPerPass; ++i) {
      const Accepted accepted = descriptors_->accept();
      if (accepted.fd < 0) return;
      if (accepted.refused_for_descriptors) {
        noteRefusedForDescriptors();  // before the close a client can see
        close(accepted.fd);
        continue;
      }
      if (connections_.size() >= max_connections_) shedOldestWaiting();
      admit(accepted.fd);
    }
  }

  void admit(int fd) {
    const uint64_t id = next_id_++;
    Connection& connection = connections_[id];
    connection.id = id;
    connection.fd = fd;
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.u64 = id;
    if (epoll_ctl(descriptors_->epoll(), EPOLL_CTL_ADD, fd, &event) != 0) {
      close(fd);
      connections_.erase(id);
      return;
    }
    startWaiting(connection);
    MutexLock lock(&mutex_);
    ++stats_.accepted;
    stats_.open_connections = connections_.size();
  }

  // At max_connections: the connection that has waited longest for its
  // request (or for its client to read) makes room.
  void shedOldestWaiting() {
    if (waiting_.empty()) return;
    closeConnection(waiting_.front());
    uint64_t shed = 0;
    {
      MutexLock lock(&mutex_);
      shed = ++stats_.shed;
    }
    if (last_shed_warning_.due(time_source_.monotonicTime())) {
      log::warn("probe server at its connection limit; closing the longest-waiting connections",
                {{"address", descriptors_->address()},
                 {"max_connections", max_connections_},
                 {"shed_total", static_cast<unsigned long>(shed)}});
    }
  }

  void noteRefusedForDescriptors() {
    uint64_t refused = 0;
    {
      MutexLock lock(&mutex_);
      refused = ++stats_.refused_for_descriptors;
    }
    if (last_descriptor_warning_.due(time_source_.monotonicTime())) {
      log::warn("probe server refusing connections to keep descriptors for publishing",
                {{"address", descriptors_->address()},
                 {"descriptor_limit", descriptorLimit()},
                 {"reserve", kDescriptorReserve},
                 {"refused_total", static_cast<unsigned long>(refused)}});
    }
  }

  void onEvent(uint64_t id, uint32_t events) {
    auto found = connections_.find(id);
    if (found == connections_.end()) return;  // closed earlier in this pass
    Connection& connection = found->second;
    // A reset, or both directions shut: nothing more can be said on it.
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
      closeConnection(id);
      return;
    }
    if ((events & EPOLLOUT) != 0) {
      if (!flush(connection)) return;
    }
    if ((events & (EPOLLIN | EPOLLRDHUP)) != 0 && connection.output.empty() &&
        !connection.rendering) {
      if (!readRequests(connection)) return;
    }
  }

  // Reads what the client sent and answers every whole request in it.
  // False when the connection was closed.
  bool readRequests(Connection& connection) {
    std::array<char, kReadChunkBytes> chunk{};
    while (!connection.peer_done) {
      const ssize_t received = ::recv(connection.fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
      if (received > 0) {
        connection.input.append(chunk.data(), static_cast<size_t>(received));
        if (connection.input.size() > kMaxRequestHeadBytes + kReadChunkBytes) break;
        continue;
      }
      if (received == 0) {
        connection.peer_done = true;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      closeConnection(connection.id);
      return false;
    }
    return answerRequests(connection);
  }

  // Answers the whole request heads in `input`, in order, until one must be
  // rendered off the loop or its answer cannot be sent at once. False when
  // the connection was closed.
  bool answerRequests(Connection& connection) {
    while (connection.output.empty() && !connection.rendering && !connection.close_after) {
      const size_t end = headEnd(connection.input);
      if (end == absl::string_view::npos) {
        if (connection.input.size() > kMaxRequestHeadBytes) {
          connection.input.clear();
          queueAnswer(connection, {"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                   "Cache-Control: no-store\r\n"
                                   "Content-Length: 0\r\nConnection: close\r\n\r\n",
                                   true});
          break;
        }
        if (connection.peer_done) {
          closeConnection(connection.id);
          return false;
        }
        return true;
      }
      std::string head = connection.input.substr(0, end);
      connection.input.erase(0, end);
      const bool last = connection.served + 1 >= kMaxRequestsPerConnection;
      {
        MutexLock lock(&mutex_);
        ++stats_.requests;
      }
      if (handlers_.metrics && asksForMetrics(head)) {
        if (!queueRender(connection, std::move(head), last)) {
          queueAnswer(connection, {"HTTP/1.1 503 Service Unavailable\r\n"
                                   "Cache-Control: no-store\r\n"
                                   "Content-Type: text/plain; charset=utf-8\r\n"
                                   "Content-Length: 12\r\nRetry-After: 1\r\n\r\n"
                                   "scrape busy\n",
                                   false});
        }
        continue;
      }
      queueAnswer(connection, answer(connection.fd, head, last));
    }
    return flush(connection);
  }

  void queueAnswer(Connection& connection, Answer answer) {
    ++connection.served;
    connection.output = std::move(answer.bytes);
    connection.sent = 0;
    connection.close_after = answer.close || connection.served >= kMaxRequestsPerConnection;
    // The client has request_timeout to read it.
    startWaiting(connection);
  }

  // Sends what is pending; once all is sent, the connection waits for its
  // next request (or closes). False when the connection was closed.
  bool flush(Connection& connection) {
    if (connection.output.empty() && !connection.close_after) return true;  // nothing answered
    while (connection.sent < connection.output.size()) {
      const ssize_t sent =
          ::send(connection.fd, connection.output.data() + connection.sent,
                 connection.output.size() - connection.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent >= 0) {
        connection.sent += static_cast<size_t>(sent);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        watch(connection, EPOLLOUT);
        return true;
      }
      closeConnection(connection.id);
      return false;
    }
    if (connection.close_after) {
      closeConnection(connection.id);
      return false;
    }
    std::string().swap(connection.output);  // an idle connection holds no buffer
    connection.sent = 0;
    startWaiting(connection);
    watch(connection, EPOLLIN | EPOLLRDHUP);
    // Requests that arrived pipelined behind the one just answered.
    if (headEnd(connection.input) != absl::string_view::npos || connection.peer_done) {
      return answerRequests(connection);
    }
    return true;
  }

  void watch(Connection& connection, uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = connection.id;
    epoll_ctl(descriptors_->epoll(), EPOLL_CTL_MOD, connection.fd, &event);
  }

  // (Re)starts the connection's clock: it has request_timeout for its next
  // request head, or for its client to read the answer.
  void startWaiting(Connection& connection) {
    if (connection.in_waiting) waiting_.erase(connection.waiting_position);
    connection.deadline = time_source_.monotonicTime() + request_timeout_;
    connection.waiting_position = waiting_.insert(waiting_.end(), connection.id);
    connection.in_waiting = true;
  }

  void stopWaiting(Connection& connection) {
    if (!connection.in_waiting) return;
    waiting_.erase(connection.waiting_position);
    connection.in_waiting = false;
  }

  // Every deadline is the same span after its start, so waiting_ is in
  // deadline order and expiry looks only at its front.
  void expire() {
    const MonotonicTime now = time_source_.monotonicTime();
    uint64_t expired = 0;
    while (!waiting_.empty() && connections_.at(waiting_.front()).deadline <= now) {
      closeConnection(waiting_.front());
      ++expired;
    }
    if (expired > 0) {
      MutexLock lock(&mutex_);
      stats_.timed_out += expired;
    }
  }

  void closeConnection(uint64_t id) {
    auto found = connections_.find(id);
    if (found == connections_.end()) return;
    stopWaiting(found->second);
    // Closing removes the descriptor from the epoll set.
    close(found->second.fd);
    connections_.erase(found);
    MutexLock lock(&mutex_);
    stats_.open_connections = connections_.size();
  }

  // --- /metrics on the render thread ------------------------------------------

  bool queueRender(Connection& connection, std::string head, bool last) {
    {
      MutexLock lock(&mutex_);
      if (render_queue_.size() >= max_queued_renders_) return false;
      Render render;
      render.connection = connection.id;
      render.fd = connection.fd;
      render.head = std::move(head);
      render.last = last;
      render_queue_.push_back(std::move(render));
    }
    render_ready_.Signal();
    connection.rendering = true;
    stopWaiting(connection);
    // Nothing is read meanwhile; a reset still reports EPOLLERR/EPOLLHUP.
    watch(connection, 0);
    return true;
  }

  void renderLoop() {
    for (;;) {
      Render render;
      {
        MutexLock lock(&mutex_);
        while (render_queue_.empty() && !stopping_) render_ready_.Wait(&mutex_);
        if (stopping_) return;
        render = std::move(render_queue_.front());
        render_queue_.pop_front();
      }
      // The descriptor is only read for REMOTE_ADDR; the loop closes it
      // only after this render is delivered, or at stop, when its answer
      // is dropped.
      render.answer = answer(render.fd, render.head, render.last);
      {
        MutexLock lock(&mutex_);
        if (stopping_) return;
        rendered_.push_back(std::move(render));
      }
      descriptors_->wake();
    }
  }

  void deliverRenders() {
    std::deque<Render> rendered;
    {
      MutexLock lock(&mutex_);
      rendered.swap(rendered_);
    }
    for (Render& render : rendered) {
      auto found = connections_.find(render.connection);
      if (found == connections_.end()) continue;
      Connection& connection = found->second;
      connection.rendering = false;
      queueAnswer(connection, std::move(render.answer));
      flush(connection);
    }
  }

  // --- HTTP -------------------------------------------------------------------

  Answer answer(int fd, absl::string_view head, bool last) {
    Answer result;
    HeadStream stream(fd, head, result.bytes);
    bool parsed = false;
    bool connection_closed = false;
    const bool written =
        codec_.process_request(stream, last, connection_closed, [&](httplib::Request& request) {
          parsed = true;
          if (!isBodilessRead(request)) {
            // What follows the head is never read, so it must not be taken
            // for the next request: answer "Connection: close".
            result.close = true;
            request.headers.erase("Connection");
            request.headers.emplace("Connection", "close");
          }
        });
    // Without `parsed`, httplib answered a malformed request itself and the
    // rest of the stream cannot be trusted.
    if (!written || !parsed || connection_closed) result.close = true;
    return result;
  }

  void route(const httplib::Request& request, httplib::Response& response) const {
    response.set_header("Cache-Control", "no-store");
    const std::string& path = request.path;
    const bool known = (path == "/healthz" && handlers_.live) ||
                       (path == "/readyz" && handlers_.ready) ||
                       (path == "/metrics" && handlers_.metrics);
    if (!known && handlers_.other) {
      handlers_.other(request, response);
      return;
    }
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
  const TimeSource& time_source_;
  const MonotonicTime::duration request_timeout_;
  const size_t max_connections_;
  const size_t max_queued_renders_;
  // The listener (closed by the loop as it ends) and the eventfd that wakes
  // it: stop, and renders delivered.
  const std::unique_ptr<LoopDescriptors> descriptors_;
  HttpCodec codec_;

  // Only the loop thread touches these.
  std::unordered_map<uint64_t, Connection> connections_;
  // Connections waiting for a request head or for their client to read, in
  // the order their clocks started.
  std::list<uint64_t> waiting_;
  uint64_t next_id_ = kFirstConnectionEventId;
  log::Occasionally last_shed_warning_{kWarningInterval};
  log::Occasionally last_descriptor_warning_{kWarningInterval};

  std::thread loop_;
  std::thread renderer_;

  mutable Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::deque<Render> render_queue_ ABSL_GUARDED_BY(mutex_);
  std::deque<Render> rendered_ ABSL_GUARDED_BY(mutex_);
  ProbeServerStats stats_ ABSL_GUARDED_BY(mutex_);
  CondVar render_ready_;

  // Serializes stop() so the threads are joined once.
  Mutex stop_mutex_;
  bool stopped_ ABSL_GUARDED_BY(stop_mutex_) = false;
};

absl::StatusOr<std::unique_ptr<ProbeServer>> ProbeServer::start(const std::string& address,
                                                                ProbeHandlers handlers,
                                                                const TimeSource& time_source,
                                                                const ProbeServerOptions& options) {
  absl::StatusOr<std::unique_ptr<LoopDescriptors>> descriptors =
      LoopDescriptors::open(address, "probe address", "probe server", time_source);
  if (!descriptors.ok()) return descriptors.status();
  auto impl =
      std::make_unique<Impl>(std::move(handlers), time_source, options,
                             connectionLimit(options.max_connections), *std::move(descriptors));
  if (absl::Status status = impl->run(); !status.ok()) return status;
  return std::unique_ptr<ProbeServer>(new ProbeServer(std::move(impl)));
}

ProbeServer::ProbeServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ProbeServer::~ProbeServer() { stop(); }

int ProbeServer::portForTest() const { return impl_->port(); }

std::string ProbeServer::address() const { return impl_->address(); }

ProbeServerStats ProbeServer::stats() const { return impl_->stats(); }

void ProbeServer::stop() { impl_->stop(); }

}  // namespace credsync::server
