#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sidecar/config/config.h"
#include "sidecar/config/raw_config.h"
#include "yaml-cpp/yaml.h"

// The hooks list: what to do after each change of the published output.
namespace credsync::config::loading {

// Reads hooks[] from the file, checking everything but the profile names
// (which need the profile list) into `hooks`.
absl::Status readHooks(const YAML::Node& node, std::vector<RawHook>& hooks);

// The hooks in the order they run, once their profile names are known to be
// configured profiles.
absl::Status readHookList(const RawConfig& raw_config, const std::vector<ProfileConfig>& profiles,
                          std::vector<HookConfig>& hooks);

}  // namespace credsync::config::loading
