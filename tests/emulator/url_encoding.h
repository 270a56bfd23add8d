#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// How the POP gateway reads and re-encodes request parameters. The
// emulator's own, not the sidecar's: the gateway's canonical strings are
// built from these, and a shared encoder would hide an encoding bug on both
// sides (tests/emulator/hashing.h says why at more length).
namespace credsync::emulator {

// Request parameters by name. std::map orders names by bytes, the order
// both signature schemes sort in.
using ParamMap = std::map<std::string, std::string>;

// RFC 3986 encoding as Alibaba's signature docs define it: the unreserved
// letters, digits and "-_.~" stay; every other byte is "%" and two
// uppercase hex digits (a space is "%20", never "+").
std::string rfc3986Encode(absl::string_view text);

// Parses a query string or an x-www-form-urlencoded body: "&"-separated
// name=value pairs ("+" is a space, %XY a byte), empty pairs skipped, a
// pair without "=" an empty value, a repeated name its last value.
// INVALID_ARGUMENT for a "%" not followed by two hex digits.
absl::StatusOr<ParamMap> parseUrlEncoded(absl::string_view text);

}  // namespace credsync::emulator
