#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/common/logging.h"
#include "sidecar/fetch/secret_content.h"
#include "sidecar/fetch/secret_source.h"

namespace credsync::fetch {
namespace {

class OpenApiBackend : public KmsBackend {
 public:
  OpenApiBackend(alibaba::KmsClient& kms, std::string endpoint)
      : kms_(kms), endpoint_(std::move(endpoint)) {}

  const std::string& endpoint() const override { return endpoint_; }
  bool usesIdentity() const override { return true; }
  absl::StatusOr<alibaba::SecretValue> getSecretValue(
      const config::ProfileConfig& profile,
      const alibaba::AccessKeyCredentials* credentials) override {
    if (credentials == nullptr)
      return absl::InternalError("OpenAPI backend called without identity");
    alibaba::GetSecretValueRequest request;
    request.endpoint = endpoint_;
    request.secret_name = profile.secret_name;
    request.version_stage = profile.version_stage;
    return kms_.getSecretValue(request, *credentials);
  }

 private:
  alibaba::KmsClient& kms_;
  const std::string endpoint_;
};

class InstanceBackend : public KmsBackend {
 public:
  InstanceBackend(alibaba::DkmsClient& dkms, std::string endpoint)
      : dkms_(dkms), endpoint_(std::move(endpoint)) {}

  const std::string& endpoint() const override { return endpoint_; }
  bool usesIdentity() const override { return false; }
  absl::StatusOr<alibaba::SecretValue> getSecretValue(
      const config::ProfileConfig& profile, const alibaba::AccessKeyCredentials*) override {
    alibaba::DkmsGetSecretValueRequest request;
    request.endpoint = endpoint_;
    request.secret_name = profile.secret_name;
    request.version_stage = profile.version_stage;
    return dkms_.getSecretValue(request);
  }

 private:
  alibaba::DkmsClient& dkms_;
  const std::string endpoint_;
};

// A backend and the health of its endpoint.
struct Route {
  KmsBackendPtr backend;
  std::unique_ptr<CircuitBreaker> breaker;
};

class KmsSecretSource : public SecretSource {
 public:
  KmsSecretSource(identity::CredentialProvider* identity, std::vector<KmsBackendPtr> backends,
                  const CircuitBreakerOptions& breaker_options, const TimeSource& time_source)
      : identity_(identity) {
    for (KmsBackendPtr& backend : backends) {
      routes_.push_back(Route{std::move(backend),
                              std::make_unique<CircuitBreaker>(breaker_options, time_source)});
    }
  }

  absl::StatusOr<ManagedCredential> fetch(const config::ProfileConfig& profile) override {
    const std::string context =
        absl::StrCat("profile ", profile.name, " (secret ", profile.secret_name, ")");
    if (routes_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(context, ": no KMS endpoint configured"));
    }
    Attempt attempt(profile);
    // Endpoints whose circuit is open go to the back, soonest to reopen
    // first: skipped while another answers, never refused locally.
    std::vector<size_t> deferred;
    for (size_t i = 0; i < routes_.size(); ++i) {
      Route& route = routes_[i];
      if (route.backend->usesIdentity() && !attempt.ensureCredentials(identity_)) continue;
      if (!route.breaker->tryAcquire()) {
        deferred.push_back(i);
        continue;
      }
      if (std::optional<absl::StatusOr<ManagedCredential>> done = tryRoute(route, attempt)) {
        return finish(*std::move(done), context);
      }
    }
    std::stable_sort(deferred.begin(), deferred.end(), [this](size_t a, size_t b) {
      return routes_[a].breaker->remainingOpen() < routes_[b].breaker->remainingOpen();
    });
    for (size_t i : deferred) {
      log::warn("every available KMS endpoint failed; trying one whose circuit is open",
                {{"profile", profile.name}, {"endpoint", routes_[i].backend->endpoint()}});
      if (std::optional<absl::StatusOr<ManagedCredential>> done = tryRoute(routes_[i], attempt)) {
        return finish(*std::move(done), context);
      }
    }
    if (attempt.tried == 0) {
      // Only OpenAPI endpoints, and no credentials for them.
      return withContext(attempt.identity_error, context);
    }
    absl::Status error = attempt.last_error;
    if (attempt.tried > 1 || !attempt.identity_error.ok()) {
      std::string summary = absl::StrCat("all ", attempt.tried, " KMS endpoints failed");
      if (!deferred.empty())
        absl::StrAppend(&summary, " (", deferred.size(), " with an open circuit)");
      if (!attempt.identity_error.ok()) {
        absl::StrAppend(&summary,
                        "; OpenAPI endpoints skipped (identity: ", attempt.identity_error.message(),
                        ")");
      }
      error = withContext(error, summary);
    }
    return withContext(error, context);
  }

  std::vector<EndpointHealth> endpointHealth() const override {
    std::vector<EndpointHealth> health;
    for (const Route& route : routes_) {
      health.push_back(
          {route.backend->endpoint(), route.breaker->state(), route.breaker->timesOpened()});
    }
    return health;
  }

 private:
  // One fetch's progress through the routes.
  struct Attempt {
    explicit Attempt(const config::ProfileConfig& profile) : profile(profile) {}

    // Asks the identity once per fetch; false (remembering why) if it fails.
    bool ensureCredentials(identity::CredentialProvider* identity) {
      if (credentials.has_value()) return true;
      if (!identity_error.ok()) return false;
      if (identity == nullptr) {
        identity_error = absl::FailedPreconditionError("no identity configured");
        return false;
      }
      absl::StatusOr<alibaba::AccessKeyCredentials> fetched = identity->credentials();
      if (!fetched.ok()) {
        identity_error = fetched.status();
        return false;
      }
      credentials = *std::move(fetched);
      return true;
    }

    const config::ProfileConfig& profile;
    std::optional<alibaba::AccessKeyCredentials> credentials;
    absl::Status identity_error;
    bool session_renewed = false;
    int tried = 0;
    absl::Status last_error;
  };

  // Calls one route. A value when the fetch is over (success, or an error
  // that no other endpoint would answer differently); nullopt to go on.
  std::optional<absl::StatusOr<ManagedCredential>> tryRoute(Route& route, Attempt& attempt) {
    KmsBackend& backend = *route.backend;
    ++attempt.tried;
    absl::StatusOr<alibaba::SecretValue> value = call(backend, attempt);
    // An STS session can be rejected before its stated expiry (revoked, or a
    // token KMS considers expired by its clock): exchange anew, once.
    if (!value.ok() && value.status().code() == absl::StatusCode::kUnauthenticated &&
        backend.usesIdentity() && !attempt.session_renewed &&
        !attempt.credentials->security_token.empty()) {
      attempt.session_renewed = true;
      log::warn("KMS rejected the STS session; exchanging a new one and retrying once",
                {{"profile", attempt.profile.name}, {"error", value.status()}});
      identity_->invalidate();
      attempt.credentials.reset();
      if (!attempt.ensureCredentials(identity_)) {
        route.breaker->recordSuccess();  // KMS answered; the identity failed
        return absl::StatusOr<ManagedCredential>(attempt.identity_error);
      }
      value = call(backend, attempt);
    }
    if (value.ok()) {
      recordHealthy(route);
      return toManagedCredential(*value, attempt.profile, backend.endpoint());
    }
    if (!isRetryable(value.status())) {
      recordHealthy(route);
      return absl::StatusOr<ManagedCredential>(value.status());
    }
    attempt.last_error = value.status();
    const uint64_t opened_before = route.breaker->timesOpened();
    route.breaker->recordFailure();
    if (route.breaker->timesOpened() != opened_before) {
      log::warn("KMS endpoint circuit opened: skipping it while another endpoint is available",
                {{"endpoint", backend.endpoint()},
                 {"for", absl::FormatDuration(route.breaker->remainingOpen())},
                 {"error", value.status()}});
    } else {
      // Failover is a degraded mode: say so.
      log::warn("KMS endpoint failed", {{"profile", attempt.profile.name},
                                        {"endpoint", backend.endpoint()},
                                        {"error", value.status()}});
    }
    return std::nullopt;
  }

  absl::StatusOr<alibaba::SecretValue> call(KmsBackend& backend, Attempt& attempt) {
    return backend.getSecretValue(attempt.profile,
                                  backend.usesIdentity() ? &*attempt.credentials : nullptr);
  }

  static void recordHealthy(Route& route) {
    const bool was_open = route.breaker->state() != CircuitState::kClosed;
    route.breaker->recordSuccess();
    if (was_open) {
      log::info("KMS endpoint answered again; circuit closed",
                {{"endpoint", route.backend->endpoint()}});
    }
  }

  static absl::StatusOr<ManagedCredential> finish(absl::StatusOr<ManagedCredential> result,
                                                  const std::string& context) {
    if (!result.ok()) return withContext(result.status(), context);
    return result;
  }

  identity::CredentialProvider* const identity_;
  // Fixed after construction; each breaker is thread-safe.
  std::vector<Route> routes_;
};

}  // namespace

KmsBackendPtr makeOpenApiBackend(alibaba::KmsClient& kms, std::string endpoint) {
  return std::make_unique<OpenApiBackend>(kms, std::move(endpoint));
}

KmsBackendPtr makeInstanceBackend(alibaba::DkmsClient& dkms, std::string endpoint) {
  return std::make_unique<InstanceBackend>(dkms, std::move(endpoint));
}

SecretSourcePtr makeKmsSecretSource(identity::CredentialProvider* identity,
                                    std::vector<KmsBackendPtr> backends,
                                    const CircuitBreakerOptions& breaker_options,
                                    const TimeSource& time_source) {
  return std::make_unique<KmsSecretSource>(identity, std::move(backends), breaker_options,
                                           time_source);
}

}  // namespace credsync::fetch
