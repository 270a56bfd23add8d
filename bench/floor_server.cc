// The floor for credsync's footprint (bench/run, P4): a bare gRPC server
// that serves only grpc.health.v1 on a Unix socket, with the same gRPC
// libraries, toolchain and server options as credsync, and nothing else.
//
//   credsync-bench-floor /path/to/socket     (serves until SIGTERM or SIGINT)

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

class Health final : public grpc::health::v1::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext* /*context*/,
                     const grpc::health::v1::HealthCheckRequest* /*request*/,
                     grpc::health::v1::HealthCheckResponse* response) override {
    response->set_status(grpc::health::v1::HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: credsync-bench-floor SOCKET\n");
    return 2;
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Health health;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(std::string("unix:") + argv[1], grpc::InsecureServerCredentials());
  builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "credsync-bench-floor: cannot listen on unix:%s\n", argv[1]);
    return 1;
  }
  std::printf("listening unix:%s\n", argv[1]);
  std::fflush(stdout);
  int signal = 0;
  sigwait(&stop_signals, &signal);
  server->Shutdown();
  unlink(argv[1]);
  return 0;
}
