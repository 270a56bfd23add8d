#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace credsync::server {

struct Readiness {
  bool ready = false;
  // One line per unready profile; the body of a 503 from /readyz.
  std::string detail;
};

// What the probe server asks at each request. Handlers run on the server's
// worker threads, possibly concurrently, and must not block for long: a
// kubelet probe times out after one second by default. An unset handler
// makes its path answer 404.
struct ProbeHandlers {
  std::function<bool()> live;            // GET /healthz: 200 "ok\n" or 503 "scheduler stalled\n"
  std::function<Readiness()> ready;      // GET /readyz: 200 "ready\n" or 503 with detail
  std::function<std::string()> metrics;  // GET /metrics: 200, Prometheus text format 0.0.4
};

// The HTTP listener for kubelet probes and Prometheus scrapes (docs/design.md
// §3.4): plain HTTP, since both speak it. Serves GET and HEAD of /healthz, /readyz
// and /metrics; other paths get 404, other methods 405, a GET with a body
// 413, and any request with a body has its connection closed after the
// answer. It parses requests with cpp-httplib but owns its sockets and
// threads (httplib 0.11's own loop cannot stop while a keep-alive client
// idles, and reports no bind errno): one acceptor and three workers, idle
// connections closed after two seconds, at most 32 connections open. It
// waits only on the network, with bounded timeouts, and on the handlers.
// Thread-safe.
class ProbeServer {
 public:
  // Binds `address`, "host:port" (IPv6 as "[::1]:port"; port 0 picks a free
  // one), and serves on its own threads until stop(). Errors:
  //   INVALID_ARGUMENT  a malformed address;
  //   UNAVAILABLE       the host does not resolve, or bind/listen failed
  //                     (the message names the address and the errno text);
  //   INTERNAL          the process is out of descriptors or threads.
  static absl::StatusOr<std::unique_ptr<ProbeServer>> start(const std::string& address,
                                                            ProbeHandlers handlers);

  ~ProbeServer();  // stops
  ProbeServer(const ProbeServer&) = delete;
  ProbeServer& operator=(const ProbeServer&) = delete;

  // The bound port (the one picked when 0 was asked for); for tests, which
  // connect to it (production logs address()).
  int portForTest() const;
  // "host:port" with the bound port, the host as given ("[::1]:41234").
  std::string address() const;
  // Closes the listener and every connection, idle keep-alive ones included,
  // waits for handlers in progress and joins the threads. Idempotent.
  void stop();

 private:
  class Impl;
  explicit ProbeServer(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace credsync::server
