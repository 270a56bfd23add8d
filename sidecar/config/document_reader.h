#pragma once

#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/config/raw_config.h"
#include "sidecar/config/value_checks.h"
#include "yaml-cpp/yaml.h"

// Reading the config file: YAML, or JSON (which is YAML), into a RawConfig.
namespace credsync::config::loading {

// Parses `text` (one document; empty text is an empty one) and records every
// key it sets. Errors are INVALID_ARGUMENT naming the key and the line: unknown
// and duplicate keys, values of the wrong shape, YAML syntax errors.
absl::Status readDocument(absl::string_view text, RawConfig& raw_config);

// A scalar value (not a list or mapping) into `out.text`.
absl::Status readScalar(const std::string& key, const YAML::Node& node, RawValue& out);

// Walks a mapping, refusing non-scalar and duplicate keys, and hands each
// entry to `visit(name, dotted path, line of the key, value node)`.
template <typename Visit>
absl::Status forEachEntry(absl::string_view path, const YAML::Node& map, Visit visit) {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const int line = key.Mark().line + 1;
    if (!key.IsScalar()) {
      return invalid(path.empty() ? "config" : path,
                     absl::StrCat("keys must be plain names (line ", line, ")"));
    }
    const std::string& name = key.Scalar();
    const std::string full =
        path.empty() ? printable(name) : absl::StrCat(path, ".", printable(name));
    if (!seen.insert(name).second) {
      return invalid(full, absl::StrCat("duplicate key (line ", line, ")"));
    }
    if (absl::Status status = visit(name, full, line, value); !status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace credsync::config::loading
