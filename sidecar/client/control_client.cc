#include "sidecar/client/control_client.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "credsync/v1/credsync.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace credsync::client {
namespace {

absl::Status toAbsl(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

class GrpcControlClient : public ControlClient {
 public:
  GrpcControlClient(const ControlTarget& target, const TimeSource& time_source)
      : target_(target), time_source_(time_source) {
    const std::string address =
        target.tcp_address.empty() ? absl::StrCat("unix:", target.socket_path) : target.tcp_address;
    channel_ = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }

  absl::StatusOr<credsync::v1::RefreshResponse> refresh(
      const credsync::v1::RefreshRequest& request, absl::Duration timeout,
      std::optional<absl::Duration>* retry_after) override {
    grpc::ClientContext context;
    prepare(context, timeout);
    credsync::v1::RefreshResponse response;
    const grpc::Status status =
        credsync::v1::CredsyncService::NewStub(channel_)->Refresh(&context, request, &response);
    if (!status.ok()) {
      const auto& trailers = context.GetServerTrailingMetadata();
      if (const auto found = trailers.find("retry-after-seconds");
          found != trailers.end() && retry_after != nullptr) {
        int64_t seconds = 0;
        if (absl::SimpleAtoi(absl::string_view(found->second.data(), found->second.size()),
                             &seconds)) {
          *retry_after = absl::Seconds(seconds);
        }
      }
      return toAbsl(status);
    }
    return response;
  }

  absl::StatusOr<bool> healthy(const std::string& service, absl::Duration timeout) override {
    grpc::ClientContext context;
    prepare(context, timeout);
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status =
        grpc::health::v1::Health::NewStub(channel_)->Check(&context, request, &response);
    if (!status.ok()) return toAbsl(status);
    return response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  }

  absl::StatusOr<credsync::v1::GetStatusResponse> status(absl::Duration timeout) override {
    grpc::ClientContext context;
    prepare(context, timeout);
    credsync::v1::GetStatusResponse response;
    const grpc::Status status = credsync::v1::CredsyncService::NewStub(channel_)->GetStatus(
        &context, credsync::v1::GetStatusRequest(), &response);
    if (!status.ok()) return toAbsl(status);
    return response;
  }

 private:
  void prepare(grpc::ClientContext& context, absl::Duration timeout) {
    context.set_deadline(absl::ToChronoTime(time_source_.systemTime() + timeout));
    if (!target_.tcp_address.empty()) {
      context.AddMetadata("credsync-token", std::string(target_.token.reveal()));
    }
  }

  const ControlTarget target_;
  const TimeSource& time_source_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace

std::unique_ptr<ControlClient> makeControlClient(const ControlTarget& target,
                                                 const TimeSource& time_source) {
  return std::make_unique<GrpcControlClient>(target, time_source);
}

}  // namespace credsync::client
