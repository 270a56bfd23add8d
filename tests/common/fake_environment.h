#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace credsync::testing {

// An environment lookup (config::Environment, alibaba::EnvironmentLookup)
// that holds exactly these variables.
inline std::function<std::optional<std::string>(const std::string&)> fakeEnvironment(
    std::map<std::string, std::string> variables = {}) {
  return [variables = std::move(variables)](const std::string& name) -> std::optional<std::string> {
    const auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace credsync::testing
