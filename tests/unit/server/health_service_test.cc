#include "sidecar/server/health_service.h"

#include <atomic>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"

namespace credsync::server {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

constexpr char kServiceName[] = "credsync.v1.CredsyncService";

// The health service alone, served on a Unix socket in a temp dir with
// sources a test flips. Watch re-evaluates every millisecond, so every
// change reaches a watcher without any test waiting on a clock. Not gRPC's
// in-process channel: it hands message buffers between threads inside
// gRPC's core, which ThreadSanitizer cannot see, so the TSan tree reported
// the hand-over as a race.
class HealthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    start(HealthSources{[this] { return live_.load(); }, [this] { return ready_.load(); }});
  }
  void TearDown() override { server_->Shutdown(); }

  void start(HealthSources sources) {
    if (server_ != nullptr) {
      server_->Shutdown();
      server_.reset();  // before the service it serves
    }
    health_ = std::make_unique<HealthService>(std::move(sources), absl::Milliseconds(1));
    const std::string address = "unix:" + dir_.file("health-" + std::to_string(++servers_));
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    builder.RegisterService(health_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }

  // The Check answer for `service`, or "error <gRPC code>".
  std::string check(const std::string& service) {
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    const grpc::Status status = stub_->Check(&context, request, &response);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) return "error NOT_FOUND";
    if (!status.ok()) return "error " + std::to_string(status.error_code());
    return HealthCheckResponse::ServingStatus_Name(response.status());
  }

  // An open Watch of `service`.
  struct WatchStream {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader;

    // The next status sent, or "end" once the stream is over.
    std::string next() {
      HealthCheckResponse response;
      if (!reader->Read(&response)) return "end";
      return HealthCheckResponse::ServingStatus_Name(response.status());
    }
  };
  std::unique_ptr<WatchStream> watch(const std::string& service) {
    auto stream = std::make_unique<WatchStream>();
    HealthCheckRequest request;
    request.set_service(service);
    stream->reader = stub_->Watch(&stream->context, request);
    return stream;
  }

  std::atomic<bool> live_{true};
  std::atomic<bool> ready_{false};
  credsync::testing::TempDir dir_{"health_service_test"};
  int servers_ = 0;  // a fresh socket for each server a test starts
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
};

// Verifies the whole server ("") and the credsync service follow readiness,
// and "liveness" follows liveness, each on its own.
TEST_F(HealthServiceTest, CheckFollowsSources) {
  EXPECT_EQ(check(""), "NOT_SERVING");
  EXPECT_EQ(check(kServiceName), "NOT_SERVING");
  EXPECT_EQ(check("liveness"), "SERVING");

  ready_ = true;
  EXPECT_EQ(check(""), "SERVING");
  EXPECT_EQ(check(kServiceName), "SERVING");
  EXPECT_EQ(check("liveness"), "SERVING");

  live_ = false;
  EXPECT_EQ(check("liveness"), "NOT_SERVING");
  EXPECT_EQ(check(""), "SERVING");

  ready_ = false;
  live_ = true;
  EXPECT_EQ(check(""), "NOT_SERVING");
  EXPECT_EQ(check("liveness"), "SERVING");
}

// Verifies a service this server does not have is NOT_FOUND, as the
// protocol asks of Check (names are matched exactly).
TEST_F(HealthServiceTest, CheckOfUnknownServiceIsNotFound) {
  EXPECT_EQ(check("no.such.Service"), "error NOT_FOUND");
  EXPECT_EQ(check("Liveness"), "error NOT_FOUND");
  EXPECT_EQ(check("credsync.v1.CredsyncService "), "error NOT_FOUND");
}

// Verifies a source that is not set counts as healthy.
TEST_F(HealthServiceTest, MissingSourcesAreServing) {
  start(HealthSources{});
  EXPECT_EQ(check(""), "SERVING");
  EXPECT_EQ(check(kServiceName), "SERVING");
  EXPECT_EQ(check("liveness"), "SERVING");
}

// Verifies that after shutdown() every known service is NOT_SERVING,
// whatever the sources say.
TEST_F(HealthServiceTest, CheckAfterShutdownIsNotServing) {
  ready_ = true;
  health_->shutdown();
  EXPECT_EQ(check(""), "NOT_SERVING");
  EXPECT_EQ(check(kServiceName), "NOT_SERVING");
  EXPECT_EQ(check("liveness"), "NOT_SERVING");
}

// Verifies Watch sends the current status at once and then each change,
// once: a repeated status would be read in place of the change.
TEST_F(HealthServiceTest, WatchSendsEachChangeOnce) {
  std::unique_ptr<WatchStream> server = watch("");
  std::unique_ptr<WatchStream> liveness = watch("liveness");
  EXPECT_EQ(server->next(), "NOT_SERVING");
  EXPECT_EQ(liveness->next(), "SERVING");

  ready_ = true;
  EXPECT_EQ(server->next(), "SERVING");
  live_ = false;
  EXPECT_EQ(liveness->next(), "NOT_SERVING");
  ready_ = false;
  EXPECT_EQ(server->next(), "NOT_SERVING");
  live_ = true;
  EXPECT_EQ(liveness->next(), "SERVING");

  server->context.TryCancel();
  liveness->context.TryCancel();
  EXPECT_EQ(server->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(liveness->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

// Verifies Watch of an unknown service reports SERVICE_UNKNOWN instead of
// failing, as the protocol asks (the service may be registered later).
TEST_F(HealthServiceTest, WatchOfUnknownServiceIsServiceUnknown) {
  std::unique_ptr<WatchStream> stream = watch("no.such.Service");
  EXPECT_EQ(stream->next(), "SERVICE_UNKNOWN");
  stream->context.TryCancel();
  EXPECT_EQ(stream->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

// Verifies shutdown() sends NOT_SERVING to a watcher that was told SERVING,
// then ends its stream with CANCELLED.
TEST_F(HealthServiceTest, ShutdownEndsWatchWithNotServing) {
  ready_ = true;
  std::unique_ptr<WatchStream> stream = watch(kServiceName);
  EXPECT_EQ(stream->next(), "SERVING");
  health_->shutdown();
  EXPECT_EQ(stream->next(), "NOT_SERVING");
  EXPECT_EQ(stream->next(), "end");
  const grpc::Status status = stream->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
}

// Verifies shutdown() sends nothing more to a watcher already told
// NOT_SERVING, and a Watch begun after shutdown() hears NOT_SERVING once.
TEST_F(HealthServiceTest, ShutdownDoesNotRepeatNotServing) {
  std::unique_ptr<WatchStream> stream = watch("");
  EXPECT_EQ(stream->next(), "NOT_SERVING");
  health_->shutdown();
  EXPECT_EQ(stream->next(), "end");
  EXPECT_EQ(stream->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  std::unique_ptr<WatchStream> late = watch("liveness");
  EXPECT_EQ(late->next(), "NOT_SERVING");
  EXPECT_EQ(late->next(), "end");
  EXPECT_EQ(late->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

}  // namespace
}  // namespace credsync::server
