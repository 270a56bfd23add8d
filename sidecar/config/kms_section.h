#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sidecar/config/config.h"
#include "sidecar/config/raw_config.h"

// The kms section: the OpenAPI endpoints (kms.endpoints, or from kms.region),
// the KMS instances reached with client keys (kms.instances, or the official
// cache_client_dkms_config_info), the signature and the circuit breakers.
namespace credsync::config::loading {

absl::Status readKms(const RawConfig& raw_config, KmsConfig& kms);

}  // namespace credsync::config::loading
