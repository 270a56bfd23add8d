#include "sidecar/server/connection_gate.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/descriptors.h"
#include "sidecar/common/mutex.h"
#include "sidecar/server/listener.h"
#include "tests/common/descriptor_limit.h"
#include "tests/common/eventually.h"
#include "tests/common/status_matchers.h"

namespace credsync::server {
namespace {

using ::credsync::testing::eventually;
using ::credsync::testing::IsOk;
using ::credsync::testing::limitPuttingTheNextAcceptInTheReserve;
using ::credsync::testing::ScopedDescriptorLimit;

// A loopback client connection; reads time out after 5 s.
class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~Client() { close(fd_); }
  bool connected() const { return connected_; }
  // True once the other end closed: end of stream or a reset.
  bool closedByPeer() const {
    char byte;
    const ssize_t received = recv(fd_, &byte, 1, 0);
    return received == 0 || (received < 0 && errno == ECONNRESET);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// The gate in front of a stand-in server that keeps every connection it is
// handed until the test closes it, as gRPC would until the client leaves.
class ConnectionGateTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (gate_ != nullptr) gate_->stop();
    MutexLock lock(&mutex_);
    for (const int fd : handed_) close(fd);
  }

  void start(size_t max_connections) {
    absl::StatusOr<TcpListener> listener = listenTcp("127.0.0.1:0", "test address");
    ASSERT_THAT(listener, IsOk());
    port_ = listener->port;
    absl::StatusOr<std::unique_ptr<ConnectionGate>> gate = ConnectionGate::create(
        "test", listener->fd, max_connections,
        [this](int fd) {
          MutexLock lock(&mutex_);
          handed_.push_back(fd);
        },
        time_source_);
    ASSERT_THAT(gate, IsOk());
    gate_ = *std::move(gate);
    ASSERT_THAT(gate_->serve(), IsOk());
  }
  std::vector<int> handed() {
    MutexLock lock(&mutex_);
    return handed_;
  }
  // The server closes the connection it was handed `index`th.
  void serverCloses(size_t index) {
    MutexLock lock(&mutex_);
    close(handed_.at(index));
    handed_.erase(handed_.begin() + static_cast<std::ptrdiff_t>(index));
  }

  RealTimeSource time_source_;
  int port_ = 0;
  std::unique_ptr<ConnectionGate> gate_;
  Mutex mutex_;
  std::vector<int> handed_ ABSL_GUARDED_BY(mutex_);
};

// Verifies accepted connections are handed over and known as handed over,
// by descriptor and by gRPC's peer name, until the server closes them.
TEST_F(ConnectionGateTest, HandsConnectionsOverAndKnowsThem) {
  start(8);
  Client first(port_);
  Client second(port_);
  ASSERT_TRUE(first.connected() && second.connected());
  ASSERT_TRUE(eventually([&] { return handed().size() == 2; }));
  const int fd = handed()[0];
  EXPECT_TRUE(gate_->handedOver(fd));
  EXPECT_TRUE(gate_->handedOverPeer(absl::StrCat("fd:", fd)));
  EXPECT_FALSE(gate_->handedOverPeer(absl::StrCat("unix:", fd)));
  EXPECT_FALSE(gate_->handedOverPeer("fd:"));
  EXPECT_FALSE(gate_->handedOverPeer("fd:-1"));
  EXPECT_FALSE(gate_->handedOverPeer("fd:12x"));
  EXPECT_FALSE(gate_->handedOver(0));  // stdin: never handed over
  serverCloses(0);
  EXPECT_FALSE(gate_->handedOver(fd));
  const ConnectionGateStats stats = gate_->stats();
  EXPECT_EQ(stats.accepted, 2u);
  EXPECT_EQ(stats.open, 1u);
}

// Verifies a descriptor number reused for another socket is not taken for
// the connection that had it.
TEST_F(ConnectionGateTest, ReusedDescriptorIsNotHandedOver) {
  start(8);
  Client client(port_);
  ASSERT_TRUE(eventually([&] { return handed().size() == 1; }));
  const int fd = handed()[0];
  serverCloses(0);
  const int other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(other, fd);  // the lowest free number
  EXPECT_FALSE(gate_->handedOver(fd));
  close(other);
}

// Verifies connections beyond max_connections are closed as they are
// accepted and counted, and that room made by the server is used again.
TEST_F(ConnectionGateTest, RefusesBeyondTheLimitUntilTheServerClosesOne) {
  start(2);
  Client first(port_);
  Client second(port_);
  ASSERT_TRUE(eventually([&] { return handed().size() == 2; }));
  Client third(port_);
  ASSERT_TRUE(third.connected());
  EXPECT_TRUE(third.closedByPeer());
  EXPECT_EQ(gate_->stats().refused_at_limit, 1u);
  serverCloses(0);
  // Within the sweep interval the gate may still count the closed one; the
  // next attempts get through once it has looked.
  std::vector<std::unique_ptr<Client>> retries;
  EXPECT_TRUE(eventually([&] {
    retries.push_back(std::make_unique<Client>(port_));
    return handed().size() == 2;
  }));
  EXPECT_EQ(gate_->stats().open, 2u);
}

// Verifies a connection accepted into the descriptor reserve is closed at
// once and counted, and never handed over.
TEST_F(ConnectionGateTest, RefusesConnectionsThatWouldTouchTheDescriptorReserve) {
  start(8);
  {
    const ScopedDescriptorLimit lowered(limitPuttingTheNextAcceptInTheReserve());
    Client refused(port_);
    ASSERT_TRUE(refused.connected());
    EXPECT_TRUE(refused.closedByPeer());
  }
  EXPECT_EQ(gate_->stats().refused_for_descriptors, 1u);
  EXPECT_TRUE(handed().empty());
  Client accepted(port_);
  EXPECT_TRUE(eventually([&] { return handed().size() == 1; }));
}

// Verifies a gate not yet serving accepts nothing (clients wait in the
// backlog), and that stopping it unserved closes the listener.
TEST_F(ConnectionGateTest, AcceptsNothingBeforeServe) {
  absl::StatusOr<TcpListener> listener = listenTcp("127.0.0.1:0", "test address");
  ASSERT_THAT(listener, IsOk());
  int handed = 0;
  absl::StatusOr<std::unique_ptr<ConnectionGate>> gate = ConnectionGate::create(
      "test", listener->fd, 8,
      [&handed](int fd) {
        ++handed;
        close(fd);
      },
      time_source_);
  ASSERT_THAT(gate, IsOk());
  Client waiting(listener->port);
  EXPECT_TRUE(waiting.connected());  // the kernel completes the handshake
  EXPECT_EQ((*gate)->stats().accepted, 0u);
  (*gate)->stop();
  EXPECT_EQ(handed, 0);
  Client late(listener->port);
  EXPECT_FALSE(late.connected());
}

// Verifies stop() closes the listener: later clients are refused.
TEST_F(ConnectionGateTest, StopClosesTheListener) {
  start(8);
  gate_->stop();
  gate_->stop();  // idempotent
  Client late(port_);
  EXPECT_FALSE(late.connected());
}

}  // namespace
}  // namespace credsync::server
