#include "sidecar/http/client.h"

#include "absl/strings/match.h"

namespace credsync::http {

std::optional<std::string> Response::header(absl::string_view name) const {
  for (const auto& [header_name, value] : headers) {
    if (absl::EqualsIgnoreCase(header_name, name)) {
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace credsync::http
