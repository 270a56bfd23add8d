#include "sidecar/config/override_reader.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sidecar/config/value_checks.h"

namespace credsync::config::loading {

absl::Status applyOverrides(const Overrides& overrides, RawConfig& raw_config) {
  for (const auto& [key, value] : overrides) {
    absl::string_view rest = key;
    if (absl::ConsumePrefix(&rest, "profiles") &&
        (rest.empty() || rest.front() == '.' || rest.front() == '[')) {
      return invalid("profiles", "cannot be overridden by a flag; set profiles in the config file");
    }
    if (absl::StartsWith(key, "kms.instances")) {
      return invalid("kms.instances",
                     "cannot be overridden by a flag; set kms.instances in the config file");
    }
    const KeySpec* spec = findKey(key);
    if (spec == nullptr) return invalid(printable(key), "unknown key (from a flag)");
    RawValue raw;
    raw.source = Source::kOverride;
    if (spec->is_list) {
      for (absl::string_view item : absl::StrSplit(value, ',')) {
        item = absl::StripAsciiWhitespace(item);
        if (!item.empty()) raw.items.emplace_back(item);
      }
    } else {
      raw.text = value;
    }
    raw_config.values[spec->key] = std::move(raw);
  }
  return absl::OkStatus();
}

}  // namespace credsync::config::loading
