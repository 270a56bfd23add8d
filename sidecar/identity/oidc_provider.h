#pragma once

#include "sidecar/alibaba/sts_client.h"
#include "sidecar/common/random.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/identity/credential_provider.h"

namespace credsync::identity {

// RRSA: exchanges the pod's projected OIDC token for an STS session with
// AssumeRoleWithOIDC. The token file is re-read on every exchange (the
// kubelet rotates it). A session is refreshed 15 minutes before Expiration,
// or at 2/3 of a shorter lifetime, minus up to 10% jitter; a session past its
// expiration is never returned: if refreshing fails then, the error is.
// While a refresh fails but the session is still valid, the session is
// returned and the error is reported in status() and logged.
CredentialProviderPtr makeOidcProvider(const config::IdentityConfig& config,
                                       alibaba::StsClient& sts, const TimeSource& time_source,
                                       Random& random);

// A fixed AccessKey from the environment, for local development only; warns
// once at creation.
CredentialProviderPtr makeStaticProvider(const config::IdentityConfig& config);

// The identity of a sidecar that reads only KMS instances (their client keys
// authenticate): status type "none"; credentials() is FAILED_PRECONDITION.
CredentialProviderPtr makeNoIdentity();

}  // namespace credsync::identity
