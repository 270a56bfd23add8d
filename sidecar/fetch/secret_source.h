#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/alibaba/dkms_client.h"
#include "sidecar/alibaba/kms_client.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/fetch/circuit_breaker.h"
#include "sidecar/identity/credential_provider.h"

namespace credsync::fetch {

// One profile's secret, as KMS last returned it: a managed AccessKey for a
// RAM credentials profile, the files to write for a generic one.
struct ManagedCredential {
  config::ProfileKind kind = config::ProfileKind::kRamCredentials;
  std::string access_key_id;  // RAM credentials only
  SecretString access_key_secret;
  // Generic only: output file name -> content, exactly as written.
  std::map<std::string, SecretString> files;
  std::string version_id;
  std::optional<absl::Time> generate_timestamp;
  std::optional<absl::Time> next_rotation_date;
  std::optional<absl::Duration> rotation_interval;
  std::string endpoint;  // the KMS endpoint that answered
  // The GetSecretValue answer itself, for the KMS Agent API, which hands it
  // out as KMS sent it (sidecar/localapi).
  alibaba::SecretValue answer = {};
};

// One KMS endpoint's circuit, for metrics and status.
struct EndpointHealth {
  std::string endpoint;
  CircuitState state = CircuitState::kClosed;
  uint64_t times_opened = 0;
};

// Where managed credentials come from. Thread-safe.
class SecretSource {
 public:
  virtual ~SecretSource() = default;
  // One attempt (no sleeping, no retry loop: the scheduler owns timing).
  // Errors keep their upstream code (upstreamCode) and retryability
  // (isRetryable), sidecar/common/upstream_error.h.
  virtual absl::StatusOr<ManagedCredential> fetch(const config::ProfileConfig& profile) = 0;
  // Each endpoint's circuit, in the order they are tried (none for a
  // source without endpoints).
  virtual std::vector<EndpointHealth> endpointHealth() const { return {}; }
};
using SecretSourcePtr = std::unique_ptr<SecretSource>;

// One place GetSecretValue can be asked: a KMS OpenAPI endpoint (signed with
// the identity's credentials) or a KMS instance (signed with its client key).
class KmsBackend {
 public:
  virtual ~KmsBackend() = default;
  // The URL, for logs, errors and metrics.
  virtual const std::string& endpoint() const = 0;
  // Whether calls need the identity's credentials.
  virtual bool usesIdentity() const = 0;
  // `credentials` is the identity's session when usesIdentity(), else null.
  virtual absl::StatusOr<alibaba::SecretValue> getSecretValue(
      const config::ProfileConfig& profile, const alibaba::AccessKeyCredentials* credentials) = 0;
};
using KmsBackendPtr = std::unique_ptr<KmsBackend>;

// KMS 2016-01-20 GetSecretValue at `endpoint` through `kms`.
KmsBackendPtr makeOpenApiBackend(alibaba::KmsClient& kms, std::string endpoint);

// A KMS instance's GetSecretValue (dkms-gcs-0.2) at `endpoint` through
// `dkms`, which signs with the instance's client key.
KmsBackendPtr makeInstanceBackend(alibaba::DkmsClient& dkms, std::string endpoint);

// GetSecretValue over `backends`, tried in order. The next one is tried only
// after a retryable failure of the previous (a permission or not-found answer
// would be the same everywhere), and each backend has a circuit breaker: one
// that failed `failure_threshold` times in a row goes to the back of the
// order while its circuit is open, so it is skipped as long as another
// backend answers but is still tried, soonest to reopen first, when every
// other one failed: the breaker never refuses a fetch locally (the
// scheduler's backoff already paces retries).
// The identity is asked for credentials only when an OpenAPI backend is
// reached; if it fails, the OpenAPI backends are skipped (not charged to
// their circuits) and the instances still tried. If KMS rejects an STS
// session as unauthenticated (expired or mismatched token), the provider is
// invalidated and the call made once more with a fresh session. SecretData
// becomes what the profile asks for (toManagedCredential in
// secret_content.h): strictly RAMCredentials, or a generic profile's files.
// `identity` may be null when no backend uses it.
SecretSourcePtr makeKmsSecretSource(identity::CredentialProvider* identity,
                                    std::vector<KmsBackendPtr> backends,
                                    const CircuitBreakerOptions& breaker_options,
                                    const TimeSource& time_source);

}  // namespace credsync::fetch
