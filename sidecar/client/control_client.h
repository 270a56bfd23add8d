#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "credsync/v1/credsync.pb.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"

namespace credsync::client {

// Where a running credsync serves its control API.
struct ControlTarget {
  std::string socket_path;  // used unless tcp_address is set
  std::string tcp_address;  // "127.0.0.1:9901"
  SecretString token;       // sent as credsync-token over TCP
};

// The client side of the control API, for `credsync refresh`, `credsync probe`
// and `credsync check`. gRPC failures come back as absl statuses with the same code and
// message; RESOURCE_EXHAUSTED keeps the server's retry-after-seconds as
// `retry_after`.
class ControlClient {
 public:
  virtual ~ControlClient() = default;
  virtual absl::StatusOr<credsync::v1::RefreshResponse> refresh(
      const credsync::v1::RefreshRequest& request, absl::Duration timeout,
      std::optional<absl::Duration>* retry_after) = 0;
  // grpc.health.v1 Check of `service`: true when SERVING.
  virtual absl::StatusOr<bool> healthy(const std::string& service, absl::Duration timeout) = 0;
  // CredsyncService.GetStatus.
  virtual absl::StatusOr<credsync::v1::GetStatusResponse> status(absl::Duration timeout) = 0;
};

std::unique_ptr<ControlClient> makeControlClient(const ControlTarget& target,
                                                 const TimeSource& time_source);

}  // namespace credsync::client
