#include "sidecar/server/health_service.h"

namespace credsync::server {
namespace {

using grpc::health::v1::HealthCheckResponse;

constexpr char kServiceName[] = "credsync.v1.CredsyncService";
constexpr char kLivenessService[] = "liveness";

HealthCheckResponse::ServingStatus serving(bool yes) {
  return yes ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

}  // namespace

std::optional<HealthCheckResponse::ServingStatus> HealthService::statusOf(
    const std::string& service) const {
  if (stopping_.HasBeenNotified()) return HealthCheckResponse::NOT_SERVING;
  if (service.empty() || service == kServiceName) {
    return serving(!sources_.ready || sources_.ready());
  }
  if (service == kLivenessService) return serving(!sources_.live || sources_.live());
  return std::nullopt;
}

grpc::Status HealthService::Check(grpc::ServerContext* /*context*/,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  HealthCheckResponse* response) {
  const auto status = statusOf(request->service());
  if (!status) return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
  response->set_status(*status);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  std::optional<HealthCheckResponse::ServingStatus> sent;
  while (!context->IsCancelled()) {
    // As the protocol says: an unknown service is reported, not refused,
    // since it may be registered later.
    const HealthCheckResponse::ServingStatus status =
        statusOf(request->service()).value_or(HealthCheckResponse::SERVICE_UNKNOWN);
    if (status != sent) {
      HealthCheckResponse response;
      response.set_status(status);
      if (!writer->Write(response)) return grpc::Status::OK;
      sent = status;
    }
    if (stopping_.WaitForNotificationWithTimeout(poll_)) {
      if (sent != HealthCheckResponse::NOT_SERVING) {
        HealthCheckResponse response;
        response.set_status(HealthCheckResponse::NOT_SERVING);
        writer->Write(response);
      }
      return grpc::Status(grpc::StatusCode::CANCELLED, "credsync is shutting down");
    }
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away");
}

}  // namespace credsync::server
