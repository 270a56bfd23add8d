// Fuzzes splitJsonKeys (a json_keys generic profile's SecretData). Beyond not
// crashing: a success is 1 to kMaxJsonKeysFiles files, each named the prefix
// plus a key of A-Z a-z 0-9 . _ -, at most 255 bytes (the output writer's
// rule); a failure is INVALID_ARGUMENT and never quotes the data: every 0x01
// byte becomes a marker phrase (with spaces, which no file name may hold, so
// an error naming a key cannot carry it either) that no message may contain.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "sidecar/fetch/secret_content.h"
#include "tests/fuzz/fuzz_response_input.h"

namespace {

constexpr char kMarker[] = "QQ SECRET MARKER QQ";
constexpr char kPrefix[] = "db.";

bool isFileName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name.front() == '.') return false;
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using credsync::fuzz::check;
  const std::string input = absl::StrReplaceAll(
      std::string(reinterpret_cast<const char*>(data), size), {{"\x01", kMarker}});
  const auto files = credsync::fetch::splitJsonKeys(input, kPrefix);
  if (!files.ok()) {
    check(files.status().code() == absl::StatusCode::kInvalidArgument);
    check(!absl::StrContains(files.status().ToString(), kMarker));
    check(!absl::StrContains(files.status().message(), "\n"));
    return 0;
  }
  check(!files->empty() && files->size() <= credsync::fetch::kMaxJsonKeysFiles);
  for (const auto& [name, content] : *files) {
    check(absl::StartsWith(name, kPrefix) && name.size() > sizeof(kPrefix) - 1);
    check(isFileName(name));
  }
  return 0;
}
