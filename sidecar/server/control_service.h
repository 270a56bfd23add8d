#pragma once

#include <string>

#include "absl/time/time.h"
#include "credsync/v1/credsync.grpc.pb.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"
#include "sidecar/identity/credential_provider.h"
#include "sidecar/metrics/sidecar_metrics.h"
#include "sidecar/sync/change_feed.h"
#include "sidecar/sync/refresh_coordinator.h"
#include "sidecar/sync/sync_engine.h"

namespace credsync::server {

struct ControlServiceOptions {
  std::string version;
  // The longest a Refresh waits, whatever deadline the caller set.
  absl::Duration refresh_timeout = absl::Seconds(30);
  // Calls that do not arrive over the Unix socket must carry this in the
  // `credsync-token` metadata entry. Empty: such calls are refused.
  SecretString tcp_token;
  // Idle Watch streams check for cancellation and shutdown this often.
  absl::Duration watch_poll = absl::Seconds(1);
};

// credsync.v1.CredsyncService over the sync engine (proto/credsync/v1).
// Refresh uses gRPC's callback API: a caller waiting for a fetch is a record
// in the RefreshCoordinator, not a server thread, so a storm of callers costs
// little memory (bench/run, P2). GetStatus and Watch are synchronous.
class ControlService final : public credsync::v1::CredsyncService::WithCallbackMethod_Refresh<
                                 credsync::v1::CredsyncService::Service> {
 public:
  ControlService(sync::SyncEngine& engine, sync::RefreshCoordinator& refresher,
                 sync::ChangeFeed& feed, identity::CredentialProvider& identity,
                 metrics::SidecarMetrics* metrics, const TimeSource& time_source,
                 ControlServiceOptions options);

  grpc::ServerUnaryReactor* Refresh(grpc::CallbackServerContext* context,
                                    const credsync::v1::RefreshRequest* request,
                                    credsync::v1::RefreshResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context, const credsync::v1::WatchRequest* request,
                     grpc::ServerWriter<credsync::v1::WatchResponse>* writer) override;
  grpc::Status GetStatus(grpc::ServerContext* context,
                         const credsync::v1::GetStatusRequest* request,
                         credsync::v1::GetStatusResponse* response) override;

 private:
  // UNAUTHENTICATED unless the call came over the Unix socket or carries the
  // pod token.
  grpc::Status authorize(const grpc::ServerContextBase& context) const;
  // Fills in the response (or the error) of a Refresh and logs it.
  grpc::Status finishRefresh(grpc::CallbackServerContext& context,
                             const sync::RefreshRequest& request,
                             absl::StatusOr<sync::RefreshAnswer> answer,
                             credsync::v1::RefreshResponse* response);

  sync::SyncEngine& engine_;
  sync::RefreshCoordinator& refresher_;
  sync::ChangeFeed& feed_;
  identity::CredentialProvider& identity_;
  metrics::SidecarMetrics* const metrics_;
  const TimeSource& time_source_;
  const ControlServiceOptions options_;
};

}  // namespace credsync::server
