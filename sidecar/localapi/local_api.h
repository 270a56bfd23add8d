#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "httplib.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/sync/published_set.h"
#include "sidecar/sync/sync_listener.h"

// The loopback local API (docs/local-api.md): the official SDKs' credentials
// URI and the KMS Agent's API, answered from what the files hold.
namespace credsync::localapi {

// The latest published set, as the engine hands it over after each publish
// that succeeded: the local API never answers with a key older than the
// file's, nor with one that is not in it yet. Thread-safe.
class PublishedStore : public sync::SyncListener {
 public:
  void onPublished(const std::shared_ptr<const sync::PublishedSet>& published) override;
  bool wantsPublishedSets() const override { return true; }
  // Null before the first publish.
  std::shared_ptr<const sync::PublishedSet> latest() const;

 private:
  mutable Mutex mutex_;
  std::shared_ptr<const sync::PublishedSet> latest_ ABSL_GUARDED_BY(mutex_);
};

// The shared secrets the local API checks, read once at start.
struct LocalApiSecrets {
  SecretString path_secret;
  std::optional<SecretString> kms_agent_token;  // the KMS Agent API is off without one
};

// Reads local_api.path_secret_* and local_api.kms_agent_token_* (a file of at
// most 4 KiB, or a variable; one trailing newline and surrounding whitespace
// dropped). The path secret must be at least 32 characters of
// A-Z a-z 0-9 - _ . ~ (URL-safe, so the URI needs no escaping; 32 hex
// characters are 128 bits); the token must be 16 to 4096 visible ASCII
// characters. INVALID_ARGUMENT or the file's error, one line naming the key.
absl::StatusOr<LocalApiSecrets> readLocalApiSecrets(const config::LocalApiConfig& config,
                                                    const config::Environment& env);

// Which API a request was for, for metrics: "credentials_uri", "kms_agent",
// or "refused" (forwarded, not for loopback, or not a path of either).
using RequestObserver = std::function<void(absl::string_view api, int status)>;

// Answers one request. Thread-safe (const; the store is).
//
// Every request is checked in this order (docs/local-api.md explains why):
//   1. proxy or forwarding headers (Forwarded, X-Forwarded-*, X-Real-IP,
//      Via, Proxy-Authorization, Proxy-Connection), more than one Host, a
//      Host that is not loopback, or an absolute-form target: 403, no body;
//   2. a path that is neither /<path secret>/v1/credentials/<profile> nor,
//      with a token, /v1/<secretId> or /secretsmanager/get: 404, no body;
//   3. on the KMS Agent paths, the token (X-KMS-Token or X-Vault-Token,
//      compared in constant time): 403 when absent or wrong;
//   4. a method other than GET: 405; a body: 413.
// Then the document, or a JSON error naming the profile, secret or parameter.
class LocalApiHandler {
 public:
  LocalApiHandler(std::vector<config::ProfileConfig> profiles, LocalApiSecrets secrets,
                  absl::Duration refetch_within, const PublishedStore& store,
                  const TimeSource& time_source, RequestObserver observer = nullptr);

  void handle(const httplib::Request& request, httplib::Response& response) const;

 private:
  int answer(const httplib::Request& request, httplib::Response& response, std::string& api) const;
  int answerCredentialsUri(const httplib::Request& request, absl::string_view profile,
                           httplib::Response& response) const;
  int answerKmsAgent(const httplib::Request& request, absl::string_view secret_id,
                     httplib::Response& response) const;
  bool hasValidToken(const httplib::Request& request) const;
  // `profile`'s entry in the latest published set, which `published` keeps
  // alive; null after answering 503 NotReady, naming `what`.
  const sync::PublishedProfile* publishedOrNotReady(
      const config::ProfileConfig& profile, const std::string& what,
      std::shared_ptr<const sync::PublishedSet>& published, httplib::Response& response) const;

  const std::vector<config::ProfileConfig> profiles_;
  const LocalApiSecrets secrets_;
  const absl::Duration refetch_within_;
  const PublishedStore& store_;
  const TimeSource& time_source_;
  const RequestObserver observer_;
};

}  // namespace credsync::localapi
