#include "tests/emulator/authenticator.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "tests/emulator/hashing.h"
#include "tests/emulator/pop_signature.h"

namespace credsync::emulator {
namespace {

constexpr absl::Duration kTimestampWindow = absl::Minutes(15);
constexpr char kSignatureMismatch[] =
    "Specified signature is not matched with our calculation. server string to sign is:";

// What the two schemes have in common once their fields are pulled out.
struct SignedFields {
  std::string access_key_id;
  std::string timestamp;
  std::string nonce;
  std::string security_token;
  bool has_security_token = false;
};

std::optional<absl::Time> parseTimestamp(const std::string& text) {
  absl::Time time;
  std::string error;
  // Clients send seconds ("2016-02-23T12:46:24Z"); some add milliseconds.
  if (absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", text, absl::UTCTimeZone(), &time, &error)) {
    return time;
  }
  return std::nullopt;
}

std::optional<ApiError> checkCommon(const SignedFields& fields, World& world, KeyLookup* lookup) {
  const std::optional<absl::Time> timestamp = parseTimestamp(fields.timestamp);
  if (!timestamp) {
    return ApiError{400, "InvalidTimeStamp.Format",
                    "Specified time stamp or date value is not well formatted."};
  }
  if (absl::AbsDuration(world.now() - *timestamp) > kTimestampWindow) {
    return ApiError{400, "InvalidTimeStamp.Expired",
                    "Specified time stamp or date value is expired."};
  }
  *lookup = world.lookupKey(fields.access_key_id);
  switch (lookup->kind) {
    case KeyLookup::Kind::kNotFound:
      return ApiError{404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."};
    case KeyLookup::Kind::kDisabled:
      return ApiError{400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled."};
    case KeyLookup::Kind::kActive:
      break;
  }
  const Principal& principal = lookup->principal;
  if (principal.is_session) {
    if (!fields.has_security_token || fields.security_token.empty()) {
      return ApiError{400, "MissingSecurityToken", "SecurityToken is mandatory for this action."};
    }
    if (!principal.security_token.equals(fields.security_token)) {
      return ApiError{400, "InvalidSecurityToken.MismatchWithAccessKey",
                      "Specified SecurityToken mismatch with the AccessKey."};
    }
    if (world.now() >= principal.session_expiration) {
      return ApiError{400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."};
    }
  }
  return std::nullopt;
}

std::variant<Principal, ApiError> authenticateRpc(const ApiRequest& request, World& world) {
  for (const char* name :
       {"AccessKeyId", "Signature", "SignatureMethod", "SignatureNonce", "Timestamp"}) {
    if (!request.param(name)) return missingParameter(name);
  }
  if (*request.param("SignatureMethod") != pop::kRpcSignatureMethod) {
    return ApiError{400, "InvalidParameter.SignatureMethod",
                    "Specified signature method is not supported."};
  }
  if (request.param("SignatureVersion").value_or("1.0") != pop::kRpcSignatureVersion) {
    return ApiError{400, "InvalidParameter.SignatureVersion",
                    "Specified signature version is not supported."};
  }
  SignedFields fields;
  fields.access_key_id = *request.param("AccessKeyId");
  fields.timestamp = *request.param("Timestamp");
  fields.nonce = *request.param("SignatureNonce");
  if (auto token = request.param("SecurityToken")) {
    fields.security_token = *token;
    fields.has_security_token = true;
  }
  KeyLookup lookup;
  if (auto error = checkCommon(fields, world, &lookup)) return *error;

  const std::string string_to_sign = pop::rpcStringToSign(request.method, request.params);
  const std::string expected =
      pop::rpcExpectedSignature(lookup.principal.secret.reveal(), string_to_sign);
  if (!pop::signatureMatches(expected, *request.param("Signature"))) {
    return ApiError{400, "SignatureDoesNotMatch", absl::StrCat(kSignatureMismatch, string_to_sign)};
  }
  if (!world.recordNonce(fields.access_key_id, fields.nonce)) {
    return ApiError{400, "SignatureNonceUsed", "Specified signature nonce was used already."};
  }
  return lookup.principal;
}

std::variant<Principal, ApiError> authenticateAcs3(const ApiRequest& request, World& world) {
  auto authorization = pop::parseAcs3Authorization(*request.header("authorization"));
  if (!authorization.ok()) {
    return ApiError{400, "IncompleteSignature",
                    absl::StrCat("The request signature does not conform to Aliyun standards: ",
                                 authorization.status().message())};
  }
  if (authorization->algorithm != pop::kAcs3Algorithm) {
    return ApiError{400, "InvalidParameter.SignatureMethod",
                    "Specified signature method is not supported."};
  }
  for (const char* name :
       {"host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"}) {
    bool is_signed = false;
    for (const std::string& header : authorization->signed_headers) {
      is_signed = is_signed || header == name;
    }
    if (!is_signed || !request.header(name)) {
      return ApiError{400, "IncompleteSignature",
                      absl::StrCat("The request signature does not conform to Aliyun standards: ",
                                   name, " must be sent and signed.")};
    }
  }
  const std::string payload_hash = *request.header("x-acs-content-sha256");
  if (payload_hash != hashing::sha256Hex(request.body)) {
    return ApiError{400, "InvalidParameter.ContentSha256",
                    "Specified x-acs-content-sha256 does not match the request body."};
  }
  SignedFields fields;
  fields.access_key_id = authorization->access_key_id;
  fields.timestamp = *request.header("x-acs-date");
  fields.nonce = *request.header("x-acs-signature-nonce");
  if (auto token = request.header("x-acs-security-token")) {
    fields.security_token = *token;
    fields.has_security_token = true;
  }
  KeyLookup lookup;
  if (auto error = checkCommon(fields, world, &lookup)) return *error;

  const std::string string_to_sign = pop::acs3StringToSign(
      pop::acs3CanonicalRequest(request, authorization->signed_headers, payload_hash));
  const std::string expected =
      pop::acs3ExpectedSignature(lookup.principal.secret.reveal(), string_to_sign);
  if (!pop::signatureMatches(expected, authorization->signature)) {
    return ApiError{400, "SignatureDoesNotMatch", absl::StrCat(kSignatureMismatch, string_to_sign)};
  }
  if (!world.recordNonce(fields.access_key_id, fields.nonce)) {
    return ApiError{400, "SignatureNonceUsed", "Specified signature nonce was used already."};
  }
  return lookup.principal;
}

}  // namespace

std::variant<Principal, ApiError> authenticate(const ApiRequest& request, World& world) {
  const std::optional<std::string> authorization = request.header("authorization");
  if (authorization && absl::StartsWith(*authorization, "ACS3-")) {
    return authenticateAcs3(request, world);
  }
  return authenticateRpc(request, world);
}

}  // namespace credsync::emulator
