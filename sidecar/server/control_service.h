#pragma once

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
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
  // Open Watch streams at most, and Refresh calls waiting at most; beyond,
  // calls end at once with RESOURCE_EXHAUSTED. Each holds some kilobytes of
  // gRPC call state, so these bound what a client opening calls without
  // limit can make credsync hold (docs/operations.md, "Hostile clients").
  int max_watch_streams = 1024;
  int max_waiting_refreshes = 4096;
  // Whether a call's peer came over the Unix socket (GrpcServer::isUnixPeer);
  // unset: peers named "unix:..." (gRPC's own Unix listener).
  std::function<bool(absl::string_view peer)> is_unix_peer;
};

// credsync.v1.CredsyncService over the sync engine (proto/credsync/v1), on
// gRPC's callback API: a caller waiting for a fetch is a record in the
// RefreshCoordinator and an open Watch a subscription to the ChangeFeed, not
// a server thread each, so a storm of callers or many watchers cost little
// memory (bench/run, P2 and footprint).
class ControlService final : public credsync::v1::CredsyncService::CallbackService {
 public:
  ControlService(sync::SyncEngine& engine, sync::RefreshCoordinator& refresher,
                 sync::ChangeFeed& feed, identity::CredentialProvider& identity,
                 metrics::SidecarMetrics* metrics, const TimeSource& time_source,
                 ControlServiceOptions options);

  grpc::ServerUnaryReactor* Refresh(grpc::CallbackServerContext* context,
                                    const credsync::v1::RefreshRequest* request,
                                    credsync::v1::RefreshResponse* response) override;
  grpc::ServerWriteReactor<credsync::v1::WatchResponse>* Watch(
      grpc::CallbackServerContext* context, const credsync::v1::WatchRequest* request) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
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
