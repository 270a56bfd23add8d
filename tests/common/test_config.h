#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sidecar/config/config.h"

namespace credsync::testing {

// A profile as a test names it; every other field keeps its default.
inline config::ProfileConfig profile(std::string name, std::string secret_name,
                                     bool is_default = false, bool required = true) {
  config::ProfileConfig result;
  result.name = std::move(name);
  result.secret_name = std::move(secret_name);
  result.is_default = is_default;
  result.required = required;
  return result;
}

// A generic profile: raw into `file`, or json_keys with `file_prefix`.
inline config::ProfileConfig genericProfile(std::string name, std::string secret_name,
                                            config::GenericFormat format, std::string file,
                                            bool required = true) {
  config::ProfileConfig result = profile(std::move(name), std::move(secret_name), false, required);
  result.kind = config::ProfileKind::kGeneric;
  result.format = format;
  (format == config::GenericFormat::kRaw ? result.file : result.file_prefix) = std::move(file);
  return result;
}

// A config with these profiles and every other setting at its default.
inline config::Config configWithProfiles(std::vector<config::ProfileConfig> profiles) {
  config::Config config;
  config.profiles = std::move(profiles);
  return config;
}

}  // namespace credsync::testing
