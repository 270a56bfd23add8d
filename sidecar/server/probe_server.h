#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "httplib.h"
#include "sidecar/common/time_source.h"

namespace credsync::server {

struct Readiness {
  bool ready = false;
  // One line per unready profile; the body of a 503 from /readyz.
  std::string detail;
};

// What the probe server asks at each request. `live` and `ready` run on the
// server's event loop and must answer at once (a kubelet probe times out
// after one second by default); `metrics` runs on its render thread. They
// may run concurrently with each other. An unset handler
// makes its path answer 404.
struct ProbeHandlers {
  std::function<bool()> live;            // GET /healthz: 200 "ok\n" or 503 "scheduler stalled\n"
  std::function<Readiness()> ready;      // GET /readyz: 200 "ready\n" or 503 with detail
  std::function<std::string()> metrics;  // GET /metrics: 200, Prometheus text format 0.0.4
  // Every request the three above do not take (all of them when they are
  // unset): the whole parsed request, any method, to answer in `response`
  // (which already carries Cache-Control: no-store). Runs on the event loop,
  // so it must answer at once. A request with a body has its connection
  // closed after the answer whatever the handler says. Unset: 404.
  std::function<void(const httplib::Request& request, httplib::Response& response)> other;
};

struct ProbeServerOptions {
  // How long a connection may take, from its accept or the end of its last
  // answer, to send a whole request head; and how long a client may take to
  // read an answer. Longer, and the connection is closed: an idle or
  // byte-a-second client holds nothing but its descriptor meanwhile.
  absl::Duration request_timeout = absl::Seconds(10);
  // Connections open at most. At the limit, the one that has waited longest
  // for its request is closed to admit the new one, so a flood of idle
  // connections ages out its own members, never a kubelet's fresh probe.
  // 0: 4096, or less when RLIMIT_NOFILE leaves less beside the reserve
  // (sidecar/common/descriptors.h).
  size_t max_connections = 0;
  // /metrics renders queued beyond this are answered 503 at once.
  size_t max_queued_renders = 16;
};

// What the server has done, for credsync's metrics. Counters only grow.
struct ProbeServerStats {
  size_t open_connections = 0;
  uint64_t accepted = 0;
  uint64_t requests = 0;
  // Closed to admit a newer one at max_connections.
  uint64_t shed = 0;
  // Closed for sending no whole request, or reading no answer, in time.
  uint64_t timed_out = 0;
  // Refused at accept because the descriptor reserve would be touched.
  uint64_t refused_for_descriptors = 0;
};

// The HTTP listener for kubelet probes and Prometheus scrapes (docs/design.md
// §3.4): plain HTTP, since both speak it. Serves GET and HEAD of /healthz,
// /readyz and /metrics; other paths get 404 (or go to the `other` handler,
// which the loopback local API uses: the same loop and limits), other
// methods 405, a GET with a body 413, and any request with a body has its
// connection closed after the answer.
//
// One event loop (epoll) owns every connection: an idle or slow connection
// is a few hundred bytes of state and a descriptor, never a thread, so no
// number of them delays a probe (docs/operations.md, "Probes under attack").
// Request heads are parsed with cpp-httplib once whole; /healthz and /readyz
// are answered on the loop, /metrics is rendered on one worker thread so a
// slow render delays no probe. Bounded: connections (shedding the oldest
// waiting one), head size, time per request, queued renders, and the
// process's descriptor reserve. Thread-safe.
class ProbeServer {
 public:
  // Binds `address`, "host:port" (IPv6 as "[::1]:port"; port 0 picks a free
  // one), and serves on its own threads until stop(). Errors:
  //   INVALID_ARGUMENT  a malformed address;
  //   UNAVAILABLE       the host does not resolve, or bind/listen failed
  //                     (the message names the address and the errno text);
  //   INTERNAL          the process is out of descriptors or threads.
  // Deadlines are read from `time_source` (which must outlive the server).
  static absl::StatusOr<std::unique_ptr<ProbeServer>> start(
      const std::string& address, ProbeHandlers handlers, const TimeSource& time_source,
      const ProbeServerOptions& options = ProbeServerOptions());

  ~ProbeServer();  // stops
  ProbeServer(const ProbeServer&) = delete;
  ProbeServer& operator=(const ProbeServer&) = delete;

  // The bound port (the one picked when 0 was asked for); for tests, which
  // connect to it (production logs address()).
  int portForTest() const;
  // "host:port" with the bound port, the host as given ("[::1]:41234").
  std::string address() const;
  ProbeServerStats stats() const;
  // Closes the listener and every connection, idle keep-alive ones included,
  // waits for handlers in progress and joins the threads. Idempotent.
  void stop();

 private:
  class Impl;
  explicit ProbeServer(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace credsync::server
