#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "sidecar/http/client.h"

// Shared by the response-parser fuzz targets: the first input byte picks an
// HTTP status (byte % 8 over the table; seeds start with '0'..'7'), the rest
// is the body. One secret is passed for redaction and must never appear in
// an error.
namespace credsync::fuzz {

inline constexpr int kStatuses[] = {200, 400, 403, 404, 500, 503, 302, 201};
inline constexpr char kRedactedSecret[] = "FUZZSECRETTOKEN0123456789";

inline void check(bool condition) {
  if (!condition) std::abort();
}

inline http::Response responseFromInput(const uint8_t* data, size_t size) {
  http::Response response;
  response.status = size == 0 ? 200 : kStatuses[data[0] % 8];
  if (size > 0) response.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  return response;
}

inline bool isVisibleAscii(const std::string& text) {
  for (const char c : text) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

// A parsed STS session's credentials (STS or ECS metadata answers): all three
// present and printable, as credentials.ini and the signer need them.
template <typename Credentials>
void checkSessionCredentials(const Credentials& credentials) {
  check(!credentials.access_key_id.empty());
  check(isVisibleAscii(credentials.access_key_id));
  check(isVisibleAscii(credentials.access_key_secret.reveal()));
  check(isVisibleAscii(credentials.security_token.reveal()));
  check(!credentials.access_key_secret.empty());
  check(!credentials.security_token.empty());
}

// Every error of a response parser: a known code, no secret in it.
inline void checkError(const absl::Status& status) {
  check(!status.ok());
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kInvalidArgument:
      break;
    default:
      check(false);
  }
  check(!absl::StrContains(status.ToString(), kRedactedSecret));
}

}  // namespace credsync::fuzz
