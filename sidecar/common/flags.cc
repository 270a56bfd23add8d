#include "sidecar/common/flags.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace credsync {

absl::StatusOr<ParsedFlags> parseFlags(const std::vector<std::string>& args,
                                       const std::vector<FlagSpec>& specs) {
  ParsedFlags parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!absl::StartsWith(arg, "--") || arg == "--") {
      parsed.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_inline_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline_value = true;
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& candidate : specs) {
      if (candidate.name == name) spec = &candidate;
    }
    if (spec == nullptr)
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": unknown flag"));
    if (parsed.values.count(name) > 0) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": given more than once"));
    }
    if (!spec->takes_value) {
      if (has_inline_value) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, ": takes no value"));
      }
      value = "true";
    } else if (!has_inline_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, ": needs a value"));
      }
      value = args[++i];
    }
    parsed.values[name] = value;
  }
  return parsed;
}

}  // namespace credsync
