#include "sidecar/server/probe_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "sidecar/common/descriptors.h"
#include "sidecar/common/mutex.h"
#include "tests/common/descriptor_limit.h"
#include "tests/common/eventually.h"
#include "tests/common/loopback_http.h"
#include "tests/common/status_matchers.h"

namespace credsync::server {
namespace {

using credsync::testing::eventually;
using credsync::testing::limitPuttingTheNextAcceptInTheReserve;
using credsync::testing::ScopedDescriptorLimit;
using credsync::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kLoopback[] = "127.0.0.1";

// A raw loopback connection, for what an HTTP client library hides:
// keep-alive, pipelining, malformed requests. Reads time out after 5 s so a
// bug fails the test instead of hanging it.
class RawConnection {
 public:
  // `receive_buffer` (bytes), when set, is a small SO_RCVBUF, for a client
  // that does not read.
  explicit RawConnection(int port, int receive_buffer = 0)
      : fd_(credsync::testing::connectLoopback(port, connected_, receive_buffer)) {}
  ~RawConnection() { close(fd_); }

  bool connected() const { return connected_; }
  bool send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // One response: the head and a Content-Length body. Empty when the
  // server closed the connection first.
  std::string readResponse() {
    return credsync::testing::takeHttpResponse(
        buffer_, [this] { return fill(); }, absl::StartsWith(last_method_, "HEAD"));
  }
  void expectHead() { last_method_ = "HEAD"; }
  // True once the server has closed its end: end of stream, or a reset
  // for a connection still in the backlog when the listener closed.
  bool closedByPeer() {
    char byte;
    const ssize_t received = recv(fd_, &byte, 1, 0);
    return received == 0 || (received < 0 && errno == ECONNRESET);
  }

 private:
  bool fill() {
    char chunk[4096];
    const ssize_t received = recv(fd_, chunk, sizeof(chunk), 0);
    if (received <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(received));
    return true;
  }

  bool connected_ = false;
  const int fd_;
  std::string buffer_;
  std::string last_method_;
};

class ProbeServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    handlers_.live = [this] { return live_.load(); };
    handlers_.ready = [this] {
      Readiness readiness;
      readiness.ready = ready_.load();
      if (!readiness.ready) readiness.detail = "profile app: not written yet\nprofile db: invalid";
      return readiness;
    };
    handlers_.metrics = [] { return std::string("# HELP m M.\n# TYPE m gauge\nm 1\n"); };
  }

  std::unique_ptr<ProbeServer> start(const ProbeServerOptions& options = ProbeServerOptions()) {
    absl::StatusOr<std::unique_ptr<ProbeServer>> server =
        ProbeServer::start(absl::StrCat(kLoopback, ":0"), handlers_, time_source_, options);
    EXPECT_THAT(server, credsync::testing::IsOk());
    return server.ok() ? *std::move(server) : nullptr;
  }

  // Real time: the server's deadlines are waited for on real sockets.
  RealTimeSource time_source_;
  std::atomic<bool> live_{true};
  std::atomic<bool> ready_{true};
  ProbeHandlers handlers_;
};

// Verifies the bound port and address are reported.
TEST_F(ProbeServerTest, ReportsBoundAddress) {
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->portForTest(), 0);
  EXPECT_EQ(server->address(), absl::StrCat(kLoopback, ":", server->portForTest()));
}

// Verifies /healthz answers 200 "ok" while live and 503 once stalled.
TEST_F(ProbeServerTest, Liveness) {
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  httplib::Client client(kLoopback, server->portForTest());
  httplib::Result result = client.Get("/healthz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "ok\n");
  EXPECT_EQ(result->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(result->get_header_value("Cache-Control"), "no-store");

  live_ = false;
  result = client.Get("/healthz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);
  EXPECT_EQ(result->body, "scheduler stalled\n");
}

// Verifies /readyz answers 200 "ready" when ready and 503 with the detail
// lines (newline-terminated) when not.
TEST_F(ProbeServerTest, Readiness) {
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  httplib::Client client(kLoopback, server->portForTest());
  httplib::Result result = client.Get("/readyz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "ready\n");

  ready_ = false;
  result = client.Get("/readyz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);
  EXPECT_EQ(result->body, "profile app: not written yet\nprofile db: invalid\n");
}

// Verifies an unready answer without detail still says something.
TEST_F(ProbeServerTest, ReadinessWithoutDetail) {
  handlers_.ready = [] { return Readiness{}; };
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  httplib::Client client(kLoopback, server->portForTest());
  httplib::Result result = client.Get("/readyz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);
  EXPECT_EQ(result->body, "not ready\n");
}

// Verifies /metrics serves the handler's text with Prometheus's content type.
TEST_F(ProbeServerTest, Metrics) {
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  httplib::Client client(kLoopback, server->portForTest());
  httplib::Result result = client.Get("/metrics");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(result->body, "# HELP m M.\n# TYPE m gauge\nm 1\n");
}

// Verifies the `other` handler gets every request the probe paths do not
// take, parsed whole, and that a request with a body still has its
// connection closed after the handler's answer.
TEST_F(ProbeServerTest, OtherHandlerTakesTheRest) {
  std::vector<std::string> seen;
  Mutex seen_mutex;
  handlers_.other = [&](const httplib::Request& request, httplib::Response& response) {
    MutexLock lock(&seen_mutex);
    seen.push_back(absl::StrCat(request.method, " ", request.target, " ",
                                request.get_header_value("X-Probe")));
    response.status = 299;
    response.set_content("other\n", "text/plain");
  };
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  httplib::Client client(kLoopback, server->portForTest());
  httplib::Result result = client.Get("/healthz");  // still the probe's
  ASSERT_TRUE(result);
  EXPECT_EQ(result->body, "ok\n");
  result = client.Get("/anything?x=1", {{"X-Probe", "yes"}});
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 299);
  EXPECT_EQ(result->body, "other\n");
  EXPECT_EQ(result->get_header_value("Cache-Control"), "no-store");

  RawConnection connection(server->portForTest());
  ASSERT_TRUE(connection.connected());
  ASSERT_TRUE(connection.send("POST /x HTTP/1.1\r\nHost: probe\r\nContent-Length: 3\r\n\r\nabc"));
  const std::string response = connection.readResponse();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 299 "));
  EXPECT_THAT(response, HasSubstr("Connection: close\r\n"));
  EXPECT_TRUE(connection.closedByPeer());
  MutexLock lock(&seen_mutex);
  EXPECT_THAT(seen, ::testing::ElementsAre("GET /anything?x=1 yes", "POST /x "));
}

// Verifies HEAD gets GET's status and headers without a body.
TEST_F(ProbeServerTest, Head) {
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  RawConnection connection(server->portForTest());
  ASSERT_TRUE(connection.connected());
  connection.expectHead();
  ASSERT_TRUE(connection.send("HEAD /metrics HTTP/1.1\r\nHost: probe\r\n\r\n"));
  const std::string response = connection.readResponse();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(response, HasSubstr("Content-Length: 31\r\n"));
  EXPECT_TRUE(absl::EndsWith(response, "\r\n\r\n"));

  live_ = false;
  ASSERT_TRUE(connection.send("HEAD /healthz HTTP/1.1\r\nHost: probe\r\n\r\n"));
  EXPECT_THAT(connection.readResponse(), StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
}

// Verifies unknown paths, and paths whose handler is unset, answer 404; a
// query string does not change the path.
TEST_F(ProbeServerTest, UnknownPathsAre404) {
  handlers_.metrics = nullptr;
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  httplib::Client client(kLoopback, server->portForTest());
  for (const char* path : {"/", "/healthz/", "/livez", "/metrics", "/HEALTHZ", "/../healthz"}) {
    httplib::Result result = client.Get(path);
    ASSERT_TRUE(result) << path;
    EXPECT_EQ(result->status, 404) << path;
    EXPECT_EQ(result->body, "not found\n") << path;
  }
  httplib::Result result = client.Get("/healthz?verbose=1");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
}

// Verifies methods other than GET and HEAD answer 405 with Allow, and the
// handler is not called.
TEST_F(ProbeServerTest, OtherMethodsAre405) {
  std::atomic<int> calls{0};
  handlers_.live = [&] {
    ++calls;
    return true;
  };
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  httplib::Client client(kLoopback, server->portForTest());
  std::vector<httplib::Result> results;
  results.push_back(client.Post("/healthz", "x", "text/plain"));
  results.push_back(client.Put("/healthz", "", "text/plain"));
  results.push_back(client.Delete("/healthz"));
  results.push_back(client.Options("/healthz"));
  results.push_back(client.Patch("/readyz", "{}", "application/json"));
  for (const httplib::Result& result : results) {
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 405);
    EXPECT_EQ(result->get_header_value("Allow"), "GET, HEAD");
  }
  EXPECT_EQ(calls.load(), 0);
}

// Verifies a request carrying a body is refused (413 for GET, 405 for POST)
// and its connection closed, so the unread body is never taken for a
// request.
TEST_F(ProbeServerTest, RequestBodiesCloseTheConnection) {
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  {
    RawConnection connection(server->portForTest());
    ASSERT_TRUE(connection.connected());
    ASSERT_TRUE(
        connection.send("GET /healthz HTTP/1.1\r\nHost: probe\r\nContent-Length: 41\r\n\r\n"
                        "GET /metrics HTTP/1.1\r\nHost: probe\r\n\r\n"));
    const std::string response = connection.readResponse();
    EXPECT_THAT(response, StartsWith("HTTP/1.1 413 "));
    EXPECT_THAT(response, HasSubstr("Connection: close\r\n"));
    EXPECT_EQ(connection.readResponse(), "");
  }
  {
    RawConnection connection(server->portForTest());
    ASSERT_TRUE(connection.connected());
    ASSERT_TRUE(connection.send(
        "POST /healthz HTTP/1.1\r\nHost: probe\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n"));
    const std::string response = connection.readResponse();
    EXPECT_THAT(response, StartsWith("HTTP/1.1 405 "));
    EXPECT_THAT(response, HasSubstr("Connection: close\r\n"));
    EXPECT_EQ(connection.readResponse(), "");
  }
  {
    // "Expect: 100-continue" gets the final answer, not an invitation.
    RawConnection connection(server->portForTest());
    ASSERT_TRUE(connection.connected());
    ASSERT_TRUE(
        connection.send("POST /metrics HTTP/1.1\r\nHost: probe\r\nContent-Length: 100000\r\n"
                        "Expect: 100-continue\r\n\r\n"));
    const std::string response = connection.readResponse();
    EXPECT_THAT(response, StartsWith("HTTP/1.1 405 "));
    EXPECT_THAT(response, HasSubstr("Connection: close\r\n"));
  }
}

// Verifies keep-alive and pipelining: several requests on one connection,
// some sent in one segment, each answered in order.
TEST_F(ProbeServerTest, KeepAliveAndPipelining) {
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  RawConnection connection(server->portForTest());
  ASSERT_TRUE(connection.connected());
  ASSERT_TRUE(connection.send("GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n"));
  std::string response = connection.readResponse();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(response, HasSubstr("Keep-Alive: timeout=10, max=100\r\n"));
  ASSERT_TRUE(
      connection.send("GET /readyz HTTP/1.1\r\nHost: probe\r\n\r\n"
                      "GET /nope HTTP/1.1\r\nHost: probe\r\n\r\n"
                      "GET /metrics HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(absl::EndsWith(connection.readResponse(), "\r\n\r\nready\n"));
  EXPECT_THAT(connection.readResponse(), StartsWith("HTTP/1.1 404 "));
  response = connection.readResponse();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(response, HasSubstr("Connection: close\r\n"));
  EXPECT_TRUE(connection.closedByPeer());
}

// Verifies a malformed request gets 400 and its connection closed, and an
// oversized head is cut off.
TEST_F(ProbeServerTest, MalformedRequests) {
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  {
    RawConnection connection(server->portForTest());
    ASSERT_TRUE(connection.connected());
    ASSERT_TRUE(connection.send("GET /healthz\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n"));
    EXPECT_THAT(connection.readResponse(), StartsWith("HTTP/1.1 400 "));
    EXPECT_EQ(connection.readResponse(), "");
  }
  {
    RawConnection connection(server->portForTest());
    ASSERT_TRUE(connection.connected());
    connection.send(absl::StrCat("GET /healthz HTTP/1.1\r\nHost: probe\r\n", std::string(64, 'X'),
                                 ": ", std::string(2000, 'y'), "\r\n"));
    for (int i = 0; i < 20; ++i) {
      connection.send(absl::StrCat("X-Filler-", i, ": ", std::string(2000, 'z'), "\r\n"));
    }
    connection.send("\r\n");
    EXPECT_THAT(connection.readResponse(), Not(StartsWith("HTTP/1.1 200 ")));
  }
  // The server still serves afterwards.
  httplib::Client client(kLoopback, server->portForTest());
  httplib::Result result = client.Get("/healthz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
}

// Verifies a slow handler does not hold up other probes: /healthz answers
// while a /metrics render is still running.
TEST_F(ProbeServerTest, SlowHandlerDoesNotBlockOtherProbes) {
  Notification metrics_entered;
  Notification release_metrics;
  handlers_.metrics = [&] {
    metrics_entered.Notify();
    release_metrics.WaitForNotification();
    return std::string("m 1\n");
  };
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  std::thread scrape([&] {
    httplib::Client client(kLoopback, server->portForTest());
    httplib::Result result = client.Get("/metrics");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200);
  });
  metrics_entered.WaitForNotification();
  httplib::Client client(kLoopback, server->portForTest());
  httplib::Result result = client.Get("/healthz");
  release_metrics.Notify();
  scrape.join();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
}

// Verifies malformed addresses are INVALID_ARGUMENT.
TEST_F(ProbeServerTest, RejectsMalformedAddresses) {
  for (const char* address :
       {"", "127.0.0.1", "127.0.0.1:", ":8080", "127.0.0.1:http", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:123456", "::1:8080", "[::1]", "[::1]8080", "[::1:8080", "127.0.0.1 :8080",
        "127.0.0.1:80 80"}) {
    EXPECT_THAT(ProbeServer::start(address, handlers_, time_source_),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("host:port")))
        << address;
  }
}

// Verifies a port already in use is UNAVAILABLE naming the address and the
// system's reason.
TEST_F(ProbeServerTest, PortInUse) {
  const std::unique_ptr<ProbeServer> first = start();
  ASSERT_NE(first, nullptr);
  const std::string taken = absl::StrCat(kLoopback, ":", first->portForTest());
  EXPECT_THAT(ProbeServer::start(taken, handlers_, time_source_),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr(taken), HasSubstr("Address already in use"))));
}

// Verifies stop() returns at once even while a client holds an idle
// keep-alive connection (which the server would otherwise keep for 2 s),
// that the connection is closed, and that stop() is idempotent.
TEST_F(ProbeServerTest, StopClosesIdleKeepAliveConnections) {
  std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  const int port = server->portForTest();
  RawConnection idle(port);
  ASSERT_TRUE(idle.connected());
  ASSERT_TRUE(idle.send("GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n"));
  ASSERT_THAT(idle.readResponse(), StartsWith("HTTP/1.1 200 OK\r\n"));
  RawConnection silent(port);  // connected, never sends a byte
  ASSERT_TRUE(silent.connected());

  const auto started = std::chrono::steady_clock::now();
  server->stop();
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_LT(took, std::chrono::milliseconds(500));
  EXPECT_TRUE(idle.closedByPeer());
  EXPECT_TRUE(silent.closedByPeer());

  server->stop();
  RawConnection late(port);
  EXPECT_FALSE(late.connected());
  server.reset();
}

// Verifies the destructor stops a running server.
TEST_F(ProbeServerTest, DestructorStops) {
  std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  const int port = server->portForTest();
  RawConnection idle(port);
  ASSERT_TRUE(idle.connected());
  server.reset();
  EXPECT_TRUE(idle.closedByPeer());
  RawConnection late(port);
  EXPECT_FALSE(late.connected());
}

// What an attacker on the pod network can do to the probe port. Each test is
// bounded in connections and in time; deadlines are the server's own
// options, set short.

// Verifies idle connections hold nothing the probes need: with a thousand
// connections open and silent, /healthz, /readyz and /metrics answer.
TEST_F(ProbeServerTest, IdleConnectionsDoNotStarveProbes) {
  raiseDescriptorLimit();
  const size_t count = std::min<size_t>(1000, (descriptorLimit() - kDescriptorReserve) / 3);
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (size_t i = 0; i < count; ++i) {
    idle.push_back(std::make_unique<RawConnection>(server->portForTest()));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  ASSERT_TRUE(eventually([&] { return server->stats().open_connections == count; }));
  httplib::Client client(kLoopback, server->portForTest());
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    httplib::Result result = client.Get(path);
    ASSERT_TRUE(result) << path;
    EXPECT_EQ(result->status, 200) << path;
  }
  EXPECT_EQ(server->stats().shed, 0u);
}

// Verifies a client sending its request a byte at a time is closed once the
// request timeout passes, and counted.
TEST_F(ProbeServerTest, TricklingClientIsClosedAtTheRequestTimeout) {
  ProbeServerOptions options;
  options.request_timeout = absl::Milliseconds(300);
  const std::unique_ptr<ProbeServer> server = start(options);
  ASSERT_NE(server, nullptr);
  RawConnection slow(server->portForTest());
  ASSERT_TRUE(slow.connected());
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n";
  // 40 bytes, 50 ms apart: two seconds, well past the timeout.
  for (const char byte : request) {
    slow.send(std::string(1, byte));
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(slow.readResponse(), "");
  EXPECT_EQ(server->stats().timed_out, 1u);
  EXPECT_EQ(server->stats().requests, 0u);
}

// Verifies a client that never reads a large answer holds nothing: probes
// are answered meanwhile, and it is closed at the request timeout.
TEST_F(ProbeServerTest, ClientNotReadingItsAnswerIsClosedAtTheRequestTimeout) {
  handlers_.metrics = [] { return std::string(size_t{8} << 20, 'm'); };
  ProbeServerOptions options;
  options.request_timeout = absl::Milliseconds(300);
  const std::unique_ptr<ProbeServer> server = start(options);
  ASSERT_NE(server, nullptr);
  RawConnection stalled(server->portForTest(), /*receive_buffer=*/4096);
  ASSERT_TRUE(stalled.connected());
  ASSERT_TRUE(stalled.send("GET /metrics HTTP/1.1\r\nHost: probe\r\n\r\n"));
  httplib::Client client(kLoopback, server->portForTest());
  httplib::Result result = client.Get("/healthz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_TRUE(eventually([&] { return server->stats().timed_out == 1; }));
  EXPECT_EQ(server->stats().open_connections, 0u);
}

// Verifies that at max_connections the connection that has waited longest
// is closed to admit a new one, which is answered.
TEST_F(ProbeServerTest, AtTheLimitTheLongestWaitingConnectionMakesRoom) {
  ProbeServerOptions options;
  options.max_connections = 4;
  const std::unique_ptr<ProbeServer> server = start(options);
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (size_t i = 0; i < options.max_connections; ++i) {
    idle.push_back(std::make_unique<RawConnection>(server->portForTest()));
    ASSERT_TRUE(idle.back()->connected());
    ASSERT_TRUE(eventually([&] { return server->stats().open_connections == i + 1; }));
  }
  RawConnection fresh(server->portForTest());
  ASSERT_TRUE(fresh.connected());
  ASSERT_TRUE(fresh.send("GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n"));
  EXPECT_THAT(fresh.readResponse(), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(idle.front()->closedByPeer());
  EXPECT_EQ(server->stats().shed, 1u);
  EXPECT_EQ(server->stats().open_connections, options.max_connections);
  // The others were left alone: the second oldest still gets answers.
  ASSERT_TRUE(idle[1]->send("GET /readyz HTTP/1.1\r\nHost: probe\r\n\r\n"));
  EXPECT_THAT(idle[1]->readResponse(), StartsWith("HTTP/1.1 200 OK\r\n"));
}

// Verifies scrapes queued beyond max_queued_renders are answered 503 at
// once, and probes are answered while the render thread is busy.
TEST_F(ProbeServerTest, ScrapesBeyondTheQueueAre503) {
  Notification render_entered;
  Notification release_render;
  handlers_.metrics = [&] {
    if (!render_entered.HasBeenNotified()) render_entered.Notify();
    release_render.WaitForNotification();
    return std::string("m 1\n");
  };
  ProbeServerOptions options;
  options.max_queued_renders = 1;
  const std::unique_ptr<ProbeServer> server = start(options);
  ASSERT_NE(server, nullptr);
  const std::string scrape = "GET /metrics HTTP/1.1\r\nHost: probe\r\n\r\n";
  RawConnection rendering(server->portForTest());
  ASSERT_TRUE(rendering.send(scrape));
  render_entered.WaitForNotification();
  RawConnection queued(server->portForTest());
  ASSERT_TRUE(queued.send(scrape));
  ASSERT_TRUE(eventually([&] { return server->stats().requests == 2; }));
  RawConnection refused(server->portForTest());
  ASSERT_TRUE(refused.send(scrape));
  const std::string busy = refused.readResponse();
  EXPECT_THAT(busy, StartsWith("HTTP/1.1 503 "));
  EXPECT_TRUE(absl::EndsWith(busy, "\r\n\r\nscrape busy\n"));
  httplib::Client client(kLoopback, server->portForTest());
  httplib::Result result = client.Get("/healthz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  release_render.Notify();
  EXPECT_THAT(rendering.readResponse(), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(queued.readResponse(), StartsWith("HTTP/1.1 200 OK\r\n"));
}

// Verifies a connection that would leave fewer free descriptors than the
// reserve is refused (closed at once) and counted, and that the server
// serves again once descriptors are free.
TEST_F(ProbeServerTest, RefusesConnectionsThatWouldTouchTheDescriptorReserve) {
  const std::unique_ptr<ProbeServer> server = start();
  ASSERT_NE(server, nullptr);
  {
    const ScopedDescriptorLimit lowered(limitPuttingTheNextAcceptInTheReserve());
    RawConnection refused(server->portForTest());
    ASSERT_TRUE(refused.connected());
    EXPECT_TRUE(refused.closedByPeer());
  }
  EXPECT_EQ(server->stats().refused_for_descriptors, 1u);
  httplib::Client client(kLoopback, server->portForTest());
  httplib::Result result = client.Get("/healthz");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
}

}  // namespace
}  // namespace credsync::server
