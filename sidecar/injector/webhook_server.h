#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/common/time_source.h"
#include "sidecar/injector/certificate_store.h"

namespace credsync::injector {

// One request the webhook accepted: method, path (no query) and the whole
// body.
struct WebhookRequest {
  std::string method;
  std::string path;
  std::string body;
};

struct WebhookResponse {
  int status = 500;
  std::string content_type;
  std::string body;
};

// Answers one request; runs on a worker thread, never on the event loop, and
// may run on several workers at once.
using WebhookHandler = std::function<WebhookResponse(const WebhookRequest& request)>;

struct WebhookServerOptions {
  // The one path served; POST only.
  std::string path = "/mutate";
  // A connection must finish its TLS handshake, and later each whole
  // request (head and body, from its first byte), within this; and its
  // client must read each answer within it. Else it is closed (timed_out).
  absl::Duration request_timeout = absl::Seconds(10);
  // How long a keep-alive connection may wait for its next request. Longer
  // than the API server's idle timeout (Go's 90 s), so the client is the
  // one that closes an idle connection and never sends on one being closed.
  absl::Duration idle_timeout = absl::Seconds(120);
  // Larger bodies are answered 413 from their Content-Length, unread. The
  // API server's pods are bounded by etcd's 1.5 MiB request limit (and its
  // own 3 MiB request bodies), so a CREATE review fits with room to spare.
  size_t max_body_bytes = size_t{4} << 20;
  // Body bytes held at once, over every connection: a request's
  // Content-Length is reserved when its head arrives, before its body is
  // read, and released when its answer is handed back or its connection
  // closes. When a request does not fit, connections still receiving their
  // bodies are closed, oldest reservation first, until it does (as at
  // max_connections, the one waiting longest makes room): slow senders
  // holding the budget delay no review the API server sends whole. Only
  // when bodies already whole (queued or being handled) leave no room does
  // the request get 503 with Retry-After: 1, unread (connection closed),
  // and nothing is closed for it. 16 MiB: four bodies at the limit (one per
  // default worker), or thousands of the few-KiB reviews the API server
  // sends; many slow senders can then hold 16 MiB, never gigabytes. Must be
  // at least max_body_bytes (start() refuses otherwise).
  size_t max_buffered_body_bytes = size_t{16} << 20;
  // Connections open at most; at the limit the one idle longest (else the
  // one waiting longest for its handshake or request) is closed to admit
  // the new one. 0: as the probe server (server/listener.h connectionLimit).
  size_t max_connections = 0;
  // Threads running the handler.
  size_t workers = 4;
  // Bodies over large_body_bytes are handled by at most large_body_workers
  // at once (the others wait in the queue while small ones go ahead): a
  // parsed JSON document takes up to ~28 times its text (empty objects), so
  // four workers parsing 4 MiB each at once could hold hundreds of MiB.
  // Reviews the API server sends are a few KiB.
  size_t large_body_bytes = size_t{256} << 10;
  size_t large_body_workers = 1;
  // Requests waiting for a worker at most; beyond, 503 at once.
  size_t max_queued_requests = 64;
  // How long stop() lets requests already being answered finish.
  absl::Duration stop_grace = absl::Seconds(5);
};

// What the server has done, for the injector's metrics. Counters only grow.
struct WebhookServerStats {
  size_t open_connections = 0;
  size_t buffered_body_bytes = 0;  // reserved of max_buffered_body_bytes now
  uint64_t accepted = 0;
  uint64_t requests = 0;  // whole requests handed to the handler
  uint64_t shed = 0;      // closed to admit a newer one at max_connections
  // Closed while receiving a body, to make room in max_buffered_body_bytes
  // for a newer request's.
  uint64_t shed_for_body_budget = 0;
  // Closed for not finishing the handshake, a request, or reading an
  // answer within request_timeout (idle keep-alive expiry is not counted).
  uint64_t timed_out = 0;
  uint64_t tls_handshake_failed = 0;
  uint64_t refused_for_descriptors = 0;
  uint64_t rejected_busy = 0;  // 503: every worker busy and the queue full
  // 503: its Content-Length did not fit in max_buffered_body_bytes, even
  // after closing every connection still receiving a body.
  uint64_t rejected_memory = 0;
};

// The injector's HTTPS endpoint: HTTP/1.1 over TLS 1.2 or 1.3 (OpenSSL),
// POST `path` with a Content-Length body answered by the handler. Other
// paths get 404, other methods 405, a body over max_body_bytes 413 (unread,
// connection closed), a POST without Content-Length or with
// Transfer-Encoding (chunked) 411, a Content-Type other than
// application/json 415, a malformed head 400, a head over 16 KiB 431, a
// body that does not fit in what bodies already whole leave of
// max_buffered_body_bytes 503 (Retry-After: 1); each of these closes the
// connection after its answer, since a body it did not read may follow. A
// whole request that finds every worker busy and
// max_queued_requests waiting gets 503 with Retry-After: 1. "Expect:
// 100-continue" gets no interim answer (a client sends its body after its
// own short wait, as RFC 9110 allows). Keep-alive: up to 1000 requests a
// connection; pipelined requests are answered in order.
//
// Design: one event-loop thread (epoll, level-triggered) owns the listener
// and every connection with non-blocking OpenSSL: SSL_accept, SSL_read and
// SSL_write return WANT_READ/WANT_WRITE and the loop watches the descriptor
// for what OpenSSL wants. A connection is a few KiB of state plus its SSL
// object, never a thread, whether it is handshaking, sending its request
// byte by byte, or idle between requests. Once a request is whole, its
// body is handed to a bounded pool of worker threads; the loop keeps
// accepting and handshaking meanwhile, and writes the answer when the
// worker hands it back. Request heads are parsed with cpp-httplib
// (server/http_head.h, as the probe server does). Each new handshake uses
// the CertificateStore's current pair: an SSL_CTX is built once per pair,
// and connections already open keep the one they started with, so a
// rotation fails no request. Bounded: connections (shedding), the
// descriptor reserve, head and body size, time per handshake, request and
// answer, queued requests, body bytes held at once (shedding the oldest
// bodies still arriving), and large bodies handled at once. Thread-safe.
class WebhookServer {
 public:
  // Binds `address`, "host:port" (port 0 picks a free one), and serves on
  // its own threads until stop(). Errors: INVALID_ARGUMENT for a malformed
  // address or options (max_body_bytes over max_buffered_body_bytes);
  // UNAVAILABLE when it does not resolve or bind/listen fails;
  // INTERNAL when out of descriptors or threads, or OpenSSL cannot build a
  // TLS context from the store's pair. `certificates` and `time_source`
  // must outlive the server.
  static absl::StatusOr<std::unique_ptr<WebhookServer>> start(
      const std::string& address, WebhookHandler handler, const CertificateStore& certificates,
      const TimeSource& time_source, const WebhookServerOptions& options = WebhookServerOptions());

  ~WebhookServer();  // stops
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  int portForTest() const;
  std::string address() const;  // "host:port" with the bound port
  WebhookServerStats stats() const;
  // True while the event loop runs (for /healthz).
  bool serving() const;
  // Closes the listener and idle connections at once, lets answers in
  // progress finish within stop_grace, then closes the rest and joins the
  // threads. Idempotent.
  void stop();

 private:
  class Impl;
  explicit WebhookServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace credsync::injector
