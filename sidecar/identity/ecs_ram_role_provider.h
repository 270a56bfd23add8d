#pragma once

#include "sidecar/common/random.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/http/client.h"
#include "sidecar/identity/credential_provider.h"

namespace credsync::identity {

// ECS RAM role: the STS session the instance metadata service hands out for
// the RAM role attached to the node (identity.type ecs_ram_role), for nodes
// without RRSA. Each exchange asks for a metadata token first (the hardened
// mode) and falls back to the normal mode only when
// config.ecs_imdsv1_fallback allows it; the role name is discovered when
// none is configured. Sessions are cached and refreshed like the OIDC
// identity's (session_provider.h). `http` must outlive the provider.
CredentialProviderPtr makeEcsRamRoleProvider(const config::IdentityConfig& config,
                                             http::Client& http, const TimeSource& time_source,
                                             Random& random);

}  // namespace credsync::identity
