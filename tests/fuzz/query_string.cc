// Fuzzes the query-string and percent-encoding code both schemes and the
// emulator rely on. Invariants: decode(encode(x)) == x for any bytes; encode
// emits only unreserved characters and %XY; a query that parses survives
// canonicalQueryString -> parseQueryString unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "sidecar/alibaba/signature.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

bool isCanonicalEncoding(absl::string_view encoded) {
  for (size_t i = 0; i < encoded.size(); ++i) {
    const auto c = static_cast<unsigned char>(encoded[i]);
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') continue;
    if (c != '%' || i + 2 >= encoded.size()) return false;
    for (const char hex : {encoded[i + 1], encoded[i + 2]}) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(hex)) && (hex < 'A' || hex > 'F')) {
        return false;
      }
    }
    i += 2;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace alibaba = credsync::alibaba;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);

  const std::string encoded = alibaba::percentEncode(input);
  check(isCanonicalEncoding(encoded));
  for (const bool plus_is_space : {true, false}) {
    const auto decoded = alibaba::percentDecode(encoded, plus_is_space);
    check(decoded.ok() && *decoded == input);
    // Arbitrary input must decode or fail cleanly.
    const auto raw = alibaba::percentDecode(input, plus_is_space);
    check(raw.ok() || raw.status().code() == absl::StatusCode::kInvalidArgument);
  }

  const auto params = alibaba::parseQueryString(input);
  if (!params.ok()) {
    check(params.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  const std::string canonical = alibaba::canonicalQueryString(*params);
  const auto reparsed = alibaba::parseQueryString(canonical);
  check(reparsed.ok() && *reparsed == *params);
  check(alibaba::canonicalQueryString(*reparsed) == canonical);
  // The RPC string to sign is a pure function of the params; exercise it too.
  check(!alibaba::rpc::stringToSign("POST", *params).empty());
  return 0;
}
