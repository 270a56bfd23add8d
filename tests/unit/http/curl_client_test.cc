#include "sidecar/http/curl_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/mutex.h"
#include "tests/common/status_matchers.h"

namespace credsync::http {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

// ---------------------------------------------------------------------------
// A throwaway PKI: a CA and leaf certificates signed by it, as PEM files.

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
using CertPtr = std::unique_ptr<X509, X509Deleter>;

bool addExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (extension == nullptr) {
    return false;
  }
  const bool added = X509_add_ext(cert, extension, -1) == 1;
  X509_EXTENSION_free(extension);
  return added;
}

// A certificate for `key`, signed by `issuer_key` (self-signed when issuer is
// null). Leaves carry `subject_alt_name`; CAs carry CA:TRUE.
CertPtr makeCertificate(EVP_PKEY* key, const std::string& common_name, X509* issuer,
                        EVP_PKEY* issuer_key, const char* subject_alt_name) {
  static std::atomic<long> serial{1};
  CertPtr cert(X509_new());
  if (cert == nullptr) {
    return nullptr;
  }
  X509* raw = cert.get();
  const bool is_ca = issuer == nullptr;
  X509_NAME* name = X509_get_subject_name(raw);
  bool ok = X509_set_version(raw, X509_VERSION_3) == 1 &&
            ASN1_INTEGER_set(X509_get_serialNumber(raw), serial++) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(raw), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(raw), 24L * 3600) != nullptr &&
            X509_set_pubkey(raw, key) == 1 &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                       -1, -1, 0) == 1 &&
            X509_set_issuer_name(raw, is_ca ? name : X509_get_subject_name(issuer)) == 1;
  X509* signer = is_ca ? raw : issuer;
  if (is_ca) {
    ok = ok && addExtension(raw, signer, NID_basic_constraints, "critical,CA:TRUE") &&
         addExtension(raw, signer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
         addExtension(raw, signer, NID_subject_key_identifier, "hash");
  } else {
    ok = ok && addExtension(raw, signer, NID_basic_constraints, "critical,CA:FALSE") &&
         addExtension(raw, signer, NID_key_usage, "critical,digitalSignature") &&
         addExtension(raw, signer, NID_ext_key_usage, "serverAuth") &&
         addExtension(raw, signer, NID_subject_alt_name, subject_alt_name) &&
         addExtension(raw, signer, NID_subject_key_identifier, "hash") &&
         addExtension(raw, signer, NID_authority_key_identifier, "keyid:always");
  }
  ok = ok && X509_sign(raw, issuer_key, EVP_sha256()) > 0;
  return ok ? std::move(cert) : nullptr;
}

bool writeCertificate(X509* cert, const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "w");
  if (bio == nullptr) {
    return false;
  }
  const bool ok = PEM_write_bio_X509(bio, cert) == 1;
  return BIO_free(bio) == 1 && ok;
}

bool writeKey(EVP_PKEY* key, const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "w");
  if (bio == nullptr) {
    return false;
  }
  const bool ok = PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  return BIO_free(bio) == 1 && ok;
}

// Paths of the PEM files; all keys are EC P-256.
struct TestPki {
  std::string ca;           // The trusted test CA.
  std::string server_cert;  // 127.0.0.1 and localhost, signed by `ca`.
  std::string server_key;
  std::string other_cert;  // other.invalid only, signed by `ca`.
  std::string other_key;
  std::string unrelated_ca;  // A CA that signed nothing we serve.
};

std::optional<TestPki> generatePki(const std::string& dir) {
  KeyPtr ca_key(EVP_EC_gen("P-256"));
  KeyPtr server_key(EVP_EC_gen("P-256"));
  KeyPtr other_key(EVP_EC_gen("P-256"));
  KeyPtr unrelated_key(EVP_EC_gen("P-256"));
  if (!ca_key || !server_key || !other_key || !unrelated_key) {
    return std::nullopt;
  }
  CertPtr ca = makeCertificate(ca_key.get(), "credsync test CA", nullptr, ca_key.get(), nullptr);
  CertPtr unrelated = makeCertificate(unrelated_key.get(), "credsync unrelated CA", nullptr,
                                      unrelated_key.get(), nullptr);
  if (!ca || !unrelated) {
    return std::nullopt;
  }
  CertPtr server = makeCertificate(server_key.get(), "127.0.0.1", ca.get(), ca_key.get(),
                                   "IP:127.0.0.1,DNS:localhost");
  CertPtr other = makeCertificate(other_key.get(), "other.invalid", ca.get(), ca_key.get(),
                                  "DNS:other.invalid");
  if (!server || !other) {
    return std::nullopt;
  }

  TestPki pki{dir + "/ca.pem",    dir + "/server.pem",    dir + "/server-key.pem",
              dir + "/other.pem", dir + "/other-key.pem", dir + "/unrelated-ca.pem"};
  if (!writeCertificate(ca.get(), pki.ca) || !writeCertificate(server.get(), pki.server_cert) ||
      !writeKey(server_key.get(), pki.server_key) ||
      !writeCertificate(other.get(), pki.other_cert) || !writeKey(other_key.get(), pki.other_key) ||
      !writeCertificate(unrelated.get(), pki.unrelated_ca)) {
    return std::nullopt;
  }
  return pki;
}

// ---------------------------------------------------------------------------
// Loopback servers.

// An httplib server on 127.0.0.1 and a kernel-chosen port, serving on its own
// thread until destroyed.
class LoopbackServer {
 public:
  // A plain-HTTP server.
  LoopbackServer() : server_(std::make_unique<httplib::Server>()) { configure(); }
  // An HTTPS server presenting `cert_path`.
  LoopbackServer(const std::string& cert_path, const std::string& key_path)
      : server_(std::make_unique<httplib::SSLServer>(cert_path.c_str(), key_path.c_str())) {
    configure();
  }
  ~LoopbackServer() { stop(); }

  httplib::Server& operator*() { return *server_; }
  httplib::Server* operator->() { return server_.get(); }

  // Binds and starts serving; call after registering handlers. Connections
  // made right after this returns wait in the kernel's accept queue.
  bool start() {
    if (!server_->is_valid()) {
      return false;
    }
    port_ = server_->bind_to_any_port("127.0.0.1");
    if (port_ <= 0) {
      return false;
    }
    thread_ = std::thread([this] {
      server_->listen_after_bind();
      exited_ = true;
    });
    return true;
  }

  void stop() {
    if (!thread_.joinable()) {
      return;
    }
    // httplib's stop() is a no-op until the listen loop has begun, and
    // offers nothing to wait on, so wait for it to report running.
    while (!server_->is_running() && !exited_) {
      std::this_thread::yield();
    }
    server_->stop();
    thread_.join();
  }

  int port() const { return port_; }
  std::string url(absl::string_view scheme, absl::string_view path_and_query) const {
    return absl::StrCat(scheme, "://127.0.0.1:", port_, path_and_query);
  }

 private:
  void configure() {
    // Room for the concurrency test's 8 keep-alive connections plus spares;
    // httplib's default pool of 8 would park a ninth connection.
    server_->new_task_queue = [] { return new httplib::ThreadPool(16); };
  }

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> exited_{false};
  int port_ = 0;
};

// Saves the proxy variables, clears them for the test and restores them
// afterwards, so neither the machine's settings nor one test's leak in. The
// environment is only touched from the test's main thread while no client is
// sending, hence the NOLINTs for getenv/setenv.
class ScopedProxyEnvironment {
 public:
  ScopedProxyEnvironment() {
    for (const char* name : kNames) {
      const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
      saved_.emplace_back(name, value ? std::optional<std::string>(value) : std::nullopt);
      unsetenv(name);  // NOLINT(concurrency-mt-unsafe)
    }
  }
  ~ScopedProxyEnvironment() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
      } else {
        unsetenv(name.c_str());  // NOLINT(concurrency-mt-unsafe)
      }
    }
  }
  void set(const char* name, const std::string& value) {
    setenv(name, value.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
  }

 private:
  static constexpr const char* kNames[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                           "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// A TCP socket on 127.0.0.1 that is bound (so no one else gets its port) but
// not listening: connecting to it is refused.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
  }
  ~RefusingPort() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  int port() const { return port_; }

 protected:
  int fd_ = -1;
  int port_ = 0;
};

// A listener whose accept queue is full and never drained: Linux drops new
// SYNs, so a connect attempt hangs until the client's connect timeout.
class BlackholePort : public RefusingPort {
 public:
  BlackholePort() {
    if (port_ == 0 || listen(fd_, 0) != 0) {
      port_ = 0;
      return;
    }
    // One completed handshake fills a backlog of 0.
    filler_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port_));
    if (filler_ < 0 ||
        connect(filler_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      port_ = 0;
    }
  }
  ~BlackholePort() {
    if (filler_ >= 0) {
      close(filler_);
    }
  }

 private:
  int filler_ = -1;
};

// ---------------------------------------------------------------------------

class CurlClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "credsync_curl_client_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    std::optional<TestPki> pki = generatePki(dir_);
    ASSERT_TRUE(pki.has_value()) << "could not generate the test PKI";
    pki_ = *pki;
  }
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) {
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  CurlClientOptions trustingOptions() const {
    CurlClientOptions options;
    options.ca_file = pki_.ca;
    return options;
  }

  // An HTTPS server with the 127.0.0.1 certificate answering GET /hello.
  std::unique_ptr<LoopbackServer> startHelloServer(bool other_name = false) {
    auto server = std::make_unique<LoopbackServer>(other_name ? pki_.other_cert : pki_.server_cert,
                                                   other_name ? pki_.other_key : pki_.server_key);
    (*server)->Get("/hello", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("hello", "text/plain");
    });
    EXPECT_TRUE(server->start());
    return server;
  }

  static Request get(std::string url) {
    Request request;
    request.url = std::move(url);
    return request;
  }

  ScopedProxyEnvironment environment_;
  std::string dir_;
  TestPki pki_;
};

// Verifies an HTTPS request succeeds when the server's CA is the configured
// CA file.
TEST_F(CurlClientTest, HttpsSucceedsWithCaFile) {
  auto server = startHelloServer();
  CurlClient client(trustingOptions());

  absl::StatusOr<Response> response = client.send(get(server->url("https", "/hello")));

  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello");
  EXPECT_THAT(response->header("content-type"), Optional(std::string("text/plain")));
}

// Verifies the system trust store does not trust the test CA: the handshake
// fails verification and that is UNAVAILABLE, naming the host only.
TEST_F(CurlClientTest, HttpsFailsWithoutCaFile) {
  auto server = startHelloServer();
  CurlClient client(CurlClientOptions{});

  absl::StatusOr<Response> response =
      client.send(get(server->url("https", "/hello?Signature=sekret")));

  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable,
                                 AllOf(HasSubstr("127.0.0.1"), Not(HasSubstr("sekret")),
                                       Not(HasSubstr("/hello")))));
}

// Verifies a CA file holding a different CA does not trust the server.
TEST_F(CurlClientTest, HttpsFailsWithUnrelatedCa) {
  auto server = startHelloServer();
  CurlClientOptions options;
  options.ca_file = pki_.unrelated_ca;
  CurlClient client(options);

  EXPECT_THAT(client.send(get(server->url("https", "/hello"))),
              StatusIs(absl::StatusCode::kUnavailable));
}

// Verifies a certificate from the trusted CA but for another name is rejected
// (host name verification is on, not just chain verification).
TEST_F(CurlClientTest, HttpsFailsForCertificateOfAnotherName) {
  auto server = startHelloServer(/*other_name=*/true);
  CurlClient client(trustingOptions());

  EXPECT_THAT(client.send(get(server->url("https", "/hello"))),
              StatusIs(absl::StatusCode::kUnavailable));
}

// Verifies verify_tls=false accepts a server no configured CA vouches for.
TEST_F(CurlClientTest, VerifyTlsOffSucceedsWithoutCa) {
  auto server = startHelloServer(/*other_name=*/true);
  CurlClientOptions options;
  options.verify_tls = false;
  CurlClient client(options);

  absl::StatusOr<Response> response = client.send(get(server->url("https", "/hello")));

  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->body, "hello");
}

// Verifies an unreadable CA file is a local misconfiguration
// (FAILED_PRECONDITION), not a retryable network failure.
TEST_F(CurlClientTest, MissingCaFileIsFailedPrecondition) {
  auto server = startHelloServer();
  CurlClientOptions options;
  options.ca_file = dir_ + "/does-not-exist.pem";
  CurlClient client(options);

  EXPECT_THAT(client.send(get(server->url("https", "/hello"))),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Verifies a CA file replaced on disk (a Secret or ConfigMap update) is what
// the next new connection trusts, both ways: no store read earlier is kept.
TEST_F(CurlClientTest, ReplacedCaFileIsReadForTheNextConnection) {
  auto server = startHelloServer();
  const std::string trust = dir_ + "/trust.pem";
  std::filesystem::copy_file(pki_.unrelated_ca, trust);
  CurlClientOptions options;
  options.ca_file = trust;
  CurlClient client(options);
  EXPECT_THAT(client.send(get(server->url("https", "/hello"))),
              StatusIs(absl::StatusCode::kUnavailable));

  std::filesystem::copy_file(pki_.ca, trust + ".new");
  std::filesystem::rename(trust + ".new", trust);
  absl::StatusOr<Response> response = client.send(get(server->url("https", "/hello")));
  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->body, "hello");

  // And back: a server on a new port needs a new connection.
  auto second = startHelloServer();
  std::filesystem::copy_file(pki_.unrelated_ca, trust + ".new");
  std::filesystem::rename(trust + ".new", trust);
  EXPECT_THAT(client.send(get(second->url("https", "/hello"))),
              StatusIs(absl::StatusCode::kUnavailable));
}

// Verifies GET and POST carry method, path, query, headers and body to the
// server, and its status, headers and body come back.
TEST_F(CurlClientTest, GetAndPostRoundTrip) {
  LoopbackServer server(pki_.server_cert, pki_.server_key);
  auto echo = [](const httplib::Request& request, httplib::Response& response) {
    response.set_header("X-Echo-Method", request.method);
    response.set_header("X-Echo-Header", request.get_header_value("X-Credsync-Test"));
    response.set_header("X-Echo-Query", request.get_param_value("b"));
    response.set_header("X-Echo-Content-Type", request.get_header_value("Content-Type"));
    response.set_header("X-Echo-User-Agent", request.get_header_value("User-Agent"));
    response.headers.emplace("X-Repeated", "one");
    response.headers.emplace("X-Repeated", "two");
    response.status = 201;
    response.set_content(absl::StrCat(request.path, "|", request.body), "text/plain");
  };
  server->Get("/echo", echo);
  server->Post("/echo", echo);
  server->Put("/echo", echo);
  server->Delete("/echo", echo);
  ASSERT_TRUE(server.start());
  CurlClientOptions options = trustingOptions();
  options.user_agent = "credsync-test/1";
  CurlClient client(options);

  Request get_request = get(server.url("https", "/echo?a=1&b=two%20words"));
  get_request.headers = {{"X-Credsync-Test", "get-value"}};
  absl::StatusOr<Response> got = client.send(get_request);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->status, 201);
  EXPECT_EQ(got->body, "/echo|");
  EXPECT_EQ(got->header("x-echo-method"), "GET");
  EXPECT_EQ(got->header("X-ECHO-HEADER"), "get-value");
  EXPECT_EQ(got->header("x-echo-query"), "two words");
  EXPECT_EQ(got->header("x-echo-user-agent"), "credsync-test/1");
  std::vector<std::string> repeated;
  for (const auto& [name, value] : got->headers) {
    if (name == "X-Repeated") {
      repeated.push_back(value);
    }
  }
  EXPECT_THAT(repeated, ::testing::ElementsAre("one", "two"));

  Request post = get(server.url("https", "/echo"));
  post.method = "POST";
  post.headers = {{"X-Credsync-Test", "post-value"},
                  {"Content-Type", "application/x-www-form-urlencoded"}};
  post.body = "Action=AssumeRoleWithOIDC&RoleArn=acs%3Aram";
  absl::StatusOr<Response> posted = client.send(post);
  ASSERT_THAT(posted, IsOk());
  EXPECT_EQ(posted->header("x-echo-method"), "POST");
  EXPECT_EQ(posted->header("x-echo-header"), "post-value");
  EXPECT_EQ(posted->header("x-echo-content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(posted->body, "/echo|Action=AssumeRoleWithOIDC&RoleArn=acs%3Aram");

  Request put = get(server.url("https", "/echo"));
  put.method = "PUT";
  put.body = "{}";
  absl::StatusOr<Response> putted = client.send(put);
  ASSERT_THAT(putted, IsOk());
  EXPECT_EQ(putted->header("x-echo-method"), "PUT");
  EXPECT_EQ(putted->body, "/echo|{}");

  Request remove = get(server.url("https", "/echo"));
  remove.method = "DELETE";
  absl::StatusOr<Response> removed = client.send(remove);
  ASSERT_THAT(removed, IsOk());
  EXPECT_EQ(removed->header("x-echo-method"), "DELETE");
}

// Verifies 4xx and 5xx answers are responses for the caller to interpret, not
// transport errors, and keep their bodies.
TEST_F(CurlClientTest, ErrorStatusesAreResponses) {
  LoopbackServer server;
  server->Get("/missing", [](const httplib::Request&, httplib::Response& response) {
    response.status = 404;
    response.set_content(R"({"Code":"EntityNotExist.Role"})", "application/json");
  });
  server->Get("/broken", [](const httplib::Request&, httplib::Response& response) {
    response.status = 503;
    response.set_content(R"({"Code":"ServiceUnavailable"})", "application/json");
  });
  ASSERT_TRUE(server.start());
  CurlClient client(CurlClientOptions{});

  absl::StatusOr<Response> missing = client.send(get(server.url("http", "/missing")));
  ASSERT_THAT(missing, IsOk());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, R"({"Code":"EntityNotExist.Role"})");
  absl::StatusOr<Response> broken = client.send(get(server.url("http", "/broken")));
  ASSERT_THAT(broken, IsOk());
  EXPECT_EQ(broken->status, 503);
  EXPECT_EQ(broken->body, R"({"Code":"ServiceUnavailable"})");
}

// Verifies a redirect comes back as the 3xx response and is not followed.
TEST_F(CurlClientTest, RedirectsAreNotFollowed) {
  std::atomic<int> target_hits{0};
  LoopbackServer server;
  server->Get("/from", [](const httplib::Request&, httplib::Response& response) {
    response.set_redirect("/to", 302);
  });
  server->Get("/to", [&target_hits](const httplib::Request&, httplib::Response& response) {
    ++target_hits;
    response.set_content("followed", "text/plain");
  });
  ASSERT_TRUE(server.start());
  CurlClient client(CurlClientOptions{});

  absl::StatusOr<Response> response = client.send(get(server.url("http", "/from")));

  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->status, 302);
  EXPECT_THAT(response->header("location"), Optional(std::string("/to")));
  EXPECT_EQ(target_hits.load(), 0);
}

// Verifies a refused connection is UNAVAILABLE and the message names the host
// but not the query string, headers or body of the request.
TEST_F(CurlClientTest, ConnectionRefusedIsUnavailable) {
  RefusingPort port;
  ASSERT_NE(port.port(), 0);
  CurlClient client(CurlClientOptions{});
  Request request;
  request.method = "POST";
  request.url = absl::StrCat("http://127.0.0.1:", port.port(), "/path?SecurityToken=tok3n#frag");
  request.headers = {{"Authorization", "Bearer h3ader"}};
  request.body = "b0dy";

  absl::StatusOr<Response> response = client.send(request);

  EXPECT_THAT(response, StatusIs(absl::StatusCode::kUnavailable,
                                 AllOf(HasSubstr(absl::StrCat("127.0.0.1:", port.port())),
                                       Not(HasSubstr("tok3n")), Not(HasSubstr("SecurityToken")),
                                       Not(HasSubstr("h3ader")), Not(HasSubstr("b0dy")))));
}

// Verifies the connect timeout applies on its own: a SYN nobody answers fails
// with DEADLINE_EXCEEDED long before the total timeout.
TEST_F(CurlClientTest, ConnectTimeoutIsDeadlineExceeded) {
  BlackholePort port;
  ASSERT_NE(port.port(), 0);
  CurlClientOptions options;
  options.connect_timeout = absl::Milliseconds(300);
  options.total_timeout = absl::Seconds(120);
  CurlClient client(options);

  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Response> response =
      client.send(get(absl::StrCat("http://127.0.0.1:", port.port(), "/?token=tok3n")));
  const auto elapsed = std::chrono::steady_clock::now() - start;

  EXPECT_THAT(response, StatusIs(absl::StatusCode::kDeadlineExceeded, Not(HasSubstr("tok3n"))));
  // A hundred times the connect timeout: only fails if it was not applied.
  EXPECT_LT(elapsed, std::chrono::seconds(30));
}

// Verifies the total timeout: a handler that stalls 3 s against a 300 ms limit
// gives DEADLINE_EXCEEDED, without the query in the message.
TEST_F(CurlClientTest, TotalTimeoutIsDeadlineExceeded) {
  Notification release;
  LoopbackServer server(pki_.server_cert, pki_.server_key);
  server->Get("/slow", [&release](const httplib::Request&, httplib::Response& response) {
    release.WaitForNotificationWithTimeout(absl::Seconds(3));
    response.set_content("late", "text/plain");
  });
  ASSERT_TRUE(server.start());
  CurlClientOptions options = trustingOptions();
  options.total_timeout = absl::Milliseconds(300);
  CurlClient client(options);

  absl::StatusOr<Response> response = client.send(get(server.url("https", "/slow?token=tok3n")));

  EXPECT_THAT(response, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                 AllOf(HasSubstr("127.0.0.1"), Not(HasSubstr("tok3n")))));
  release.Notify();  // Lets the server shut down without waiting out the stall.
}

// Verifies the response cap: a body over it fails with RESOURCE_EXHAUSTED,
// whether announced by Content-Length or streamed chunked, and a body under
// it is delivered.
TEST_F(CurlClientTest, ResponseOverCapIsResourceExhausted) {
  const std::string big(size_t{64} * 1024, 'x');
  LoopbackServer server;
  server->Get("/sized", [&big](const httplib::Request&, httplib::Response& response) {
    response.set_content(big, "text/plain");
  });
  server->Get("/chunked", [&big](const httplib::Request&, httplib::Response& response) {
    response.set_chunked_content_provider(
        "text/plain", [&big](size_t offset, httplib::DataSink& sink) {
          if (offset >= big.size()) {
            sink.done();
            return true;
          }
          return sink.write(big.data() + offset, std::min<size_t>(4096, big.size() - offset));
        });
  });
  server->Get("/small", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(std::string(1000, 'y'), "text/plain");
  });
  ASSERT_TRUE(server.start());
  CurlClientOptions options;
  options.max_response_bytes = size_t{8} * 1024;
  CurlClient client(options);

  EXPECT_THAT(client.send(get(server.url("http", "/sized"))),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("127.0.0.1")));
  EXPECT_THAT(client.send(get(server.url("http", "/chunked"))),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("127.0.0.1")));
  absl::StatusOr<Response> small = client.send(get(server.url("http", "/small")));
  ASSERT_THAT(small, IsOk());
  EXPECT_EQ(small->body.size(), 1000u);
}

// Verifies keep-alive: three sequential HTTPS requests open exactly one
// connection, as counted both by the client and by the server.
TEST_F(CurlClientTest, SequentialRequestsReuseOneConnection) {
  Mutex mutex;
  std::set<int> client_ports;
  LoopbackServer server(pki_.server_cert, pki_.server_key);
  server->Get("/hello", [&](const httplib::Request& request, httplib::Response& response) {
    MutexLock lock(&mutex);
    client_ports.insert(request.remote_port);
    response.set_content("hello", "text/plain");
  });
  ASSERT_TRUE(server.start());
  CurlClient client(trustingOptions());

  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Response> response = client.send(get(server.url("https", "/hello")));
    ASSERT_THAT(response, IsOk());
    EXPECT_EQ(response->status, 200);
  }

  EXPECT_EQ(client.connectionsOpened(), 1u);
  MutexLock lock(&mutex);
  EXPECT_EQ(client_ports.size(), 1u);
}

// Verifies one client serves 8 threads at once: every request succeeds and
// gets its own answer.
TEST_F(CurlClientTest, ConcurrentRequestsAllSucceed) {
  LoopbackServer server(pki_.server_cert, pki_.server_key);
  server->Get(
      R"(/thread/(\d+)/(\d+))", [](const httplib::Request& request, httplib::Response& response) {
        response.set_content(absl::StrCat(request.matches[1].str(), ":", request.matches[2].str()),
                             "text/plain");
      });
  ASSERT_TRUE(server.start());
  CurlClient client(trustingOptions());
  constexpr int kThreads = 8;
  constexpr int kRequestsPerThread = 5;

  std::atomic<int> successes{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequestsPerThread; ++i) {
        absl::StatusOr<Response> response =
            client.send(get(server.url("https", absl::StrCat("/thread/", t, "/", i))));
        EXPECT_THAT(response, IsOk());
        if (response.ok() && response->status == 200 && response->body == absl::StrCat(t, ":", i)) {
          ++successes;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }

  EXPECT_EQ(successes.load(), kThreads * kRequestsPerThread);
}

// A plain HTTP server standing in for a forward proxy: it records the
// absolute-form request targets and the Host headers it receives.
class FakeProxy {
 public:
  FakeProxy() {
    server_->Get(".*", [this](const httplib::Request& request, httplib::Response& response) {
      MutexLock lock(&mutex_);
      targets_.push_back(request.target);
      hosts_.push_back(request.get_header_value("Host"));
      response.set_header("X-Via-Test-Proxy", "1");
      response.set_content("from proxy", "text/plain");
    });
  }
  bool start() { return server_.start(); }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", server_.port()); }
  std::vector<std::string> targets() {
    MutexLock lock(&mutex_);
    return targets_;
  }
  std::vector<std::string> hosts() {
    MutexLock lock(&mutex_);
    return hosts_;
  }

 private:
  Mutex mutex_;
  std::vector<std::string> targets_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> hosts_ ABSL_GUARDED_BY(mutex_);
  LoopbackServer server_;
};

// Verifies http_proxy from the environment is honoured: the request for a
// host that cannot resolve (.invalid) goes, in absolute form, to the proxy on
// 127.0.0.1, and the proxy's answer comes back. No name is ever resolved.
TEST_F(CurlClientTest, HttpProxyFromEnvironmentIsUsed) {
  FakeProxy proxy;
  ASSERT_TRUE(proxy.start());
  environment_.set("http_proxy", proxy.url());
  CurlClient client(CurlClientOptions{});

  absl::StatusOr<Response> response =
      client.send(get("http://credsync-proxy-test.invalid/path?x=1"));

  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "from proxy");
  EXPECT_EQ(response->header("x-via-test-proxy"), "1");
  EXPECT_THAT(proxy.targets(),
              ::testing::ElementsAre("http://credsync-proxy-test.invalid/path?x=1"));
  EXPECT_THAT(proxy.hosts(), ::testing::ElementsAre("credsync-proxy-test.invalid"));
}

// Verifies no_proxy from the environment is honoured: a listed host is
// reached directly while others still go through the proxy.
TEST_F(CurlClientTest, NoProxyIsRespected) {
  FakeProxy proxy;
  ASSERT_TRUE(proxy.start());
  LoopbackServer origin;
  origin->Get("/direct", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("from origin", "text/plain");
  });
  ASSERT_TRUE(origin.start());
  environment_.set("http_proxy", proxy.url());
  environment_.set("no_proxy", "127.0.0.1,localhost");
  CurlClient client(CurlClientOptions{});

  absl::StatusOr<Response> direct = client.send(get(origin.url("http", "/direct")));
  ASSERT_THAT(direct, IsOk());
  EXPECT_EQ(direct->body, "from origin");
  EXPECT_TRUE(proxy.targets().empty());

  absl::StatusOr<Response> proxied = client.send(get("http://credsync-proxy-test.invalid/other"));
  ASSERT_THAT(proxied, IsOk());
  EXPECT_EQ(proxied->body, "from proxy");
  EXPECT_THAT(proxy.targets(), ::testing::ElementsAre("http://credsync-proxy-test.invalid/other"));
}

// Verifies malformed requests are rejected as INVALID_ARGUMENT before any
// connection: bad URLs, schemes other than http/https, bad methods, and
// header names or values that could split the request.
TEST_F(CurlClientTest, MalformedRequestsAreInvalidArgument) {
  CurlClient client(CurlClientOptions{});
  EXPECT_THAT(client.send(get("not a url")), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client.send(get("127.0.0.1/path")), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client.send(get("ftp://127.0.0.1/file")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client.send(get("file:///etc/passwd")), StatusIs(absl::StatusCode::kInvalidArgument));

  Request bad_method = get("http://127.0.0.1:1/");
  bad_method.method = "GET /evil HTTP/1.1\r\n";
  EXPECT_THAT(client.send(bad_method), StatusIs(absl::StatusCode::kInvalidArgument));

  Request bad_value = get("http://127.0.0.1:1/");
  bad_value.headers = {{"X-Token", "abc\r\nX-Injected: 1"}};
  EXPECT_THAT(client.send(bad_value),
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("abc"))));

  Request bad_name = get("http://127.0.0.1:1/");
  bad_name.headers = {{"X Token", "abc"}};
  EXPECT_THAT(client.send(bad_name), StatusIs(absl::StatusCode::kInvalidArgument));

  EXPECT_EQ(client.connectionsOpened(), 0u);
}

// Verifies makeCurlClient returns a working client behind the interface.
TEST_F(CurlClientTest, FactoryReturnsWorkingClient) {
  auto server = startHelloServer();
  ClientPtr client = makeCurlClient(trustingOptions());

  absl::StatusOr<Response> response = client->send(get(server->url("https", "/hello")));

  ASSERT_THAT(response, IsOk());
  EXPECT_EQ(response->body, "hello");
}

}  // namespace
}  // namespace credsync::http
