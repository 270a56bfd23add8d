#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "sidecar/alibaba/sts_client.h"
#include "sidecar/common/random.h"
#include "sidecar/common/time_source.h"
#include "sidecar/identity/credential_provider.h"

namespace credsync::identity {

// Obtains a new STS session (AssumeRoleWithOIDC, instance metadata, ...).
// Called without any lock held, by one thread at a time.
using SessionExchange = std::function<absl::StatusOr<alibaba::StsSession>()>;

struct SessionProviderOptions {
  std::string type;    // IdentityStatus::type: "oidc", "ecs_ram_role"
  std::string label;   // prefixes errors: "OIDC identity"
  std::string issuer;  // who hands out sessions, for errors: "STS", "instance metadata"
};

// The caching shared by the identities that hold temporary STS sessions. A
// session is refreshed 15 minutes before Expiration (the official SDKs' stale
// time), or at 2/3 of a shorter lifetime, minus up to 10% jitter drawn once
// per session; a session with less than a minute left is never returned: if
// refreshing fails then, the error is. While a refresh fails but the session
// is still valid, the session is returned, the next attempt waits 30 s, and
// the error is reported in status() and logged once per failure streak.
// Concurrent callers share one exchange (single flight). Thread-safe.
CredentialProviderPtr makeSessionProvider(SessionProviderOptions options, SessionExchange exchange,
                                          const TimeSource& time_source, Random& random);

}  // namespace credsync::identity
