#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/emulator/api_request.h"
#include "tests/emulator/url_encoding.h"

// The POP gateway's half of Alibaba Cloud request signatures: rebuild, from
// what arrived on the wire, the string the client must have signed, and the
// signature a key's secret gives for it. Written for the emulator from
// Alibaba's signature docs and the official SDKs' behaviour
// (docs/emulator.md), independently of the sidecar's signer, so that a
// signing bug cannot pass because both sides share it. Pure functions.
namespace credsync::emulator::pop {

// ---------------------------------------------------------------------------
// RPC, HMAC-SHA1 (SignatureVersion 1.0; Alibaba's docs call it "V2").

inline constexpr absl::string_view kRpcSignatureMethod = "HMAC-SHA1";
inline constexpr absl::string_view kRpcSignatureVersion = "1.0";

// method "&" "%2F" "&" rfc3986Encode(the parameters sorted by name as
// rfc3986Encode(name) "=" rfc3986Encode(value), joined by "&"). params are
// the query and form-body parameters together; "Signature" is left out.
std::string rpcStringToSign(absl::string_view method, const ParamMap& params);

// Base64(HMAC-SHA1(secret + "&", string_to_sign)).
std::string rpcExpectedSignature(absl::string_view access_key_secret,
                                 absl::string_view string_to_sign);

// ---------------------------------------------------------------------------
// ACS3-HMAC-SHA256 (Alibaba's "V3"), the signature in the Authorization
// header.

inline constexpr absl::string_view kAcs3Algorithm = "ACS3-HMAC-SHA256";

// "<algorithm> Credential=<id>,SignedHeaders=<a;b;...>,Signature=<hex>".
struct Acs3Authorization {
  std::string algorithm;
  std::string access_key_id;
  std::vector<std::string> signed_headers;  // lowercased, in the order sent
  std::string signature;
};

// Reads an Authorization header: the algorithm, one space, then the three
// parts in any order, spaces around the commas allowed. INVALID_ARGUMENT,
// saying what is wrong, for an unknown or repeated part, a missing
// Credential, SignedHeaders or Signature (an empty SignedHeaders is a list
// of none), or an empty name in the list.
absl::StatusOr<Acs3Authorization> parseAcs3Authorization(absl::string_view header);

// The canonical request, joined by "\n": method; the path as sent ("/" when
// empty); the query (not the form body) as "name=value" pairs, both
// rfc3986Encode'd, sorted by name, joined by "&"; one "name:value\n" line
// per signed header in the order SignedHeaders lists them, the values of a
// repeated name trimmed, sorted and joined by ","; the signed names joined
// by ";"; payload_hash. The gateway trusts the client's SignedHeaders list.
std::string acs3CanonicalRequest(const ApiRequest& request,
                                 const std::vector<std::string>& signed_headers,
                                 absl::string_view payload_hash);

// kAcs3Algorithm "\n" hex(SHA-256(canonical_request)).
std::string acs3StringToSign(absl::string_view canonical_request);

// hex(HMAC-SHA256(secret, string_to_sign)); the secret is the key as is.
std::string acs3ExpectedSignature(absl::string_view access_key_secret,
                                  absl::string_view string_to_sign);

// ---------------------------------------------------------------------------

// Whether the signature sent is the one expected, in constant time. An
// empty expectation (the MAC failed) matches nothing.
bool signatureMatches(absl::string_view expected, absl::string_view sent);

}  // namespace credsync::emulator::pop
