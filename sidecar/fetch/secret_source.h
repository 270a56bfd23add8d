#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/alibaba/kms_client.h"
#include "sidecar/common/secret.h"
#include "sidecar/config/config.h"
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
};

// Where managed credentials come from. Thread-safe.
class SecretSource {
 public:
  virtual ~SecretSource() = default;
  // One attempt (no sleeping, no retry loop: the scheduler owns timing).
  // Errors keep their upstream code (alibaba::upstreamCode) and retryability
  // (alibaba::isRetryable).
  virtual absl::StatusOr<ManagedCredential> fetch(const config::ProfileConfig& profile) = 0;
};
using SecretSourcePtr = std::unique_ptr<SecretSource>;

// KMS GetSecretValue with the identity's credentials. Endpoints are tried in
// order; the next one only after a retryable failure of the previous (a
// permission or not-found answer is the same everywhere). If KMS rejects an
// STS session as unauthenticated (expired or mismatched token), the provider
// is invalidated and the call made once more with a fresh session.
// SecretData becomes what the profile asks for (toManagedCredential in
// secret_content.h): strictly RAMCredentials, or a generic profile's files.
SecretSourcePtr makeKmsSecretSource(identity::CredentialProvider& identity, alibaba::KmsClient& kms,
                                    std::vector<std::string> endpoints);

}  // namespace credsync::fetch
