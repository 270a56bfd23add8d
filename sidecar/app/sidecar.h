#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sidecar/alibaba/client_key_source.h"
#include "sidecar/alibaba/dkms_client.h"
#include "sidecar/alibaba/kms_client.h"
#include "sidecar/alibaba/sts_client.h"
#include "sidecar/app/client_keys.h"
#include "sidecar/common/random.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/fetch/secret_source.h"
#include "sidecar/hooks/command_spawner.h"
#include "sidecar/hooks/hook_runner.h"
#include "sidecar/hooks/process_table.h"
#include "sidecar/http/client.h"
#include "sidecar/http/curl_client.h"
#include "sidecar/identity/credential_provider.h"
#include "sidecar/localapi/local_api.h"
#include "sidecar/metrics/sidecar_metrics.h"
#include "sidecar/output/atomic_writer.h"
#include "sidecar/server/control_service.h"
#include "sidecar/server/grpc_server.h"
#include "sidecar/server/probe_server.h"
#include "sidecar/sync/change_feed.h"
#include "sidecar/sync/refresh_coordinator.h"
#include "sidecar/sync/sync_engine.h"
#include "sidecar/sync/sync_runner.h"

namespace credsync::app {

// The sidecar's object graph, wired from a validated Config with the
// production implementations: curl HTTP client (observed for metrics), STS
// and KMS clients, the configured identity, the KMS secret source, the
// atomic writer, the sync engine and its runner; and, for `run`, the control
// plane: Refresh/Watch/GetStatus and health over gRPC, probes and metrics
// over HTTP.
class Sidecar {
 public:
  // Makes the HTTP transport for one set of TLS and timeout options: the
  // shared one, and one per KMS instance (each trusts its own CA).
  // http::makeCurlClient in production; tests pass one that makes fakes.
  using TransportFactory = std::function<http::ClientPtr(const http::CurlClientOptions&)>;

  // Wires everything from `config`. `client_keys` are the keys of
  // config.kms.instances, opened by openClientKeys() (so that the command
  // line reports a bad one as bad input); the sidecar owns and signs with
  // them and opens nothing itself. A count that does not match the instances
  // is INVALID_ARGUMENT; an output directory that cannot be prepared is the
  // writer's error.
  static absl::StatusOr<std::unique_ptr<Sidecar>> create(
      const config::Config& config, ClientKeys client_keys, const TimeSource& time_source,
      const TransportFactory& make_transport = http::makeCurlClient);
  ~Sidecar();

  // Opens the control socket, the optional TCP listener, the HTTP port and
  // the loopback local API (reading its secrets), and starts the change hooks (only `run` has them:
  // `sync --once` runs none). Call before runner().start(): binding the socket narrows the umask
  // for an instant, which must not overlap file writes.
  absl::Status startServing();
  // Ends Watch streams, stops the listeners (calls in flight get `grace`),
  // the scheduler, and the hooks (a running command gets `grace`, then is
  // killed). Idempotent.
  void stop(absl::Duration grace);

  sync::SyncEngine& engine() { return *engine_; }
  sync::SyncRunner& runner() { return *runner_; }
  identity::CredentialProvider& identity() { return *identity_; }

  // Liveness: the scheduler loop went round recently. Never depends on the
  // cloud: every upstream call has a timeout, which bounds a round.
  bool live() const;
  server::Readiness readiness() const;
  std::string renderMetrics() const;

 private:
  Sidecar() = default;
  absl::Status startLocalApi();

  config::Config config_;
  const TimeSource* time_source_ = nullptr;
  absl::Duration liveness_limit_;
  RandomPtr random_;
  std::unique_ptr<metrics::SidecarMetrics> metrics_;
  http::ClientPtr transport_;
  http::ClientPtr http_;
  alibaba::StsClientPtr sts_;
  identity::CredentialProviderPtr identity_;
  alibaba::KmsClientPtr kms_;
  // One HTTP client per KMS instance: each trusts its own instance CA.
  struct KmsInstance {
    std::string endpoint;
    // Declared before the client, which signs with it, so it outlives it.
    std::unique_ptr<alibaba::ReloadingClientKey> key;
    http::ClientPtr transport;
    http::ClientPtr http;
    alibaba::DkmsClientPtr client;
  };
  std::vector<KmsInstance> instances_;
  fetch::SecretSourcePtr source_;
  output::OutputWriterPtr writer_;
  std::unique_ptr<sync::SyncEngine> engine_;
  std::unique_ptr<sync::SyncRunner> runner_;
  sync::ChangeFeed feed_;
  std::unique_ptr<sync::SyncListener> metrics_listener_;
  std::unique_ptr<sync::RefreshCoordinator> refresher_;
  hooks::ProcessTablePtr processes_;
  hooks::CommandSpawnerPtr spawner_;
  std::unique_ptr<hooks::HookRunner> hooks_;
  std::unique_ptr<server::ControlService> control_;
  std::unique_ptr<server::GrpcServer> grpc_;
  std::unique_ptr<server::ProbeServer> probes_;
  // The loopback local API (local_api.listen): its view of the published
  // files, and its listener (the probe server's loop with another handler).
  localapi::PublishedStore published_;
  std::unique_ptr<localapi::LocalApiHandler> local_api_;
  std::unique_ptr<server::ProbeServer> local_api_server_;
};

}  // namespace credsync::app
