#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace credsync {

struct FlagSpec {
  std::string name;  // without the leading "--"
  bool takes_value = true;
};

struct ParsedFlags {
  std::map<std::string, std::string> values;  // boolean flags map to "true"
  std::vector<std::string> positional;
  bool has(const std::string& name) const { return values.count(name) > 0; }
};

// Parses "--name value", "--name=value" and boolean "--name". An unknown
// flag, a missing value or a repeated flag is INVALID_ARGUMENT naming it.
absl::StatusOr<ParsedFlags> parseFlags(const std::vector<std::string>& args,
                                       const std::vector<FlagSpec>& specs);

}  // namespace credsync
