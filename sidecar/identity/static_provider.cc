#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "sidecar/common/logging.h"
#include "sidecar/identity/oidc_provider.h"

namespace credsync::identity {
namespace {

class StaticProvider : public CredentialProvider {
 public:
  explicit StaticProvider(const config::IdentityConfig& config) {
    credentials_.access_key_id = config.static_access_key_id;
    credentials_.access_key_secret = config.static_access_key_secret;
    credentials_.security_token = config.static_security_token;
    if (credentials_.access_key_id.empty() || credentials_.access_key_secret.empty()) {
      error_ = absl::FailedPreconditionError(
          "static identity: ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
          "must both be set");
    }
    // A long-lived key in a pod is what credsync exists to avoid.
    log::warn(
        "static identity in use: a fixed AccessKey from the environment, for local "
        "development only",
        {{"access_key_id", credentials_.access_key_id},
         {"has_security_token", !credentials_.security_token.empty()}});
  }

  absl::StatusOr<alibaba::AccessKeyCredentials> credentials() override {
    if (!error_.ok()) return error_;
    return credentials_;
  }

  // Nothing to refresh: the key is what the environment gave.
  void invalidate() override {}

  IdentityStatus status() const override {
    IdentityStatus status;
    status.type = "static";
    status.last_error = error_;
    return status;
  }

 private:
  // Immutable after construction, so shared reads need no lock.
  alibaba::AccessKeyCredentials credentials_;
  absl::Status error_;
};

// For a configuration with KMS instances only: their client keys
// authenticate, and nothing asks for a RAM identity.
class NoIdentity : public CredentialProvider {
 public:
  absl::StatusOr<alibaba::AccessKeyCredentials> credentials() override {
    return absl::FailedPreconditionError(
        "no RAM identity: only KMS instances with client keys are configured");
  }
  void invalidate() override {}
  IdentityStatus status() const override { return {"none", std::nullopt, std::nullopt, {}}; }
};

}  // namespace

CredentialProviderPtr makeNoIdentity() { return std::make_unique<NoIdentity>(); }

CredentialProviderPtr makeStaticProvider(const config::IdentityConfig& config) {
  return std::make_unique<StaticProvider>(config);
}

}  // namespace credsync::identity
