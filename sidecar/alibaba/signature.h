#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// The two request-signing schemes of Alibaba Cloud's POP gateway, as the
// sidecar signs with them. The emulator verifies with its own code
// (tests/emulator/pop_signature.h); the two share only Alibaba's published
// test vectors, so a signing bug cannot pass on both sides.
//   rpc::   HMAC-SHA1, SignatureVersion 1.0 (Alibaba's docs call it "V2").
//   acs3::  ACS3-HMAC-SHA256 (Alibaba's "V3"), the current default of the SDKs.
// Pure functions: no clock, no randomness, no I/O.
namespace credsync::alibaba {

// Request parameters by name; std::map gives the byte-order sort both
// schemes require.
using Params = std::map<std::string, std::string>;

// RFC 3986 percent-encoding exactly as the official SDKs apply it to names,
// values and path segments: A-Z a-z 0-9 - _ . ~ stay, every other byte of the
// UTF-8 input becomes %XY with uppercase hex (space is %20, '*' is %2A).
std::string percentEncode(absl::string_view text);

// Decodes %XY escapes (either hex case). With plus_is_space, '+' decodes to a
// space, as in application/x-www-form-urlencoded bodies and most query strings.
// A truncated or non-hex escape is INVALID_ARGUMENT.
absl::StatusOr<std::string> percentDecode(absl::string_view text, bool plus_is_space);

// Parses "a=1&b=2" (query string or form body) into Params, decoding names and
// values with plus_is_space. A name without '=' gets the empty value; a repeated
// name keeps the last value.
absl::StatusOr<Params> parseQueryString(absl::string_view text);

// "k1=v1&k2=v2": sorted by name, names and values percentEncode'd, an empty
// value written as "k=". Shared by both schemes.
std::string canonicalQueryString(const Params& params);

namespace rpc {

inline constexpr absl::string_view kSignatureMethod = "HMAC-SHA1";
inline constexpr absl::string_view kSignatureVersion = "1.0";

// METHOD & percentEncode("/") & percentEncode(canonicalQueryString(params)),
// with any "Signature" parameter left out. params holds query and form-body
// parameters together.
std::string stringToSign(absl::string_view method, const Params& params);

// Base64(HMAC-SHA1(access_key_secret + "&", stringToSign(method, params))).
std::string signature(absl::string_view method, const Params& params,
                      absl::string_view access_key_secret);

}  // namespace rpc

namespace acs3 {

inline constexpr absl::string_view kAlgorithm = "ACS3-HMAC-SHA256";
// Hex SHA-256 of the empty payload.
inline constexpr absl::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct CanonicalRequestInput {
  std::string method;
  // The request path; "/" for RPC-style APIs. Each segment is percentEncode'd.
  std::string path = "/";
  Params query;
  // The headers to sign, names in any case. Repeated names merge into one
  // entry whose values are sorted and joined with ','; values are trimmed.
  std::vector<std::pair<std::string, std::string>> headers;
  // Lowercase hex SHA-256 of the body (x-acs-content-sha256).
  std::string hashed_payload;
};

struct CanonicalRequest {
  std::string text;            // the canonical request itself
  std::string signed_headers;  // "host;x-acs-action;..."
};

CanonicalRequest canonicalRequest(const CanonicalRequestInput& input);

// "ACS3-HMAC-SHA256\n" + hex(SHA-256(canonical_request)).
std::string stringToSign(absl::string_view canonical_request);

// hex(HMAC-SHA256(access_key_secret, string_to_sign)).
std::string signature(absl::string_view access_key_secret, absl::string_view string_to_sign);

// "ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<list>,Signature=<sig>".
std::string authorizationHeader(absl::string_view access_key_id, absl::string_view signed_headers,
                                absl::string_view signature);

struct Authorization {
  std::string algorithm;
  std::string access_key_id;
  std::vector<std::string> signed_headers;  // lowercase, in the order sent
  std::string signature;
};

// Parses an Authorization header of the form above; tolerant of spaces after
// commas, strict about the three parts being present. INVALID_ARGUMENT names
// the missing or malformed part.
absl::StatusOr<Authorization> parseAuthorizationHeader(absl::string_view header);

}  // namespace acs3
}  // namespace credsync::alibaba
