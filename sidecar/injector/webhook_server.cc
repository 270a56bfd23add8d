#include "sidecar/injector/webhook_server.h"

#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
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
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/descriptors.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"
#include "sidecar/server/http_head.h"
#include "sidecar/server/listener.h"
#include "sidecar/server/loop_descriptors.h"

namespace credsync::injector {
namespace {

constexpr char kTextContentType[] = "text/plain; charset=utf-8";
// An AdmissionReview head is a few hundred bytes.
constexpr size_t kMaxRequestHeadBytes = size_t{16} * 1024;
// One TLS record's plaintext at most.
constexpr size_t kReadChunkBytes = size_t{16} * 1024;
// After this many answers a connection is closed, so that a long-lived API
// server connection is spread over the injector's replicas again.
constexpr size_t kMaxRequestsPerConnection = 1000;
// Accepts per loop pass, so a connect storm cannot starve answering.
constexpr int kAcceptsPerPass = 256;
constexpr int kEventsPerWait = 256;
// How often at most a warning about a flood of events is logged.
constexpr auto kWarningInterval = std::chrono::seconds(60);

struct SslCtxFree {
  void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// The TLS policy: 1.2 at least, no renegotiation, no compression, no
// session resumption (the API server keeps its connections; resumption
// state would only need rotating with the certificate).
absl::StatusOr<SslCtxPtr> buildContext(const CertificatePair& pair) {
  ERR_clear_error();
  SslCtxPtr context(SSL_CTX_new(TLS_server_method()));
  if (context == nullptr) {
    return absl::InternalError(
        absl::StrCat("TLS context: ", openSslReason("unknown OpenSSL error")));
  }
  SSL_CTX* raw = context.get();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(raw, 0);
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  bool ok = SSL_CTX_use_certificate(raw, pair.leaf.get()) == 1;
  for (const X509Ptr& intermediate : pair.intermediates) {
    ok = ok && SSL_CTX_add1_chain_cert(raw, intermediate.get()) == 1;
  }
  ok =
      ok && SSL_CTX_use_PrivateKey(raw, pair.key.get()) == 1 && SSL_CTX_check_private_key(raw) == 1;
  if (!ok)
    return absl::InternalError(
        absl::StrCat("TLS context: ", openSslReason("unknown OpenSSL error")));
  return context;
}

absl::string_view reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return status < 400 ? "OK" : "Error";
  }
}

// One whole answer as bytes on the wire.
std::string answerBytes(int status, absl::string_view content_type, absl::string_view body,
                        bool close, absl::string_view extra_headers = {}) {
  std::string bytes =
      absl::StrCat("HTTP/1.1 ", status, " ", reasonPhrase(status),
                   "\r\nCache-Control: no-store\r\nContent-Length: ", body.size(), "\r\n");
  if (!content_type.empty()) absl::StrAppend(&bytes, "Content-Type: ", content_type, "\r\n");
  if (close) bytes += "Connection: close\r\n";
  absl::StrAppend(&bytes, extra_headers, "\r\n", body);
  return bytes;
}

// What the loop needs of a request head.
struct RequestHead {
  std::string method;
  std::string path;
  size_t content_length = 0;
  bool keep_alive = true;
};

// A request head refused before its body is read; the connection closes
// after the answer unless the request had no body to skip.
struct HeadError {
  int status = 400;
  std::string message;
  std::string extra_headers;
};

}  // namespace

class WebhookServer::Impl {
 public:
  Impl(WebhookHandler handler, const CertificateStore& certificates, const TimeSource& time_source,
       const WebhookServerOptions& options, size_t max_connections, SslCtxPtr context,
       std::shared_ptr<const CertificatePair> context_pair,
       std::unique_ptr<server::LoopDescriptors> descriptors)
      : handler_(std::move(handler)),
        certificates_(certificates),
        time_source_(time_source),
        options_(options),
        request_timeout_(absl::ToChronoNanoseconds(options.request_timeout)),
        idle_timeout_(absl::ToChronoNanoseconds(options.idle_timeout)),
        max_connections_(max_connections),
        descriptors_(std::move(descriptors)),
        context_(std::move(context)),
        context_pair_(std::move(context_pair)) {
    // Parsing only: every request is "handled" before httplib would route
    // or read a body; what it writes is discarded.
    codec_.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      return httplib::Server::HandlerResponse::Handled;
    });
  }

  ~Impl() { stop(); }

  absl::Status run() {
    try {
      for (size_t i = 0; i < std::max<size_t>(1, options_.workers); ++i) {
        workers_.emplace_back([this] { workerLoop(); });
      }
      loop_ = std::thread([this] { eventLoop(); });
    } catch (const std::system_error& error) {
      stop();
      return absl::InternalError(
          absl::StrCat("webhook server: cannot start threads: ", error.what()));
    }
    return absl::OkStatus();
  }

  void stop() {
    MutexLock stop_lock(&stop_mutex_);
    if (stopped_) return;
    {
      MutexLock lock(&mutex_);
      stop_requested_ = true;
    }
    descriptors_->wake();
    if (loop_.joinable()) loop_.join();
    {
      MutexLock lock(&mutex_);
      workers_quit_ = true;
    }
    work_ready_.SignalAll();
    for (std::thread& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
    stopped_ = true;
  }

  int port() const { return descriptors_->port(); }
  const std::string& address() const { return descriptors_->address(); }
  WebhookServerStats stats() const {
    MutexLock lock(&mutex_);
    return stats_;
  }
  bool serving() const {
    MutexLock lock(&mutex_);
    return loop_running_;
  }

 private:
  enum class Phase {
    kHandshake,  // TLS handshake in progress (pending_)
    kIdle,       // between requests, nothing received (idle_)
    kRequest,    // receiving a request head or body (pending_)
    kHandling,   // the handler runs on a worker (in no list)
    kAnswering,  // sending an answer (pending_)
  };

  struct Connection {
    uint64_t id = 0;
    int fd = -1;
    SslPtr ssl;
    Phase phase = Phase::kHandshake;
    std::string input;                // decrypted, not yet consumed
    std::optional<RequestHead> head;  // parsed, its body still arriving
    size_t reserved = 0;              // of max_buffered_body_bytes, for head's body
    std::string output;
    size_t sent = 0;
    size_t served = 0;
    bool close_after = false;
    uint32_t watched = 0;
    MonotonicTime deadline;
    std::list<uint64_t>* list = nullptr;  // idle_ or pending_, while in one
    std::list<uint64_t>::iterator position;
    std::list<uint64_t>::iterator receiving;  // in receiving_ while reserved > 0
  };

  struct Job {
    uint64_t connection = 0;
    WebhookRequest request;
    bool close_after = false;
    size_t reserved = 0;  // of max_buffered_body_bytes, until the answer is handed back
    bool large = false;   // over large_body_bytes
    WebhookResponse response;
  };

  // --- workers ----------------------------------------------------------------

  void workerLoop() {
    for (;;) {
      Job job;
      {
        MutexLock lock(&mutex_);
        auto next = queue_.end();
        while (!workers_quit_ && (next = nextJob()) == queue_.end()) work_ready_.Wait(&mutex_);
        if (workers_quit_) return;
        job = std::move(*next);
        queue_.erase(next);
        if (job.large) ++large_running_;
      }
      job.response = handler_(job.request);
      std::string().swap(job.request.body);  // freed here, not when the loop gets to it
      const bool large = job.large;
      // glibc keeps what a thread freed in that thread's arena, resident:
      // without this every worker that once parsed a large body would keep
      // its peak (measured: 4 MiB reviews left ~250 MiB resident across the
      // four workers). Large bodies are rare; trimming takes milliseconds.
      if (large) malloc_trim(0);
      {
        MutexLock lock(&mutex_);
        if (large) --large_running_;
        done_.push_back(std::move(job));
      }
      // A large job waiting may now run; any idle worker may take it.
      if (large) work_ready_.SignalAll();
      descriptors_->wake();
    }
  }

  // The oldest queued job a worker may run now: a large one only while
  // fewer than large_body_workers run.
  std::deque<Job>::iterator nextJob() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    const bool large_allowed = large_running_ < std::max<size_t>(1, options_.large_body_workers);
    return std::find_if(queue_.begin(), queue_.end(),
                        [large_allowed](const Job& job) { return large_allowed || !job.large; });
  }

  // --- the event loop ---------------------------------------------------------

  void eventLoop() {
    {
      MutexLock lock(&mutex_);
      loop_running_ = true;
    }
    std::array<epoll_event, kEventsPerWait> events{};
    for (;;) {
      const int ready =
          epoll_wait(descriptors_->epoll(), events.data(), kEventsPerWait, waitMilliseconds());
      if (ready < 0 && errno != EINTR) {
        log::error("webhook server stopped", {{"error", errnoText(errno)}});
        break;
      }
      for (int i = 0; i < std::max(ready, 0); ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == server::kListenerEventId) {
          if (!draining_) acceptConnections();
        } else if (id == server::kWakeEventId) {
          descriptors_->drainWake();
        } else {
          onEvent(id, events[i].events);
        }
      }
      deliverAnswers();
      resumeReading();
      expire();
      descriptors_->resumeListener();
      if (!draining_ && stopRequested()) beginDrain();
      if (draining_ && (connections_.empty() || time_source_.monotonicTime() >= drain_deadline_)) {
        break;
      }
    }
    for (auto& [id, connection] : connections_) close(connection.fd);
    connections_.clear();
    idle_.clear();
    pending_.clear();
    descriptors_->closeListener();
    MutexLock lock(&mutex_);
    stats_.open_connections = 0;
    loop_running_ = false;
  }

  bool stopRequested() const {
    MutexLock lock(&mutex_);
    return stop_requested_;
  }

  // Refuses new connections and drops those not being answered; answers in
  // progress get stop_grace.
  void beginDrain() {
    draining_ = true;
    drain_deadline_ = time_source_.monotonicTime() + absl::ToChronoNanoseconds(options_.stop_grace);
    descriptors_->closeListener();
    std::vector<uint64_t> unanswered;
    for (auto& [id, connection] : connections_) {
      if (connection.phase == Phase::kHandling || connection.phase == Phase::kAnswering) {
        connection.close_after = true;
      } else {
        unanswered.push_back(id);
      }
    }
    for (uint64_t id : unanswered) closeConnection(id);
  }

  int waitMilliseconds() const {
    if (!resume_.empty()) return 0;
    std::optional<MonotonicTime> next;
    auto earlier = [&next](MonotonicTime time) {
      if (!next || time < *next) next = time;
    };
    if (!idle_.empty()) earlier(connections_.at(idle_.front()).deadline);
    if (!pending_.empty()) earlier(connections_.at(pending_.front()).deadline);
    if (descriptors_->listenerPausedUntil()) earlier(*descriptors_->listenerPausedUntil());
    if (draining_) earlier(drain_deadline_);
    return descriptors_->waitMilliseconds(next);
  }

  void acceptConnections() {
    for (int i = 0; i < kAcceptsPerPass; ++i) {
      const server::Accepted accepted = descriptors_->accept();
      if (accepted.fd < 0) return;
      const int fd = accepted.fd;
      if (accepted.refused_for_descriptors) {
        {
          MutexLock lock(&mutex_);
          ++stats_.refused_for_descriptors;
        }
        close(fd);
        continue;
      }
      if (connections_.size() >= max_connections_ && !shedOne()) {
        close(fd);  // every connection is being answered: the newcomer waits its turn
        continue;
      }
      admit(fd);
    }
  }

  // At max_connections: the connection idle longest makes room, else the
  // one waiting longest for a handshake, a request or its reader. False
  // when every connection is being handled.
  bool shedOne() {
    std::list<uint64_t>& from = !idle_.empty() ? idle_ : pending_;
    if (from.empty()) return false;
    uint64_t shed = 0;
    {
      MutexLock lock(&mutex_);
      shed = ++stats_.shed;
    }
    closeConnection(from.front());
    if (shed_warning_.due(time_source_.monotonicTime())) {
      log::warn("webhook server at its connection limit; closing the longest-waiting connections",
                {{"address", descriptors_->address()},
                 {"max_connections", max_connections_},
                 {"shed_total", static_cast<unsigned long>(shed)}});
    }
    return true;
  }

  void admit(int fd) {
    refreshContext();
    SslPtr ssl(SSL_new(context_.get()));
    if (ssl == nullptr || SSL_set_fd(ssl.get(), fd) != 1) {
      ERR_clear_error();
      close(fd);
      return;
    }
    const uint64_t id = next_id_++;
    Connection& connection = connections_[id];
    connection.id = id;
    connection.fd = fd;
    connection.ssl = std::move(ssl);
    SSL_set_accept_state(connection.ssl.get());
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = id;
    if (epoll_ctl(descriptors_->epoll(), EPOLL_CTL_ADD, fd, &event) != 0) {
      close(fd);
      connections_.erase(id);
      return;
    }
    connection.watched = EPOLLIN;
    // The handshake and the first request share one deadline from here.
    wait(connection, pending_, request_timeout_);
    MutexLock lock(&mutex_);
    ++stats_.accepted;
    stats_.open_connections = connections_.size();
  }

  // New handshakes use the store's current pair; an SSL_CTX is built once
  // per pair. Connections keep the context they started with (SSL_new holds
  // a reference), so replacing it here fails none of them.
  void refreshContext() {
    std::shared_ptr<const CertificatePair> pair = certificates_.current();
    if (pair == context_pair_) return;
    absl::StatusOr<SslCtxPtr> context = buildContext(*pair);
    context_pair_ = pair;  // a failure is not retried for every connection
    if (!context.ok()) {
      log::error("webhook server keeps its previous certificate",
                 {{"error", context.status()},
                  {"generation", static_cast<unsigned long>(pair->generation)}});
      return;
    }
    context_ = *std::move(context);
  }

  void onEvent(uint64_t id, uint32_t events) {
    auto found = connections_.find(id);
    if (found == connections_.end()) return;  // closed earlier in this pass
    Connection& connection = found->second;
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
      if (connection.phase == Phase::kHandshake)
        noteHandshakeFailed(connection, "connection reset");
      closeConnection(id);
      return;
    }
    advance(connection);
  }

  void advance(Connection& connection) {
    switch (connection.phase) {
      case Phase::kHandshake:
        handshake(connection);
        return;
      case Phase::kIdle:
      case Phase::kRequest:
        readRequest(connection);
        return;
      case Phase::kAnswering:
        writeAnswer(connection);
        return;
      case Phase::kHandling:
        return;
    }
  }

  // Watches `fd` for what OpenSSL asked for; false for any other error.
  bool watchFor(Connection& connection, int ssl_error) {
    if (ssl_error == SSL_ERROR_WANT_READ) {
      watch(connection, EPOLLIN);
      return true;
    }
    if (ssl_error == SSL_ERROR_WANT_WRITE) {
      watch(connection, EPOLLOUT);
      return true;
    }
    return false;
  }

  void handshake(Connection& connection) {
    ERR_clear_error();
    const int result = SSL_accept(connection.ssl.get());
    if (result == 1) {
      connection.phase = Phase::kRequest;  // same deadline: it has yet to send a request
      readRequest(connection);
      return;
    }
    if (watchFor(connection, SSL_get_error(connection.ssl.get(), result))) return;
    noteHandshakeFailed(connection, openSslReason("connection closed"));
    closeConnection(connection.id);
  }

  void noteHandshakeFailed(const Connection& connection, const std::string& reason) {
    // A peer that closes without a ClientHello (a TCP health check, a port
    // scan, a shed-and-gone client) has failed no handshake.
    if (BIO_number_read(SSL_get_rbio(connection.ssl.get())) == 0) return;
    uint64_t failed = 0;
    {
      MutexLock lock(&mutex_);
      failed = ++stats_.tls_handshake_failed;
    }
    if (handshake_warning_.due(time_source_.monotonicTime())) {
      std::string peer;
      int port = 0;
      server::socketAddress(connection.fd, /*peer=*/true, peer, port);
      log::warn("webhook TLS handshake failed",
                {{"peer", peer},
                 {"reason", reason},
                 {"failed_total", static_cast<unsigned long>(failed)}});
    }
  }

  // Reads what the client sent and acts on it once a request is whole.
  void readRequest(Connection& connection) {
    std::array<char, kReadChunkBytes> chunk{};
    for (;;) {
      if (!consumeInput(connection)) return;  // answered, handed over, or closed
      ERR_clear_error();
      const int received = SSL_read(connection.ssl.get(), chunk.data(), chunk.size());
      if (received > 0) {
        if (connection.phase == Phase::kIdle) {
          connection.phase = Phase::kRequest;
          wait(connection, pending_, request_timeout_);
        }
        connection.input.append(chunk.data(), static_cast<size_t>(received));
        continue;
      }
      if (watchFor(connection, SSL_get_error(connection.ssl.get(), received))) return;
      // close_notify, end of stream or an error: nothing more will come.
      ERR_clear_error();
      closeConnection(connection.id);
      return;
    }
  }

  // Acts on `input`: parses a whole head, then waits for its whole body.
  // True when more input is needed; false when the connection was answered,
  // handed to a worker or closed.
  bool consumeInput(Connection& connection) {
    if (!connection.head) {
      const size_t end = server::headEnd(connection.input);
      if (end == absl::string_view::npos) {
        if (connection.input.size() <= kMaxRequestHeadBytes) return true;
        connection.input.clear();
        answer(connection, answerBytes(431, kTextContentType, "request head too large\n", true),
               true);
        return false;
      }
      const std::string head = connection.input.substr(0, end);
      connection.input.erase(0, end);
      std::optional<HeadError> error;
      connection.head = parseHead(connection, head, error);
      if (!error && !reserveBody(connection.head->content_length)) {
        connection.head.reset();
        error = HeadError{503, "too many request bodies in progress", "Retry-After: 1\r\n"};
      }
      if (error) {
        // The body, if any, is not read, so nothing after it can be trusted.
        connection.input.clear();
        answer(connection,
               answerBytes(error->status, kTextContentType, error->message + "\n", true,
                           error->extra_headers),
               true);
        return false;
      }
      connection.reserved = connection.head->content_length;
      if (connection.reserved > 0) {
        connection.receiving = receiving_.insert(receiving_.end(), connection.id);
        receiving_bytes_ += connection.reserved;
      }
      // Grown once (within the reservation), not by doubling as bytes arrive.
      connection.input.reserve(connection.reserved);
    }
    if (connection.input.size() < connection.head->content_length) return true;
    Job job;
    job.connection = connection.id;
    job.request.method = std::move(connection.head->method);
    job.request.path = std::move(connection.head->path);
    const size_t length = connection.head->content_length;
    if (connection.input.size() == length) {
      // The usual case: the buffer becomes the body, no copy, and the
      // connection keeps no buffer of that size while it waits.
      job.request.body = std::move(connection.input);
      connection.input = std::string();
    } else {
      job.request.body = connection.input.substr(0, length);
      connection.input = connection.input.substr(length);  // pipelined; a fresh, small buffer
    }
    stopReceiving(connection);
    job.reserved = std::exchange(connection.reserved, 0);
    job.large = length > options_.large_body_bytes;
    job.close_after =
        !connection.head->keep_alive || connection.served + 1 >= kMaxRequestsPerConnection;
    connection.head.reset();
    dispatch(connection, std::move(job));
    return false;
  }

  // The head as httplib parses it, checked against what this server serves.
  std::optional<RequestHead> parseHead(const Connection& connection, const std::string& head,
                                       std::optional<HeadError>& error) {
    RequestHead parsed;
    bool captured = false;
    bool connection_closed = false;
    size_t length_headers = 0;
    std::string length;
    bool transfer_encoding = false;
    std::string content_type;
    std::string discarded;
    server::HeadStream stream(connection.fd, head, discarded);
    codec_.process_request(stream, false, connection_closed, [&](httplib::Request& request) {
      captured = true;
      parsed.method = request.method;
      parsed.path = request.path;
      length_headers = request.get_header_value_count("Content-Length");
      length = request.get_header_value("Content-Length");
      transfer_encoding = request.has_header("Transfer-Encoding");
      content_type = request.get_header_value("Content-Type");
      // No "100 Continue" is sent; a client that waits for one sends its
      // body after its own timeout (RFC 9110 §10.1.1).
      request.headers.erase("Expect");
    });
    if (!captured) {
      error = HeadError{400, "malformed request head", ""};
      return std::nullopt;
    }
    parsed.keep_alive = !connection_closed;
    if (parsed.path != options_.path) {
      error = HeadError{404, "not found", ""};
    } else if (parsed.method != "POST") {
      error = HeadError{405, "method not allowed", "Allow: POST\r\n"};
    } else if (transfer_encoding || length_headers == 0) {
      error =
          HeadError{411, "a Content-Length body is required (chunked bodies are not accepted)", ""};
    } else if (length_headers > 1 || length.empty() ||
               !std::all_of(length.begin(), length.end(), absl::ascii_isdigit)) {
      error = HeadError{400, "malformed Content-Length", ""};
    } else if (!absl::SimpleAtoi(length, &parsed.content_length) ||  // only overflow fails here
               parsed.content_length > options_.max_body_bytes) {
      error =
          HeadError{413, absl::StrCat("request body over ", options_.max_body_bytes, " bytes"), ""};
    } else if (!isJson(content_type)) {
      error = HeadError{415, "Content-Type must be application/json", ""};
    }
    if (error) return std::nullopt;
    return parsed;
  }

  // Reserves `length` bytes of max_buffered_body_bytes. When they do not
  // fit, connections still receiving their bodies are closed, oldest
  // reservation first, until they do: as at the connection limit, the one
  // waiting longest makes room, so slow senders cannot hold the budget
  // against the API server's whole reviews for a request deadline. Bodies
  // that are whole (queued or being reviewed) are never closed for it; false
  // (counted) when what they hold leaves no room, and then nothing is
  // closed. Only the loop thread reserves and releases, so the room seen
  // here is still there after the closes.
  bool reserveBody(size_t length) {
    size_t room = 0;
    {
      MutexLock lock(&mutex_);
      room = options_.max_buffered_body_bytes - stats_.buffered_body_bytes;
      if (length > room + receiving_bytes_) {
        ++stats_.rejected_memory;
        return false;
      }
    }
    while (length > room) {
      const uint64_t oldest = receiving_.front();
      room += connections_.at(oldest).reserved;
      shedForBody(oldest);
    }
    MutexLock lock(&mutex_);
    stats_.buffered_body_bytes += length;
    return true;
  }

  void shedForBody(uint64_t id) {
    uint64_t shed = 0;
    {
      // Counted before the client can see the close.
      MutexLock lock(&mutex_);
      shed = ++stats_.shed_for_body_budget;
    }
    closeConnection(id);
    if (body_budget_warning_.due(time_source_.monotonicTime())) {
      log::warn("webhook server body budget full; closing the connections receiving bodies longest",
                {{"address", descriptors_->address()},
                 {"max_buffered_body_bytes", options_.max_buffered_body_bytes},
                 {"shed_total", static_cast<unsigned long>(shed)}});
    }
  }

  // The body is whole or the connection closes: it no longer receives one.
  void stopReceiving(Connection& connection) {
    if (connection.reserved == 0) return;
    receiving_.erase(connection.receiving);
    receiving_bytes_ -= connection.reserved;
  }

  void releaseBody(size_t& reserved) {
    if (reserved == 0) return;
    MutexLock lock(&mutex_);
    stats_.buffered_body_bytes -= std::exchange(reserved, 0);
  }

  static bool isJson(absl::string_view content_type) {
    const absl::string_view media = content_type.substr(0, content_type.find(';'));
    return absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(media), "application/json");
  }

  void dispatch(Connection& connection, Job job) {
    bool queued = false;
    // What a refused job had reserved; a queued one releases its own.
    size_t refused_reserved = 0;
    {
      MutexLock lock(&mutex_);
      ++stats_.requests;
      if (queue_.size() < options_.max_queued_requests) {
        queue_.push_back(std::move(job));
        queued = true;
      } else {
        ++stats_.rejected_busy;
        refused_reserved = job.reserved;
      }
    }
    if (!queued) {
      releaseBody(refused_reserved);
      answer(connection, answerBytes(503, kTextContentType, "busy\n", false, "Retry-After: 1\r\n"),
             false);
      return;
    }
    work_ready_.Signal();
    connection.phase = Phase::kHandling;
    unwait(connection);
    // Nothing is read meanwhile; a reset still reports EPOLLERR/EPOLLHUP.
    watch(connection, 0);
  }

  void deliverAnswers() {
    std::deque<Job> done;
    {
      MutexLock lock(&mutex_);
      done.swap(done_);
    }
    for (Job& job : done) {
      releaseBody(job.reserved);
      auto found = connections_.find(job.connection);
      if (found == connections_.end()) continue;  // the client went away
      const bool close = job.close_after || draining_;
      answer(found->second,
             answerBytes(job.response.status, job.response.content_type, job.response.body, close),
             close);
    }
  }

  // Starts sending `bytes`; the client has request_timeout to read them.
  void answer(Connection& connection, std::string bytes, bool close_after) {
    connection.phase = Phase::kAnswering;
    connection.output = std::move(bytes);
    connection.sent = 0;
    connection.close_after = connection.close_after || close_after;
    wait(connection, pending_, request_timeout_);
    writeAnswer(connection);
  }

  void writeAnswer(Connection& connection) {
    while (connection.sent < connection.output.size()) {
      ERR_clear_error();
      const size_t left = std::min<size_t>(connection.output.size() - connection.sent, INT_MAX);
      const int written = SSL_write(
          connection.ssl.get(), connection.output.data() + connection.sent, static_cast<int>(left));
      if (written > 0) {
        connection.sent += static_cast<size_t>(written);
        continue;
      }
      if (watchFor(connection, SSL_get_error(connection.ssl.get(), written))) return;
      ERR_clear_error();
      closeConnection(connection.id);
      return;
    }
    ++connection.served;
    if (connection.close_after) {
      // close_notify, best effort: the socket is non-blocking.
      SSL_shutdown(connection.ssl.get());
      ERR_clear_error();
      closeConnection(connection.id);
      return;
    }
    std::string().swap(connection.output);  // an idle connection holds no buffer
    connection.sent = 0;
    if (connection.input.empty()) {
      connection.phase = Phase::kIdle;
      wait(connection, idle_, idle_timeout_);
    } else {
      connection.phase = Phase::kRequest;  // pipelined behind the one answered
      wait(connection, pending_, request_timeout_);
    }
    watch(connection, EPOLLIN);
    // OpenSSL may hold decrypted records already; read them on this pass
    // rather than waiting for the socket (iteratively, not recursively).
    resume_.push_back(connection.id);
  }

  void resumeReading() {
    while (!resume_.empty()) {
      std::vector<uint64_t> resume;
      resume.swap(resume_);
      for (uint64_t id : resume) {
        auto found = connections_.find(id);
        if (found == connections_.end()) continue;
        if (found->second.phase == Phase::kIdle || found->second.phase == Phase::kRequest) {
          readRequest(found->second);
        }
      }
    }
  }

  void watch(Connection& connection, uint32_t events) {
    if (connection.watched == events) return;
    epoll_event event{};
    event.events = events;
    event.data.u64 = connection.id;
    epoll_ctl(descriptors_->epoll(), EPOLL_CTL_MOD, connection.fd, &event);
    connection.watched = events;
  }

  // Puts the connection at the end of `list` with a deadline `timeout` from
  // now. Every entry of a list got the same timeout, so each list is in
  // deadline order and expiry looks only at the fronts.
  void wait(Connection& connection, std::list<uint64_t>& list, MonotonicTime::duration timeout) {
    unwait(connection);
    connection.deadline = time_source_.monotonicTime() + timeout;
    connection.position = list.insert(list.end(), connection.id);
    connection.list = &list;
  }

  void unwait(Connection& connection) {
    if (connection.list == nullptr) return;
    connection.list->erase(connection.position);
    connection.list = nullptr;
  }

  void expire() {
    const MonotonicTime now = time_source_.monotonicTime();
    // An idle keep-alive connection reaching its end is routine.
    while (!idle_.empty() && connections_.at(idle_.front()).deadline <= now) {
      closeConnection(idle_.front());
    }
    while (!pending_.empty() && connections_.at(pending_.front()).deadline <= now) {
      {
        // Counted before the client can see the close.
        MutexLock lock(&mutex_);
        ++stats_.timed_out;
      }
      closeConnection(pending_.front());
    }
  }

  void closeConnection(uint64_t id) {
    auto found = connections_.find(id);
    if (found == connections_.end()) return;
    unwait(found->second);
    stopReceiving(found->second);
    releaseBody(found->second.reserved);  // a body being handled holds its own
    found->second.ssl.reset();
    close(found->second.fd);  // also leaves the epoll set
    connections_.erase(found);
    MutexLock lock(&mutex_);
    stats_.open_connections = connections_.size();
  }

  const WebhookHandler handler_;
  const CertificateStore& certificates_;
  const TimeSource& time_source_;
  const WebhookServerOptions options_;
  const MonotonicTime::duration request_timeout_;
  const MonotonicTime::duration idle_timeout_;
  const size_t max_connections_;
  // The listener and the eventfd that wakes the loop: stop, and answers
  // handed back.
  const std::unique_ptr<server::LoopDescriptors> descriptors_;
  server::HttpCodec codec_;

  // Only the loop thread touches these.
  SslCtxPtr context_;
  std::shared_ptr<const CertificatePair> context_pair_;
  std::unordered_map<uint64_t, Connection> connections_;
  std::list<uint64_t> idle_;      // kIdle, by idle_timeout deadline
  std::list<uint64_t> pending_;   // kHandshake, kRequest, kAnswering, by request_timeout deadline
  std::vector<uint64_t> resume_;  // answered; read what is buffered
  // Connections holding a reservation for a body still arriving, in the
  // order they reserved it, and the bytes they hold.
  std::list<uint64_t> receiving_;
  size_t receiving_bytes_ = 0;
  uint64_t next_id_ = server::kFirstConnectionEventId;
  bool draining_ = false;
  MonotonicTime drain_deadline_;
  log::Occasionally shed_warning_{kWarningInterval};
  log::Occasionally body_budget_warning_{kWarningInterval};
  log::Occasionally handshake_warning_{kWarningInterval};

  std::thread loop_;
  std::vector<std::thread> workers_;

  mutable Mutex mutex_;
  bool stop_requested_ ABSL_GUARDED_BY(mutex_) = false;
  bool workers_quit_ ABSL_GUARDED_BY(mutex_) = false;
  bool loop_running_ ABSL_GUARDED_BY(mutex_) = false;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mutex_);
  size_t large_running_ ABSL_GUARDED_BY(mutex_) = 0;  // large jobs on workers now
  std::deque<Job> done_ ABSL_GUARDED_BY(mutex_);
  WebhookServerStats stats_ ABSL_GUARDED_BY(mutex_);
  CondVar work_ready_;

  Mutex stop_mutex_;
  bool stopped_ ABSL_GUARDED_BY(stop_mutex_) = false;
};

absl::StatusOr<std::unique_ptr<WebhookServer>> WebhookServer::start(
    const std::string& address, WebhookHandler handler, const CertificateStore& certificates,
    const TimeSource& time_source, const WebhookServerOptions& options) {
  if (options.max_body_bytes > options.max_buffered_body_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("webhook server: max_body_bytes (", options.max_body_bytes,
                     ") over max_buffered_body_bytes (", options.max_buffered_body_bytes,
                     "): a body at the limit could never be read"));
  }
  std::shared_ptr<const CertificatePair> pair = certificates.current();
  absl::StatusOr<SslCtxPtr> context = buildContext(*pair);
  if (!context.ok()) return context.status();
  absl::StatusOr<std::unique_ptr<server::LoopDescriptors>> descriptors =
      server::LoopDescriptors::open(address, "webhook address", "webhook server", time_source);
  if (!descriptors.ok()) return descriptors.status();
  auto impl = std::make_unique<Impl>(std::move(handler), certificates, time_source, options,
                                     server::connectionLimit(options.max_connections),
                                     *std::move(context), std::move(pair), *std::move(descriptors));
  if (absl::Status status = impl->run(); !status.ok()) return status;
  return std::unique_ptr<WebhookServer>(new WebhookServer(std::move(impl)));
}

WebhookServer::WebhookServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WebhookServer::~WebhookServer() { stop(); }

int WebhookServer::portForTest() const { return impl_->port(); }

std::string WebhookServer::address() const { return impl_->address(); }

WebhookServerStats WebhookServer::stats() const { return impl_->stats(); }

bool WebhookServer::serving() const { return impl_->serving(); }

void WebhookServer::stop() { impl_->stop(); }

}  // namespace credsync::injector
