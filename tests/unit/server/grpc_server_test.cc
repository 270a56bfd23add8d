#include "sidecar/server/grpc_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "credsync/v1/credsync.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "sidecar/client/control_client.h"
#include "tests/common/eventually.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

namespace credsync::server {
namespace {

using ::credsync::testing::eventually;
using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kServiceName[] = "credsync.v1.CredsyncService";
constexpr absl::Duration kHealthInterval = absl::Milliseconds(50);
// Health must follow its sources within this many intervals.
constexpr int kHealthIntervalsAllowed = 40;

struct stat lstatOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(::lstat(path.c_str(), &info), 0) << path << ": " << std::strerror(errno);
  return info;
}

bool exists(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0;
}

// A Unix socket bound at `path`; listening when `listen` is set. The file
// stays after close(), as one left by a crashed process does.
class UnixListener {
 public:
  UnixListener(const std::string& path, bool listen) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    EXPECT_LT(path.size(), sizeof(address.sun_path));
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0)
        << std::strerror(errno);
    if (listen) {
      EXPECT_EQ(::listen(fd_, 4), 0);
    }
  }
  ~UnixListener() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Whether something accepts connections on the Unix socket at `path`.
bool accepting(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const bool connected =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return connected;
}

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.socket_path = dir_.file("credsync.sock");
    options_.health_interval = kHealthInterval;
    ASSERT_LT(options_.socket_path.size(), sizeof(sockaddr_un::sun_path));
  }

  absl::StatusOr<std::unique_ptr<GrpcServer>> start() {
    return GrpcServer::start(
        options_, &service_,
        HealthSources{[this] { return live_.load(); }, [this] { return ready_.load(); }},
        real_time_);
  }
  std::unique_ptr<GrpcServer> startOk() {
    absl::StatusOr<std::unique_ptr<GrpcServer>> server = start();
    EXPECT_THAT(server, IsOk());
    return server.ok() ? *std::move(server) : nullptr;
  }

  // grpc.health.v1 Check of `service` over `target` ("unix:..." or host:port).
  grpc::Status check(const std::string& target, const std::string& service,
                     HealthCheckResponse::ServingStatus* result) {
    auto stub = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(real_time_.systemTime() + absl::Seconds(10)));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    const grpc::Status status = stub->Check(&context, request, &response);
    *result = response.status();
    return status;
  }
  HealthCheckResponse::ServingStatus statusOf(const std::string& service) {
    HealthCheckResponse::ServingStatus result = HealthCheckResponse::UNKNOWN;
    const grpc::Status status = check("unix:" + options_.socket_path, service, &result);
    EXPECT_TRUE(status.ok()) << service << ": " << status.error_message();
    return result;
  }
  bool becomes(const std::string& service, HealthCheckResponse::ServingStatus wanted) {
    return eventually([&] { return statusOf(service) == wanted; },
                      kHealthInterval * kHealthIntervalsAllowed);
  }

  TempDir dir_{"grpc_server_test"};
  RealTimeSource real_time_;
  GrpcServerOptions options_;
  // Every method answers UNIMPLEMENTED; these tests are about the server.
  credsync::v1::CredsyncService::Service service_;
  std::atomic<bool> live_{true};
  std::atomic<bool> ready_{true};
};

// Verifies the socket is created with the configured mode and group, and the
// process umask is left as it was.
TEST_F(GrpcServerTest, SocketHasConfiguredModeAndGroup) {
  const mode_t umask_before = ::umask(022);
  for (const uint32_t mode : {0660u, 0600u, 0666u}) {
    options_.socket_mode = mode;
    options_.socket_group = ::getgid();
    std::unique_ptr<GrpcServer> server = startOk();
    ASSERT_NE(server, nullptr);
    const struct stat info = lstatOf(options_.socket_path);
    EXPECT_TRUE(S_ISSOCK(info.st_mode));
    EXPECT_EQ(info.st_mode & 07777, mode) << std::oct << mode;
    EXPECT_EQ(info.st_gid, ::getgid());
    EXPECT_EQ(::umask(022), 022);
    server->shutdown(absl::ZeroDuration());
  }
  ::umask(umask_before);
}

// Verifies a socket file nobody listens on (left by a crash) is replaced.
TEST_F(GrpcServerTest, StaleSocketIsReplaced) {
  UnixListener crashed(options_.socket_path, /*listen=*/false);
  crashed.close();
  ASSERT_TRUE(S_ISSOCK(lstatOf(options_.socket_path).st_mode));
  ASSERT_FALSE(accepting(options_.socket_path));

  std::unique_ptr<GrpcServer> server = startOk();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(statusOf(""), HealthCheckResponse::SERVING);
}

// Verifies a socket another process serves is neither taken over nor
// removed, and the error says why.
TEST_F(GrpcServerTest, LiveSocketIsRefusedAndLeftIntact) {
  UnixListener other(options_.socket_path, /*listen=*/true);
  const ino_t inode = lstatOf(options_.socket_path).st_ino;
  EXPECT_THAT(start(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                AllOf(HasSubstr(options_.socket_path),
                                      HasSubstr("another process is serving it"))));
  EXPECT_EQ(lstatOf(options_.socket_path).st_ino, inode);
  EXPECT_TRUE(accepting(options_.socket_path));
}

// Verifies a second server on the path of a running one is refused and the
// first keeps serving.
TEST_F(GrpcServerTest, SecondServerOnTheSamePathIsRefused) {
  std::unique_ptr<GrpcServer> first = startOk();
  ASSERT_NE(first, nullptr);
  EXPECT_THAT(start(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("another process is serving it")));
  EXPECT_EQ(statusOf(""), HealthCheckResponse::SERVING);
}

// Verifies a regular file or a directory at the socket path is refused and
// left as it was.
TEST_F(GrpcServerTest, NonSocketAtThePathIsRefusedAndLeftIntact) {
  std::ofstream(options_.socket_path) << "not a socket";
  EXPECT_THAT(start(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                AllOf(HasSubstr(options_.socket_path),
                                      HasSubstr("exists and is not a socket"))));
  std::stringstream content;
  content << std::ifstream(options_.socket_path).rdbuf();
  EXPECT_EQ(content.str(), "not a socket");

  options_.socket_path = dir_.file("a-directory");
  ASSERT_EQ(::mkdir(options_.socket_path.c_str(), 0700), 0);
  EXPECT_THAT(start(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("exists and is not a socket")));
  EXPECT_TRUE(S_ISDIR(lstatOf(options_.socket_path).st_mode));
}

// Verifies a path longer than a Unix socket address can hold is refused with
// an error instead of overrunning the address buffer, even when it names an
// existing socket (here through a chain of "." symlinks).
TEST_F(GrpcServerTest, OverlongSocketPathIsRefused) {
  UnixListener crashed(options_.socket_path, /*listen=*/false);
  crashed.close();
  const std::string link(40, 'l');
  ASSERT_EQ(::symlink(".", dir_.file(link).c_str()), 0);
  std::string path = dir_.path();
  while (path.size() < 2 * sizeof(sockaddr_un::sun_path)) path += "/" + link;
  path += "/credsync.sock";
  ASSERT_TRUE(S_ISSOCK(lstatOf(path).st_mode));
  options_.socket_path = path;
  EXPECT_THAT(start(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("107 bytes")));
  EXPECT_TRUE(exists(dir_.file("credsync.sock")));
}

// Verifies shutdown removes the socket, is idempotent, and clients then find
// nothing there.
TEST_F(GrpcServerTest, ShutdownRemovesTheSocket) {
  std::unique_ptr<GrpcServer> server = startOk();
  ASSERT_NE(server, nullptr);
  client::ControlTarget target;
  target.socket_path = options_.socket_path;
  std::unique_ptr<client::ControlClient> client = client::makeControlClient(target, real_time_);
  EXPECT_THAT(client->healthy("", absl::Seconds(10)), IsOk());

  server->shutdown(absl::Seconds(5));
  EXPECT_FALSE(exists(options_.socket_path));
  server->shutdown(absl::Seconds(5));
  EXPECT_THAT(client->healthy("", absl::Seconds(2)), StatusIs(absl::StatusCode::kUnavailable));
  server.reset();

  // The path is free for the next server.
  server = startOk();
  EXPECT_NE(server, nullptr);
}

// Verifies the whole server and the CredsyncService report readiness, and
// "liveness" the live source, each following its source within a few
// health intervals; an unknown service is NOT_FOUND.
TEST_F(GrpcServerTest, HealthFollowsItsSources) {
  ready_ = false;
  std::unique_ptr<GrpcServer> server = startOk();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(statusOf(""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(statusOf(kServiceName), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(statusOf("liveness"), HealthCheckResponse::SERVING);

  ready_ = true;
  EXPECT_TRUE(becomes("", HealthCheckResponse::SERVING));
  EXPECT_TRUE(becomes(kServiceName, HealthCheckResponse::SERVING));
  EXPECT_EQ(statusOf("liveness"), HealthCheckResponse::SERVING);

  live_ = false;
  EXPECT_TRUE(becomes("liveness", HealthCheckResponse::NOT_SERVING));
  EXPECT_EQ(statusOf(""), HealthCheckResponse::SERVING);

  ready_ = false;
  EXPECT_TRUE(becomes(kServiceName, HealthCheckResponse::NOT_SERVING));
  EXPECT_EQ(statusOf(""), HealthCheckResponse::NOT_SERVING);

  HealthCheckResponse::ServingStatus ignored;
  EXPECT_EQ(check("unix:" + options_.socket_path, "no.such.Service", &ignored).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // The client library reads the same.
  client::ControlTarget target;
  target.socket_path = options_.socket_path;
  std::unique_ptr<client::ControlClient> client = client::makeControlClient(target, real_time_);
  EXPECT_EQ(client->healthy("liveness", absl::Seconds(10)).value_or(true), false);
  EXPECT_EQ(client->healthy(kServiceName, absl::Seconds(10)).value_or(true), false);
  EXPECT_THAT(client->healthy("no.such.Service", absl::Seconds(10)),
              StatusIs(absl::StatusCode::kNotFound));
  live_ = true;
  EXPECT_TRUE(
      eventually([&] { return client->healthy("liveness", absl::Seconds(10)).value_or(false); }));
}

// Verifies the optional TCP listener binds port 0 to a real port, serves the
// same services, and the Unix socket is served alongside.
TEST_F(GrpcServerTest, TcpListenerOnLoopbackPortZero) {
  options_.tcp_address = "127.0.0.1:0";
  std::unique_ptr<GrpcServer> server = startOk();
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->tcpAddress(), StartsWith("127.0.0.1:"));
  EXPECT_NE(server->tcpAddress(), "127.0.0.1:0");
  HealthCheckResponse::ServingStatus result = HealthCheckResponse::UNKNOWN;
  EXPECT_TRUE(check(server->tcpAddress(), "", &result).ok());
  EXPECT_EQ(result, HealthCheckResponse::SERVING);
  EXPECT_EQ(statusOf(""), HealthCheckResponse::SERVING);

  // The CredsyncService is registered on both listeners.
  auto stub = credsync::v1::CredsyncService::NewStub(
      grpc::CreateChannel(server->tcpAddress(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(real_time_.systemTime() + absl::Seconds(10)));
  credsync::v1::GetStatusResponse response;
  EXPECT_EQ(stub->GetStatus(&context, {}, &response).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

// Verifies a TCP address already in use fails start with an error naming it,
// and leaves no live socket behind.
TEST_F(GrpcServerTest, TcpAddressInUseFailsStart) {
  options_.tcp_address = "127.0.0.1:0";
  std::unique_ptr<GrpcServer> holder = startOk();
  ASSERT_NE(holder, nullptr);
  GrpcServerOptions busy = options_;
  busy.socket_path = dir_.file("second.sock");
  busy.tcp_address = holder->tcpAddress();
  const absl::StatusOr<std::unique_ptr<GrpcServer>> second =
      GrpcServer::start(busy, &service_, {}, real_time_);
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable, HasSubstr(busy.tcp_address)));
  EXPECT_FALSE(accepting(busy.socket_path));
}

}  // namespace
}  // namespace credsync::server
