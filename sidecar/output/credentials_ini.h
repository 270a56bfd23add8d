#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sidecar/common/secret.h"

namespace credsync::output {

struct IniProfile {
  std::string name;  // section name; the default profile is passed as "default"
  std::string access_key_id;
  SecretString access_key_secret;
};

// Renders credentials.ini as every official SDK reads it (Go ini.v1, Python
// configparser, Java's own parser, Node's `ini`): per profile, in the order
// given,
//   [name]
//   enable = true
//   type = access_key
//   access_key_id = ...
//   access_key_secret = ...
// Refuses (INVALID_ARGUMENT naming the profile and field, never the value)
// names outside [A-Za-z0-9._-] or duplicated, and values that any of those
// parsers would read differently: empty, surrounding whitespace, control
// characters, or any of # ; % [ ] = " ' \ (comments, interpolation, quoting).
absl::StatusOr<SecretString> renderCredentialsIni(const std::vector<IniProfile>& profiles);

}  // namespace credsync::output
