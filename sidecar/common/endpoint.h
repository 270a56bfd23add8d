#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace credsync {

// The parts of a validated endpoint.
struct Endpoint {
  std::string scheme;  // "http" or "https", lowercase
  std::string host;    // "host[:port]" exactly as given: the Host header and URL authority
};

// Accepts "http(s)://host[:port][/]". INVALID_ARGUMENT names the problem
// (scheme, missing host, bad port, path/query/fragment, user info) without
// echoing the endpoint, which could carry user info. In common because the
// configuration normalises the endpoints it is given with the same rule the
// API clients apply when they send.
absl::StatusOr<Endpoint> parseEndpoint(absl::string_view endpoint);

}  // namespace credsync
