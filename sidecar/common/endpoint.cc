#include "sidecar/common/endpoint.h"

#include <cstdint>
#include <string>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace credsync {
namespace {

bool isHostChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

bool isIpv6Char(char c) {
  return absl::ascii_isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
}

absl::Status validatePort(absl::string_view port) {
  uint32_t value = 0;
  if (port.empty() || port.size() > 5 ||
      !absl::c_all_of(port,
                      [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(port, &value) || value == 0 || value > 65535) {
    return absl::InvalidArgumentError("endpoint port must be a number from 1 to 65535");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Endpoint> parseEndpoint(absl::string_view endpoint) {
  const size_t separator = endpoint.find("://");
  if (separator == absl::string_view::npos) {
    return absl::InvalidArgumentError("endpoint must start with http:// or https://");
  }
  Endpoint result;
  result.scheme = absl::AsciiStrToLower(endpoint.substr(0, separator));
  if (result.scheme != "http" && result.scheme != "https") {
    return absl::InvalidArgumentError("endpoint must start with http:// or https://");
  }
  absl::string_view authority = endpoint.substr(separator + 3);
  // pop-core accepts (and strips) one trailing slash; so do we.
  if (absl::EndsWith(authority, "/")) authority.remove_suffix(1);
  if (authority.find('@') != absl::string_view::npos) {
    return absl::InvalidArgumentError("endpoint must not contain user info");
  }
  if (authority.find_first_of("/?#") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "endpoint must not have a path, query or fragment: RPC APIs are served at /");
  }
  if (authority.empty()) return absl::InvalidArgumentError("endpoint has no host");

  absl::string_view host = authority;
  absl::string_view port;
  bool has_port = false;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos || close == 1 ||
        !absl::c_all_of(authority.substr(1, close - 1), isIpv6Char)) {
      return absl::InvalidArgumentError("endpoint has a malformed IPv6 host");
    }
    host = authority.substr(0, close + 1);
    const absl::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return absl::InvalidArgumentError("endpoint has a malformed IPv6 host");
      }
      port = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.find(':');
    if (colon != absl::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return absl::InvalidArgumentError("endpoint has no host");
    if (!absl::c_all_of(host, isHostChar)) {
      return absl::InvalidArgumentError("endpoint host has characters not allowed in a host name");
    }
  }
  if (has_port) {
    if (absl::Status status = validatePort(port); !status.ok()) return status;
  }
  result.host = std::string(authority);
  return result;
}

}  // namespace credsync
