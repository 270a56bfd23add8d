#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "sidecar/alibaba/kms_client.h"
#include "sidecar/alibaba/sts_client.h"
#include "sidecar/common/random.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/fetch/secret_source.h"
#include "sidecar/http/client.h"
#include "sidecar/identity/credential_provider.h"
#include "sidecar/output/atomic_writer.h"
#include "sidecar/sync/sync_engine.h"
#include "sidecar/sync/sync_runner.h"

namespace credsync::app {

// The sidecar's object graph, wired from a validated Config with the
// production implementations: curl HTTP client, STS and KMS clients, the
// configured identity, the KMS secret source, the atomic writer, the sync
// engine and its runner.
class Sidecar {
 public:
  static absl::StatusOr<std::unique_ptr<Sidecar>> create(const config::Config& config,
                                                         const TimeSource& time_source);

  sync::SyncEngine& engine() { return *engine_; }
  sync::SyncRunner& runner() { return *runner_; }
  identity::CredentialProvider& identity() { return *identity_; }

 private:
  Sidecar() = default;

  config::Config config_;
  RandomPtr random_;
  http::ClientPtr http_;
  alibaba::StsClientPtr sts_;
  identity::CredentialProviderPtr identity_;
  alibaba::KmsClientPtr kms_;
  fetch::SecretSourcePtr source_;
  output::OutputWriterPtr writer_;
  std::unique_ptr<sync::SyncEngine> engine_;
  std::unique_ptr<sync::SyncRunner> runner_;
};

}  // namespace credsync::app
