#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sidecar/config/config.h"
#include "sidecar/config/raw_config.h"

// The identity section: how credsync authenticates to STS (RRSA/OIDC, the
// ECS instance's RAM role, or a static AccessKey) and where STS is.
namespace credsync::config::loading {

// `identity_needed`: whether an OpenAPI endpoint will use the identity; when
// not, given values are still checked but none is required.
absl::Status readIdentity(const RawConfig& raw_config, IdentityConfig& identity,
                          bool identity_needed);

}  // namespace credsync::config::loading
