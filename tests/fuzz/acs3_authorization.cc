// Fuzzes acs3::parseAuthorizationHeader, which the emulator runs on every
// Authorization header it receives. Beyond not crashing, a header that parses
// must survive a round trip through authorizationHeader unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "sidecar/alibaba/signature.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace acs3 = credsync::alibaba::acs3;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parsed = acs3::parseAuthorizationHeader(input);
  if (!parsed.ok()) {
    check(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  check(!parsed->algorithm.empty());
  check(!parsed->access_key_id.empty());
  check(!parsed->signature.empty());
  for (const std::string& name : parsed->signed_headers) {
    check(!name.empty());
    check(name == absl::AsciiStrToLower(name));
  }
  if (parsed->algorithm != acs3::kAlgorithm) return 0;

  const std::string rebuilt = acs3::authorizationHeader(
      parsed->access_key_id, absl::StrJoin(parsed->signed_headers, ";"), parsed->signature);
  const auto reparsed = acs3::parseAuthorizationHeader(rebuilt);
  check(reparsed.ok());
  check(reparsed->algorithm == parsed->algorithm);
  check(reparsed->access_key_id == parsed->access_key_id);
  check(reparsed->signed_headers == parsed->signed_headers);
  check(reparsed->signature == parsed->signature);
  return 0;
}
