#pragma once

#include "absl/status/status.h"
#include "sidecar/config/raw_config.h"

// Reading flag overrides (`--output-dir`, `--log-level`): they beat the file.
namespace credsync::config::loading {

// Records each override; profiles and kms.instances cannot be overridden, and
// an unknown key is INVALID_ARGUMENT.
absl::Status applyOverrides(const Overrides& overrides, RawConfig& raw_config);

}  // namespace credsync::config::loading
