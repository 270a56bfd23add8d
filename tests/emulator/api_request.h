#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/emulator/url_encoding.h"

namespace credsync::emulator {

// An API call as the gateway sees it, whatever form the client chose: GET
// with everything in the query, POST with a form body, or the V3 form with
// the action and version in x-acs-* headers.
struct ApiRequest {
  std::string method;
  std::string path;
  ParamMap query;   // from the request target only (ACS3 signs these)
  ParamMap form;    // from an x-www-form-urlencoded body
  ParamMap params;  // query and form together (RPC signs these)
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::string action;
  std::string version;

  std::optional<std::string> header(absl::string_view lowercase_name) const;
  // The parameter's value from query or form, or nullopt.
  std::optional<std::string> param(absl::string_view name) const;
};

// Builds an ApiRequest from the raw pieces. INVALID_ARGUMENT for a target or
// body whose percent-encoding is broken.
absl::StatusOr<ApiRequest> parseApiRequest(
    absl::string_view method, absl::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string body);

}  // namespace credsync::emulator
