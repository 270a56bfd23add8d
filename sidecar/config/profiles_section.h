#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sidecar/config/config.h"
#include "sidecar/config/raw_config.h"

// The profiles list: what each KMS secret becomes in the output directory.
namespace credsync::config::loading {

// The profiles, the default first (the one marked, else one named
// "default", else the first RAM credentials profile).
absl::Status readProfiles(const RawConfig& raw_config, std::vector<ProfileConfig>& profiles);

// No two generic profiles, and no generic profile and credsync itself, can
// write the same file name.
absl::Status checkOutputNames(const RawConfig& raw_config, const Config& config);

}  // namespace credsync::config::loading
