#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "sidecar/common/mutex.h"

namespace credsync::server {

// Health, as the standard grpc.health.v1 service reports it: the whole
// server ("") and "credsync.v1.CredsyncService" follow readiness;
// "liveness" follows the scheduler's heartbeat.
struct HealthSources {
  std::function<bool()> live;
  std::function<bool()> ready;
};

// grpc.health.v1.Health computed from the sources at every Check, so that
// it never disagrees with the HTTP probes (a kubelet may start the app the
// instant /readyz passes, and the app's first `credsync probe ready` must
// agree). gRPC's built-in service holds a status someone has to push, which
// lags. Watch re-evaluates every `poll` and sends each change.
class HealthService final : public grpc::health::v1::Health::Service {
 public:
  HealthService(HealthSources sources, absl::Duration poll)
      : sources_(std::move(sources)), poll_(poll) {}

  grpc::Status Check(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

  // Ends Watch streams (NOT_SERVING, then the stream closes).
  void shutdown() { stopping_.Notify(); }

 private:
  // The status of `service`, or nullopt for a service this server does not
  // have.
  std::optional<grpc::health::v1::HealthCheckResponse::ServingStatus> statusOf(
      const std::string& service) const;

  const HealthSources sources_;
  const absl::Duration poll_;
  Notification stopping_;
};

}  // namespace credsync::server
