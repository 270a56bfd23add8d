#include "sidecar/injector/webhook_server.h"

#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/mutex.h"
#include "tests/common/descriptor_limit.h"
#include "tests/common/eventually.h"
#include "tests/common/loopback_http.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"
#include "tests/emulator/pki.h"
#include "tests/unit/injector/secret_volume.h"

namespace credsync::injector {
namespace {

using credsync::testing::eventually;
using credsync::testing::IsOk;
using credsync::testing::limitPuttingTheNextAcceptInTheReserve;
using credsync::testing::readFile;
using credsync::testing::ScopedDescriptorLimit;
using credsync::testing::SecretVolume;
using credsync::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kLoopback[] = "127.0.0.1";

// A blocking TLS client over a loopback TCP connection, verifying the
// server against the given CA files. Reads time out after 5 s so that a
// bug fails the test instead of hanging it.
class TlsClient {
 public:
  TlsClient(int port, const std::vector<std::string>& ca_files, int max_version = 0) {
    context_ = SSL_CTX_new(TLS_client_method());
    for (const std::string& ca_file : ca_files) {
      SSL_CTX_load_verify_locations(context_, ca_file.c_str(), nullptr);
    }
    SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
    if (max_version != 0) {
      SSL_CTX_set_security_level(context_, 0);
      SSL_CTX_set_min_proto_version(context_, TLS1_VERSION);
      SSL_CTX_set_max_proto_version(context_, max_version);
    }
    fd_ = credsync::testing::connectLoopback(port, connected_);
    ssl_ = SSL_new(context_);
    SSL_set_fd(ssl_, fd_);
    SSL_set1_host(ssl_, "localhost");
    SSL_set_tlsext_host_name(ssl_, "localhost");
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(context_);
    close(fd_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool connected() const { return connected_; }
  bool handshake() {
    ERR_clear_error();
    handshaken_ = connected_ && SSL_connect(ssl_) == 1;
    ERR_clear_error();
    return handshaken_;
  }
  // Sends raw bytes on the TCP connection, before or instead of a handshake.
  bool sendPlain(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  bool send(const std::string& data) {
    if (!handshaken_ && !handshake()) return false;
    size_t sent = 0;
    while (sent < data.size()) {
      const int written = SSL_write(ssl_, data.data() + sent, static_cast<int>(data.size() - sent));
      if (written <= 0) return false;
      sent += static_cast<size_t>(written);
    }
    return true;
  }
  // One response: the head and a Content-Length body; empty when the
  // connection ended first.
  std::string readResponse() {
    return credsync::testing::takeHttpResponse(buffer_, [this] { return fill(); });
  }
  // True once the server closed the connection (close_notify, end of
  // stream or reset); false when the 5 s read timeout passed first.
  bool closedByPeer() {
    char byte;
    if (handshaken_) {
      const int received = SSL_read(ssl_, &byte, 1);
      const int error = SSL_get_error(ssl_, received);
      ERR_clear_error();
      if (received > 0) return false;
      return !(error == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
    const ssize_t received = recv(fd_, &byte, 1, 0);
    return received == 0 || (received < 0 && errno == ECONNRESET);
  }
  // The certificate the server presented.
  X509* peerCertificate() const { return SSL_get0_peer_certificate(ssl_); }

 private:
  bool fill() {
    char chunk[4096];
    const int received = SSL_read(ssl_, chunk, sizeof(chunk));
    if (received <= 0) {
      ERR_clear_error();
      return false;
    }
    buffer_.append(chunk, static_cast<size_t>(received));
    return true;
  }

  SSL_CTX* context_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
  bool handshaken_ = false;
  std::string buffer_;
};

std::string post(const std::string& body, const std::string& path = "/mutate",
                 const std::string& extra_headers = "") {
  return absl::StrCat("POST ", path, "?timeout=10s HTTP/1.1\r\nHost: localhost\r\n",
                      "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n",
                      extra_headers, "\r\n", body);
}

int statusOf(const std::string& response) {
  int status = 0;
  if (response.size() < 12 || !absl::SimpleAtoi(response.substr(9, 3), &status)) return 0;
  return status;
}

std::string bodyOf(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

class WebhookServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<emulator::Pki> pki =
        emulator::loadOrCreatePki(pki_dir_.path(), {"localhost"}, {"127.0.0.1"});
    ASSERT_THAT(pki, IsOk());
    ca_file_ = pki->ca_cert_path;
    volume_.publish(readFile(pki->server_cert_path), readFile(pki->server_key_path));
    absl::StatusOr<std::unique_ptr<CertificateStore>> store =
        CertificateStore::load(volume_.certPath(), volume_.keyPath());
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
    handler_ = [this](const WebhookRequest& request) {
      ++handled_;
      if (request.body == "slow") {
        MutexLock lock(&mutex_);
        slow_started_ = true;
        mutex_.Await(Condition(&release_slow_));
      }
      return WebhookResponse{200, "application/json",
                             absl::StrCat(request.method, " ", request.path, " ", request.body)};
    };
  }

  void TearDown() override { releaseSlow(); }

  std::unique_ptr<WebhookServer> start(const WebhookServerOptions& options = {}) {
    absl::StatusOr<std::unique_ptr<WebhookServer>> server = WebhookServer::start(
        absl::StrCat(kLoopback, ":0"), handler_, *store_, time_source_, options);
    EXPECT_THAT(server, IsOk());
    return server.ok() ? *std::move(server) : nullptr;
  }

  std::unique_ptr<TlsClient> client(const WebhookServer& server) {
    return std::make_unique<TlsClient>(server.portForTest(), std::vector<std::string>{ca_file_});
  }

  // POSTs `body` on a new connection; the whole response.
  std::string postOnce(const WebhookServer& server, const std::string& body) {
    std::unique_ptr<TlsClient> connection = client(server);
    if (!connection->send(post(body))) return "";
    return connection->readResponse();
  }

  bool slowStarted() {
    MutexLock lock(&mutex_);
    return slow_started_;
  }
  void releaseSlow() {
    MutexLock lock(&mutex_);
    release_slow_ = true;
  }

  RealTimeSource time_source_;
  TempDir pki_dir_{"webhook-pki"};
  TempDir volume_dir_{"webhook-volume"};
  SecretVolume volume_{volume_dir_.path()};
  std::string ca_file_;  // the test CA that signed the served certificate
  std::unique_ptr<CertificateStore> store_;
  WebhookHandler handler_;
  std::atomic<int> handled_{0};
  Mutex mutex_;
  bool slow_started_ ABSL_GUARDED_BY(mutex_) = false;
  bool release_slow_ ABSL_GUARDED_BY(mutex_) = false;
};

// Verifies a POST to the path is answered by the handler with its status,
// content type and body, the query left out of the path.
TEST_F(WebhookServerTest, AnswersPost) {
  const std::unique_ptr<WebhookServer> server = start();
  ASSERT_NE(server, nullptr);
  const std::string response = postOnce(*server, R"({"kind":"AdmissionReview"})");
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(response, HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_EQ(bodyOf(response), R"(POST /mutate {"kind":"AdmissionReview"})");
  EXPECT_EQ(server->stats().requests, 1u);
  EXPECT_TRUE(server->serving());
}

// Verifies a keep-alive connection serves several requests, one handshake.
TEST_F(WebhookServerTest, KeepAliveReusesConnection) {
  const std::unique_ptr<WebhookServer> server = start();
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TlsClient> connection = client(*server);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(connection->send(post(absl::StrCat("{\"n\":", i, "}"))));
    const std::string response = connection->readResponse();
    EXPECT_EQ(statusOf(response), 200);
    EXPECT_EQ(bodyOf(response), absl::StrCat("POST /mutate {\"n\":", i, "}"));
    EXPECT_THAT(response, Not(HasSubstr("Connection: close")));
  }
  // Pipelined: both answered in order.
  ASSERT_TRUE(connection->send(post("{\"a\":1}") + post("{\"b\":2}")));
  EXPECT_EQ(bodyOf(connection->readResponse()), "POST /mutate {\"a\":1}");
  EXPECT_EQ(bodyOf(connection->readResponse()), "POST /mutate {\"b\":2}");
  EXPECT_EQ(server->stats().accepted, 1u);
  EXPECT_EQ(server->stats().requests, 5u);
}

// Verifies what is not POST of a JSON Content-Length body to the path is
// refused with its status, without calling the handler, and the connection
// closed after the answer.
TEST_F(WebhookServerTest, RefusesOtherRequests) {
  const std::unique_ptr<WebhookServer> server = start();
  ASSERT_NE(server, nullptr);
  struct Case {
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {post("{}", "/validate"), 404},
      {"GET /mutate HTTP/1.1\r\nHost: localhost\r\n\r\n", 405},
      {"PUT /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}", 405},
      // 4 MiB and one byte, announced and never sent: refused at once.
      {"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
       "Content-Length: 4194305\r\n\r\n",
       413},
      {"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
       "Content-Length: 99999999999999999999999\r\n\r\n",
       413},
      {"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
       "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
       411},
      {"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\r\n", 411},
      {"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
       "Content-Length: -1\r\n\r\n",
       400},
      {"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
       "Content-Length: 2\r\n\r\n{}",
       415},
      {"NONSENSE\r\n\r\n", 400},
      {absl::StrCat("POST /mutate HTTP/1.1\r\nX-Filler: ", std::string(20000, 'x'), "\r\n"), 431},
  };
  for (const Case& test : cases) {
    std::unique_ptr<TlsClient> connection = client(*server);
    ASSERT_TRUE(connection->send(test.request)) << test.request.substr(0, 60);
    const std::string response = connection->readResponse();
    EXPECT_EQ(statusOf(response), test.status) << test.request.substr(0, 60) << "\n" << response;
    EXPECT_THAT(response, HasSubstr("Connection: close\r\n"));
    EXPECT_TRUE(connection->closedByPeer());
  }
  EXPECT_EQ(handled_.load(), 0);
}

// Verifies a 405 names the method allowed.
TEST_F(WebhookServerTest, MethodNotAllowedNamesPost) {
  const std::unique_ptr<WebhookServer> server = start();
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TlsClient> connection = client(*server);
  ASSERT_TRUE(connection->send("GET /mutate HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  EXPECT_THAT(connection->readResponse(), HasSubstr("Allow: POST\r\n"));
}

// Verifies a body of exactly the limit is read and answered.
TEST_F(WebhookServerTest, AcceptsBodyAtLimit) {
  WebhookServerOptions options;
  options.max_body_bytes = 1 << 20;
  const std::unique_ptr<WebhookServer> server = start(options);
  ASSERT_NE(server, nullptr);
  const std::string body(options.max_body_bytes, 'x');
  const std::string response = postOnce(*server, body);
  EXPECT_EQ(statusOf(response), 200);
  EXPECT_EQ(bodyOf(response).size(), body.size() + std::string("POST /mutate ").size());
}

// Verifies a client that sends half a head and stalls is closed after the
// request deadline, while another client is served meanwhile; and so is a
// client that never starts its handshake.
TEST_F(WebhookServerTest, StalledClientsClosedAtDeadline) {
  WebhookServerOptions options;
  options.request_timeout = absl::Seconds(1);
  const std::unique_ptr<WebhookServer> server = start(options);
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TlsClient> stalled = client(*server);
  ASSERT_TRUE(stalled->send("POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Le"));
  std::unique_ptr<TlsClient> silent = client(*server);  // TCP only, no ClientHello
  ASSERT_TRUE(silent->connected());

  EXPECT_EQ(statusOf(postOnce(*server, "{}")), 200);

  EXPECT_TRUE(stalled->closedByPeer());
  EXPECT_TRUE(silent->closedByPeer());
  EXPECT_EQ(server->stats().timed_out, 2u);
}

// Verifies a body that stops arriving is closed at the deadline too.
TEST_F(WebhookServerTest, StalledBodyClosedAtDeadline) {
  WebhookServerOptions options;
  options.request_timeout = absl::Seconds(1);
  const std::unique_ptr<WebhookServer> server = start(options);
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TlsClient> stalled = client(*server);
  ASSERT_TRUE(stalled->send(post(std::string(1000, 'x')).substr(0, 400)));
  EXPECT_TRUE(stalled->closedByPeer());
  EXPECT_EQ(handled_.load(), 0);
  EXPECT_EQ(server->stats().timed_out, 1u);
}

// Verifies idle keep-alive connections stay open only for the idle timeout
// and are not counted as timed out.
TEST_F(WebhookServerTest, IdleConnectionClosedAfterIdleTimeout) {
  WebhookServerOptions options;
  options.idle_timeout = absl::Seconds(1);
  const std::unique_ptr<WebhookServer> server = start(options);
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TlsClient> connection = client(*server);
  ASSERT_TRUE(connection->send(post("{}")));
  EXPECT_EQ(statusOf(connection->readResponse()), 200);
  EXPECT_TRUE(connection->closedByPeer());
  EXPECT_EQ(server->stats().timed_out, 0u);
}

// Verifies a flood of idle keep-alive connections, and of connections that
// never handshake, at the connection limit does not keep a fresh client
// out: the longest-waiting ones are shed.
TEST_F(WebhookServerTest, ShedsLongestWaitingAtLimit) {
  WebhookServerOptions options;
  options.max_connections = 8;
  const std::unique_ptr<WebhookServer> server = start(options);
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<TlsClient>> idle;
  for (int i = 0; i < 8; ++i) {
    idle.push_back(client(*server));
    ASSERT_TRUE(idle.back()->send(post("{}")));
    ASSERT_EQ(statusOf(idle.back()->readResponse()), 200);
  }
  EXPECT_EQ(statusOf(postOnce(*server, "{\"fresh\":1}")), 200);
  EXPECT_TRUE(idle.front()->closedByPeer());  // the longest idle made room

  std::vector<std::unique_ptr<TlsClient>> silent;
  for (int i = 0; i < 16; ++i) {
    silent.push_back(client(*server));
    ASSERT_TRUE(silent.back()->connected());
  }
  EXPECT_EQ(statusOf(postOnce(*server, "{\"fresh\":2}")), 200);
  EXPECT_GE(server->stats().shed, 9u);
  EXPECT_LE(server->stats().open_connections, 8u);
}

// Verifies a connection whose descriptor would touch the reserve is closed
// at once and counted, and the server serves again once descriptors are
// free.
TEST_F(WebhookServerTest, RefusesConnectionsThatWouldTouchTheDescriptorReserve) {
  const std::unique_ptr<WebhookServer> server = start();
  ASSERT_NE(server, nullptr);
  {
    const ScopedDescriptorLimit lowered(limitPuttingTheNextAcceptInTheReserve());
    std::unique_ptr<TlsClient> refused = client(*server);
    ASSERT_TRUE(refused->connected());
    EXPECT_TRUE(refused->closedByPeer());
  }
  EXPECT_EQ(server->stats().refused_for_descriptors, 1u);
  EXPECT_EQ(server->stats().accepted, 0u);
  EXPECT_EQ(statusOf(postOnce(*server, "{}")), 200);
}

// Verifies a slow handler does not delay another connection's request.
TEST_F(WebhookServerTest, SlowHandlerDoesNotBlockOthers) {
  const std::unique_ptr<WebhookServer> server = start();
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TlsClient> slow = client(*server);
  ASSERT_TRUE(slow->send(post("slow")));
  ASSERT_TRUE(eventually([this] { return slowStarted(); }));

  EXPECT_EQ(bodyOf(postOnce(*server, "{}")), "POST /mutate {}");

  releaseSlow();
  EXPECT_EQ(bodyOf(slow->readResponse()), "POST /mutate slow");
}

// Verifies requests beyond the busy workers and the queue get 503 at once.
TEST_F(WebhookServerTest, BusyWorkersAnswer503) {
  WebhookServerOptions options;
  options.workers = 1;
  options.max_queued_requests = 1;
  const std::unique_ptr<WebhookServer> server = start(options);
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TlsClient> slow = client(*server);
  ASSERT_TRUE(slow->send(post("slow")));
  ASSERT_TRUE(eventually([this] { return slowStarted(); }));
  std::unique_ptr<TlsClient> queued = client(*server);
  ASSERT_TRUE(queued->send(post("{\"queued\":1}")));
  ASSERT_TRUE(eventually([&] { return server->stats().requests == 2; }));

  const std::string busy = postOnce(*server, "{}");
  EXPECT_EQ(statusOf(busy), 503);
  EXPECT_THAT(busy, HasSubstr("Retry-After: 1\r\n"));
  EXPECT_EQ(server->stats().rejected_busy, 1u);

  releaseSlow();
  EXPECT_EQ(statusOf(slow->readResponse()), 200);
  EXPECT_EQ(statusOf(queued->readResponse()), 200);
}

// Verifies a request whose body does not fit in the budget closes the
// connection that reserved longest ago while still receiving its body, and
// is served at once.
TEST_F(WebhookServerTest, BodyBudgetShedsOldestSlowSender) {
  WebhookServerOptions options;
  options.max_body_bytes = 1000;
  options.max_buffered_body_bytes = 2000;
  const std::unique_ptr<WebhookServer> server = start(options);
  ASSERT_NE(server, nullptr);
  const std::string body = absl::StrCat("{\"x\":\"", std::string(992, 'x'), "\"}");
  ASSERT_EQ(body.size(), 1000u);
  std::vector<std::unique_ptr<TlsClient>> slow;
  for (size_t i = 1; i <= 2; ++i) {
    slow.push_back(client(*server));
    // The head and a tenth of the body, the rest held back; one at a time,
    // so that slow[0] reserved first.
    ASSERT_TRUE(slow.back()->send(post(body).substr(0, post(body).size() - 900)));
    ASSERT_TRUE(eventually([&] { return server->stats().buffered_body_bytes == 1000 * i; }));
  }

  EXPECT_EQ(bodyOf(postOnce(*server, "{}")), "POST /mutate {}");
  EXPECT_TRUE(slow[0]->closedByPeer());
  EXPECT_EQ(server->stats().shed_for_body_budget, 1u);
  EXPECT_EQ(server->stats().rejected_memory, 0u);
  EXPECT_TRUE(eventually([&] { return server->stats().buffered_body_bytes == 1000; }));

  // Room enough beside slow[1]: nobody is closed for it.
  EXPECT_EQ(statusOf(postOnce(*server, body)), 200);
  ASSERT_TRUE(slow[1]->send(post(body).substr(post(body).size() - 900)));
  EXPECT_EQ(statusOf(slow[1]->readResponse()), 200);
  EXPECT_EQ(server->stats().shed_for_body_budget, 1u);
  EXPECT_TRUE(eventually([&] { return server->stats().buffered_body_bytes == 0; }));
  EXPECT_EQ(handled_.load(), 3);
}

// Verifies whole bodies being reviewed are never closed for the budget: a
// request they leave no room for gets 503 unread (and nothing is closed in
// vain for it), while one that closing a receiving connection makes room for
// is served.
TEST_F(WebhookServerTest, BodyBudgetRefusesWhatWholeBodiesHold) {
  WebhookServerOptions options;
  options.max_body_bytes = 4;
  options.max_buffered_body_bytes = 6;
  const std::unique_ptr<WebhookServer> server = start(options);
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TlsClient> reviewed = client(*server);
  ASSERT_TRUE(reviewed->send(post("slow")));  // whole; its handler blocks
  ASSERT_TRUE(eventually([this] { return slowStarted(); }));
  std::unique_ptr<TlsClient> receiving = client(*server);
  ASSERT_TRUE(receiving->send(post("{}").substr(0, post("{}").size() - 1)));
  ASSERT_TRUE(eventually([&] { return server->stats().buffered_body_bytes == 6; }));

  // 4 bytes: the 2 the receiving connection holds would not make room.
  std::unique_ptr<TlsClient> refused = client(*server);
  ASSERT_TRUE(refused->send(post("{\"\"}")));
  const std::string response = refused->readResponse();
  EXPECT_EQ(statusOf(response), 503);
  EXPECT_THAT(response, HasSubstr("Retry-After: 1\r\n"));
  EXPECT_THAT(response, HasSubstr("Connection: close\r\n"));
  EXPECT_TRUE(refused->closedByPeer());
  EXPECT_EQ(server->stats().rejected_memory, 1u);
  EXPECT_EQ(server->stats().shed_for_body_budget, 0u);

  // 2 bytes: closing the receiving connection makes room; the review stays.
  EXPECT_EQ(statusOf(postOnce(*server, "{}")), 200);
  EXPECT_TRUE(receiving->closedByPeer());
  EXPECT_EQ(server->stats().shed_for_body_budget, 1u);
  releaseSlow();
  EXPECT_EQ(statusOf(reviewed->readResponse()), 200);
  EXPECT_TRUE(eventually([&] { return server->stats().buffered_body_bytes == 0; }));
  EXPECT_EQ(server->stats().rejected_memory, 1u);
}

// Verifies start() refuses a body limit the budget could never hold.
TEST_F(WebhookServerTest, RefusesBodyLimitOverBudget) {
  WebhookServerOptions options;
  options.max_body_bytes = 2001;
  options.max_buffered_body_bytes = 2000;
  absl::StatusOr<std::unique_ptr<WebhookServer>> server =
      WebhookServer::start(absl::StrCat(kLoopback, ":0"), handler_, *store_, time_source_, options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("max_buffered_body_bytes"));
}

// Verifies large bodies run on at most large_body_workers at once while
// small ones go ahead on the other workers.
TEST_F(WebhookServerTest, LargeBodiesHandledOneAtATime) {
  WebhookServerOptions options;
  options.workers = 3;
  options.large_body_bytes = 3;  // "slow" (4 bytes) is large, "{}" small
  options.large_body_workers = 1;
  const std::unique_ptr<WebhookServer> server = start(options);
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TlsClient> slow = client(*server);
  ASSERT_TRUE(slow->send(post("slow")));
  ASSERT_TRUE(eventually([this] { return slowStarted(); }));
  std::unique_ptr<TlsClient> large = client(*server);
  ASSERT_TRUE(large->send(post("{\"large\":1}")));
  ASSERT_TRUE(eventually([&] { return server->stats().requests == 2; }));

  EXPECT_EQ(statusOf(postOnce(*server, "{}")), 200);
  EXPECT_EQ(handled_.load(), 2);  // slow and small; the large one waits

  releaseSlow();
  EXPECT_EQ(statusOf(slow->readResponse()), 200);
  EXPECT_EQ(bodyOf(large->readResponse()), "POST /mutate {\"large\":1}");
  EXPECT_EQ(handled_.load(), 3);
}

// Verifies TLS below 1.2 is refused and counted.
TEST_F(WebhookServerTest, RefusesTlsBelow12) {
  const std::unique_ptr<WebhookServer> server = start();
  ASSERT_NE(server, nullptr);
  TlsClient old(server->portForTest(), {ca_file_}, TLS1_1_VERSION);
  EXPECT_FALSE(old.handshake());
  EXPECT_TRUE(eventually([&] { return server->stats().tls_handshake_failed == 1; }));
  EXPECT_EQ(statusOf(postOnce(*server, "{}")), 200);
}

// Verifies a client that does not trust the certificate fails its
// handshake and is counted.
TEST_F(WebhookServerTest, CountsFailedHandshakes) {
  const std::unique_ptr<WebhookServer> server = start();
  ASSERT_NE(server, nullptr);
  TempDir other_dir("other-pki");
  absl::StatusOr<emulator::Pki> other =
      emulator::loadOrCreatePki(other_dir.path(), {"localhost"}, {});
  ASSERT_THAT(other, IsOk());
  TlsClient untrusting(server->portForTest(), {other->ca_cert_path});
  EXPECT_FALSE(untrusting.handshake());
  EXPECT_TRUE(eventually([&] { return server->stats().tls_handshake_failed == 1; }));
}

// Verifies that after the certificate files change new handshakes get the
// new certificate, a connection opened before keeps working, and no request
// of clients running throughout fails.
TEST_F(WebhookServerTest, RotatesCertificateWithoutFailedRequests) {
  TempDir next_dir("next-pki");
  absl::StatusOr<emulator::Pki> next =
      emulator::loadOrCreatePki(next_dir.path(), {"localhost"}, {"127.0.0.1"});
  ASSERT_THAT(next, IsOk());
  const std::unique_ptr<WebhookServer> server = start();
  ASSERT_NE(server, nullptr);
  const std::vector<std::string> both_cas = {ca_file_, next->ca_cert_path};

  TlsClient before(server->portForTest(), both_cas);
  ASSERT_TRUE(before.send(post("{}")));
  ASSERT_EQ(statusOf(before.readResponse()), 200);
  X509* old_leaf = X509_dup(before.peerCertificate());

  std::atomic<bool> stop{false};
  std::atomic<int> succeeded{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back([&, i] {
      while (!stop) {
        TlsClient connection(server->portForTest(), both_cas);
        for (int j = 0; j < 3 && !stop; ++j) {
          const bool ok = connection.send(post(absl::StrCat("{\"client\":", i, "}"))) &&
                          statusOf(connection.readResponse()) == 200;
          ++(ok ? succeeded : failed);
        }
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return succeeded > 20; }));
  volume_.publish(readFile(next->server_cert_path), readFile(next->server_key_path));
  EXPECT_EQ(store_->checkForChange().outcome, CertificateReload::kLoaded);
  const int at_swap = succeeded;
  ASSERT_TRUE(eventually([&] { return succeeded > at_swap + 20; }));
  stop = true;
  for (std::thread& thread : clients) thread.join();
  EXPECT_EQ(failed.load(), 0);

  TlsClient after(server->portForTest(), both_cas);
  ASSERT_TRUE(after.send(post("{}")));
  EXPECT_EQ(statusOf(after.readResponse()), 200);
  ASSERT_NE(after.peerCertificate(), nullptr);
  EXPECT_EQ(X509_cmp(after.peerCertificate(), store_->current()->leaf.get()), 0);
  EXPECT_NE(X509_cmp(after.peerCertificate(), old_leaf), 0);

  ASSERT_TRUE(before.send(post("{}")));
  EXPECT_EQ(statusOf(before.readResponse()), 200);
  EXPECT_EQ(X509_cmp(before.peerCertificate(), old_leaf), 0);
  X509_free(old_leaf);
}

// Verifies stop() answers a request already being handled (with
// "Connection: close"), closes idle connections and refuses new ones.
TEST_F(WebhookServerTest, StopFinishesRequestsInProgress) {
  const std::unique_ptr<WebhookServer> server = start();
  ASSERT_NE(server, nullptr);
  std::unique_ptr<TlsClient> idle = client(*server);
  ASSERT_TRUE(idle->send(post("{}")));
  ASSERT_EQ(statusOf(idle->readResponse()), 200);
  std::unique_ptr<TlsClient> slow = client(*server);
  ASSERT_TRUE(slow->send(post("slow")));
  ASSERT_TRUE(eventually([this] { return slowStarted(); }));

  std::thread stopper([&] { server->stop(); });
  EXPECT_TRUE(idle->closedByPeer());
  releaseSlow();
  const std::string response = slow->readResponse();
  EXPECT_EQ(statusOf(response), 200);
  EXPECT_THAT(response, HasSubstr("Connection: close\r\n"));
  stopper.join();
  EXPECT_FALSE(server->serving());
  TlsClient late(server->portForTest(), {ca_file_});
  EXPECT_FALSE(late.handshake());
}

}  // namespace
}  // namespace credsync::injector
