#pragma once

#include "absl/status/status.h"
#include "sidecar/config/raw_config.h"

// Reading the environment: the official ALIBABA_CLOUD_* variables and the
// official secrets-manager clients' JSON lists, each only where neither the
// file nor a flag set the key (precedence: override > file > environment).
namespace credsync::config::loading {

// The ALIBABA_CLOUD_* variable of every key the file and the flags left unset.
void applyEnvironment(RawConfig& raw_config);
// cache_client_dkms_config_info, when the file has no kms.instances.
absl::Status applyInstanceEnvironment(RawConfig& raw_config);
// cache_client_region_id, when neither the file nor a flag lists kms.endpoints.
absl::Status applyRegionEnvironment(RawConfig& raw_config);

}  // namespace credsync::config::loading
