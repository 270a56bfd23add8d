#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/common/logging.h"
#include "sidecar/fetch/secret_content.h"
#include "sidecar/fetch/secret_source.h"

namespace credsync::fetch {
namespace {

class KmsSecretSource : public SecretSource {
 public:
  KmsSecretSource(identity::CredentialProvider& identity, alibaba::KmsClient& kms,
                  std::vector<std::string> endpoints)
      : identity_(identity), kms_(kms), endpoints_(std::move(endpoints)) {}

  absl::StatusOr<ManagedCredential> fetch(const config::ProfileConfig& profile) override {
    const std::string context =
        absl::StrCat("profile ", profile.name, " (secret ", profile.secret_name, ")");
    if (endpoints_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(context, ": no KMS endpoint configured"));
    }
    absl::StatusOr<alibaba::AccessKeyCredentials> credentials = identity_.credentials();
    if (!credentials.ok()) return alibaba::withContext(credentials.status(), context);

    absl::StatusOr<ManagedCredential> result = fetchWith(profile, *credentials);
    // An STS session can be rejected before its stated expiry (revoked, or a
    // token KMS considers expired by its clock): exchange anew, once.
    if (!result.ok() && result.status().code() == absl::StatusCode::kUnauthenticated &&
        !credentials->security_token.empty()) {
      log::warn("KMS rejected the STS session; exchanging a new one and retrying once",
                {{"profile", profile.name}, {"error", result.status()}});
      identity_.invalidate();
      credentials = identity_.credentials();
      if (!credentials.ok()) return alibaba::withContext(credentials.status(), context);
      result = fetchWith(profile, *credentials);
    }
    if (!result.ok()) return alibaba::withContext(result.status(), context);
    return result;
  }

 private:
  // Tries the endpoints in order. Only a retryable failure (network,
  // throttling, 5xx) moves on: a permission or not-found answer would be the
  // same at every endpoint.
  absl::StatusOr<ManagedCredential> fetchWith(const config::ProfileConfig& profile,
                                              const alibaba::AccessKeyCredentials& credentials) {
    absl::Status last_error;
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      const std::string& endpoint = endpoints_[i];
      alibaba::GetSecretValueRequest request;
      request.endpoint = endpoint;
      request.secret_name = profile.secret_name;
      request.version_stage = profile.version_stage;
      absl::StatusOr<alibaba::SecretValue> value = kms_.getSecretValue(request, credentials);
      if (value.ok()) return toManagedCredential(*value, profile, endpoint);
      last_error = value.status();
      if (!alibaba::isRetryable(last_error)) return last_error;
      if (i + 1 < endpoints_.size()) {
        // Failover is a degraded mode: say so.
        log::warn("KMS endpoint failed; trying the next one", {{"profile", profile.name},
                                                               {"endpoint", endpoint},
                                                               {"next_endpoint", endpoints_[i + 1]},
                                                               {"error", last_error}});
      }
    }
    if (endpoints_.size() == 1) return last_error;
    return alibaba::withContext(last_error,
                                absl::StrCat("all ", endpoints_.size(), " KMS endpoints failed"));
  }

  identity::CredentialProvider& identity_;
  alibaba::KmsClient& kms_;
  const std::vector<std::string> endpoints_;
};

}  // namespace

SecretSourcePtr makeKmsSecretSource(identity::CredentialProvider& identity, alibaba::KmsClient& kms,
                                    std::vector<std::string> endpoints) {
  return std::make_unique<KmsSecretSource>(identity, kms, std::move(endpoints));
}

}  // namespace credsync::fetch
