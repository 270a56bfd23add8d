// Fuzzes parseApiErrorBody and the status built from it, which turn untrusted
// upstream error bodies into log-safe text. Beyond not crashing: a parsed
// error has a non-empty identifier-like code, a bounded message without
// control characters, never the redacted secret, and maps to a non-OK status
// carrying the code.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "sidecar/alibaba/api_error.h"
#include "tests/fuzz/fuzz_response_input.h"

namespace {

bool isIdentifier(const std::string& text) {
  for (const char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
        c != ':') {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace alibaba = credsync::alibaba;
  using credsync::fuzz::check;
  const credsync::http::Response response = credsync::fuzz::responseFromInput(data, size);
  const absl::string_view redact[] = {credsync::fuzz::kRedactedSecret};

  const absl::Status any =
      alibaba::statusFromErrorResponse("Fuzz", response.status, response.body, redact);
  check(!any.ok());
  check(!absl::StrContains(any.ToString(), credsync::fuzz::kRedactedSecret));

  const auto info = alibaba::parseApiErrorBody(response.body, response.status, redact);
  if (!info) return 0;
  check(info->http_status == response.status);
  check(!info->code.empty() && info->code.size() <= 128 && isIdentifier(info->code));
  check(info->request_id.size() <= 64 && isIdentifier(info->request_id));
  check(info->message.size() <= 512 + 3);
  for (const char c : info->message) {
    check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F);
  }
  for (const std::string* text : {&info->code, &info->message, &info->request_id}) {
    check(!absl::StrContains(*text, credsync::fuzz::kRedactedSecret));
  }
  const absl::Status status = alibaba::statusFromApiError("Fuzz", *info);
  check(!status.ok());
  check(credsync::upstreamCode(status) == info->code);
  return 0;
}
