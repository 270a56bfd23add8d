// Fuzzes parseRamCredentials on arbitrary SecretData. Beyond not crashing: a
// success has a printable, bounded, non-empty AccessKeyId and AccessKeySecret
// (they are written into credentials.ini); a failure is INVALID_ARGUMENT and
// never quotes the data: every 0x01 byte of the input becomes a marker word
// that no message may contain.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "sidecar/alibaba/kms_client.h"
#include "tests/fuzz/fuzz_response_input.h"

namespace {

constexpr char kMarker[] = "QQSECRETMARKERQQ";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using credsync::fuzz::check;
  const std::string input = absl::StrReplaceAll(
      std::string(reinterpret_cast<const char*>(data), size), {{"\x01", kMarker}});
  credsync::alibaba::SecretValue value;
  value.secret_type = "RAMCredentials";
  value.secret_data_type = "text";
  value.secret_data = credsync::SecretString(input);
  const auto credentials = credsync::alibaba::parseRamCredentials(value);
  if (!credentials.ok()) {
    check(credentials.status().code() == absl::StatusCode::kInvalidArgument);
    check(!absl::StrContains(credentials.status().ToString(), kMarker));
    return 0;
  }
  check(!credentials->access_key_id.empty() && credentials->access_key_id.size() <= 128);
  check(!credentials->access_key_secret.empty() && credentials->access_key_secret.size() <= 1024);
  check(credsync::fuzz::isVisibleAscii(credentials->access_key_id));
  check(credsync::fuzz::isVisibleAscii(credentials->access_key_secret.reveal()));
  return 0;
}
