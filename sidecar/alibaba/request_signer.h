#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/alibaba/signature.h"
#include "sidecar/common/endpoint.h"
#include "sidecar/common/secret.h"
#include "sidecar/http/client.h"

// Builds complete, signed HTTP requests for RPC-style POP API calls (STS,
// KMS) the way the official tea/darabonba SDKs send them, so that a real
// gateway and the emulator accept them alike. Pure: the caller supplies the
// time and the nonce; nothing here sends, sleeps or reads a clock.
namespace credsync::alibaba {

// An AccessKey pair, optionally with an STS security token.
struct AccessKeyCredentials {
  std::string access_key_id;
  SecretString access_key_secret;
  // Empty for a permanent AccessKey; set for STS credentials.
  SecretString security_token;
};

enum class SignatureScheme {
  // ACS3-HMAC-SHA256 (Alibaba's "V3"), the default of current SDKs.
  kAcs3HmacSha256,
  // HMAC-SHA1 RPC signature, SignatureVersion 1.0 (Alibaba's "V2").
  kRpcHmacSha1,
};

struct RpcCall {
  // "https://host[:port]" or "http://host[:port]", optionally with a trailing '/'.
  std::string endpoint;
  std::string action;   // e.g. "GetSecretValue"
  std::string version;  // e.g. "2016-01-20"
  // Business parameters only; the common ones (Action, Timestamp, ...) are
  // added here and may not be passed in.
  Params params;
  // "GET" or "POST".
  std::string method = "POST";
};

// Builds the request for `call`:
//   kAcs3HmacSha256: business params in the query; x-acs-action, x-acs-version,
//     x-acs-date, x-acs-signature-nonce, x-acs-content-sha256, host (and, with
//     STS credentials, x-acs-accesskey-id and x-acs-security-token) signed into
//     an Authorization header.
//   kRpcHmacSha1: common params (Action, Version, Format, Timestamp,
//     SignatureMethod, SignatureVersion, SignatureNonce, AccessKeyId,
//     SecurityToken) and Signature in the query; business params in an
//     x-www-form-urlencoded body for POST, in the query for GET; the
//     signature covers both.
// credentials == nullptr makes an anonymous call (AssumeRoleWithOIDC): no
// signature, no AccessKeyId. `now` becomes x-acs-date/Timestamp; `nonce` must
// be unique per request (a random UUID).
// Errors: INVALID_ARGUMENT for a bad endpoint, method, empty action, version,
// nonce or AccessKey, or a business parameter that collides with a common one.
// Messages never contain secret values.
absl::StatusOr<http::Request> buildSignedRequest(const RpcCall& call,
                                                 const AccessKeyCredentials* credentials,
                                                 SignatureScheme scheme, absl::Time now,
                                                 absl::string_view nonce);

}  // namespace credsync::alibaba
