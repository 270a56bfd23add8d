#include "sidecar/alibaba/request_signer.h"

#include <array>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace credsync::alibaba {
namespace {

// The tea SDKs ask for JSON explicitly: without Format, RPC APIs answer in XML.
constexpr absl::string_view kFormatJson = "JSON";
constexpr absl::string_view kFormContentType = "application/x-www-form-urlencoded";

// Parameters this module sets itself; a caller passing one would silently
// change or break what is signed.
constexpr std::array<absl::string_view, 11> kReservedParams = {
    "AccessKeyId",      "Action",          "Format",         "SecurityToken",
    "Signature",        "SignatureMethod", "SignatureNonce", "SignatureType",
    "SignatureVersion", "Timestamp",       "Version",
};

std::string formatTimestamp(absl::Time now) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone());
}

absl::Status validateCall(const RpcCall& call, const AccessKeyCredentials* credentials,
                          absl::string_view nonce) {
  if (call.method != "GET" && call.method != "POST") {
    return absl::InvalidArgumentError("RPC calls use method GET or POST");
  }
  if (call.action.empty()) return absl::InvalidArgumentError("RPC call has no action");
  if (call.version.empty()) return absl::InvalidArgumentError("RPC call has no API version");
  if (nonce.empty()) return absl::InvalidArgumentError("signature nonce is empty");
  for (const absl::string_view reserved : kReservedParams) {
    if (call.params.count(std::string(reserved)) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter ", reserved, " is set by the request signer"));
    }
  }
  if (credentials != nullptr) {
    if (credentials->access_key_id.empty()) {
      return absl::InvalidArgumentError("AccessKeyId is empty");
    }
    if (credentials->access_key_secret.empty()) {
      return absl::InvalidArgumentError("AccessKeySecret is empty");
    }
  }
  return absl::OkStatus();
}

std::string buildUrl(const Endpoint& endpoint, const Params& query) {
  std::string url = absl::StrCat(endpoint.scheme, "://", endpoint.host, "/");
  if (!query.empty()) absl::StrAppend(&url, "?", canonicalQueryString(query));
  return url;
}

http::Request buildAcs3(const RpcCall& call, const Endpoint& endpoint,
                        const AccessKeyCredentials* credentials, absl::Time now,
                        absl::string_view nonce) {
  Params query = call.params;
  // Like the TS STS SDK's anonymous RPC path: nothing else tells the gateway
  // to answer an unsigned call in JSON.
  if (credentials == nullptr) query["Format"] = std::string(kFormatJson);

  http::Request request;
  request.method = call.method;
  request.url = buildUrl(endpoint, query);
  request.operation = call.action;
  request.headers = {
      {"host", endpoint.host},
      {"x-acs-action", call.action},
      {"x-acs-version", call.version},
      {"x-acs-date", formatTimestamp(now)},
      {"x-acs-signature-nonce", std::string(nonce)},
      {"x-acs-content-sha256", std::string(acs3::kEmptyPayloadHash)},
  };
  if (credentials == nullptr) {
    request.headers.emplace_back("accept", "application/json");
    return request;
  }
  if (!credentials->security_token.empty()) {
    request.headers.emplace_back("x-acs-accesskey-id", credentials->access_key_id);
    request.headers.emplace_back("x-acs-security-token", credentials->security_token.reveal());
  }

  // Sign what the Go and TS SDKs sign: host, content-type and every x-acs-*.
  acs3::CanonicalRequestInput input;
  input.method = call.method;
  input.path = "/";
  input.query = query;
  input.hashed_payload = std::string(acs3::kEmptyPayloadHash);
  for (const auto& [name, value] : request.headers) {
    if (name == "host" || name == "content-type" || absl::StartsWith(name, "x-acs-")) {
      input.headers.emplace_back(name, value);
    }
  }
  const acs3::CanonicalRequest canonical = acs3::canonicalRequest(input);
  const std::string signature =
      acs3::signature(credentials->access_key_secret.reveal(), acs3::stringToSign(canonical.text));
  request.headers.emplace_back("accept", "application/json");
  request.headers.emplace_back(
      "Authorization",
      acs3::authorizationHeader(credentials->access_key_id, canonical.signed_headers, signature));
  return request;
}

http::Request buildRpc(const RpcCall& call, const Endpoint& endpoint,
                       const AccessKeyCredentials* credentials, absl::Time now,
                       absl::string_view nonce) {
  Params common = {
      {"Action", call.action},
      {"Version", call.version},
      {"Format", std::string(kFormatJson)},
      {"Timestamp", formatTimestamp(now)},
      {"SignatureNonce", std::string(nonce)},
  };
  if (credentials != nullptr) {
    common["SignatureMethod"] = std::string(rpc::kSignatureMethod);
    common["SignatureVersion"] = std::string(rpc::kSignatureVersion);
    common["AccessKeyId"] = credentials->access_key_id;
    if (!credentials->security_token.empty()) {
      common["SecurityToken"] = credentials->security_token.reveal();
    }
  }

  // tea doRPCRequest: for POST the business params travel as a form body;
  // GET has no body, so everything goes into the query.
  const bool form_body = call.method == "POST" && !call.params.empty();
  Params query = common;
  if (!form_body) query.insert(call.params.begin(), call.params.end());
  if (credentials != nullptr) {
    Params signed_params = common;
    signed_params.insert(call.params.begin(), call.params.end());
    query["Signature"] =
        rpc::signature(call.method, signed_params, credentials->access_key_secret.reveal());
  }

  http::Request request;
  request.method = call.method;
  request.url = buildUrl(endpoint, query);
  request.operation = call.action;
  request.headers = {
      {"host", endpoint.host},
      {"x-acs-action", call.action},
      {"x-acs-version", call.version},
      {"accept", "application/json"},
  };
  if (form_body) {
    request.body = canonicalQueryString(call.params);
    request.headers.emplace_back("content-type", kFormContentType);
  }
  return request;
}

}  // namespace

absl::StatusOr<http::Request> buildSignedRequest(const RpcCall& call,
                                                 const AccessKeyCredentials* credentials,
                                                 SignatureScheme scheme, absl::Time now,
                                                 absl::string_view nonce) {
  absl::StatusOr<Endpoint> endpoint = parseEndpoint(call.endpoint);
  if (!endpoint.ok()) return endpoint.status();
  if (absl::Status status = validateCall(call, credentials, nonce); !status.ok()) return status;
  switch (scheme) {
    case SignatureScheme::kAcs3HmacSha256:
      return buildAcs3(call, *endpoint, credentials, now, nonce);
    case SignatureScheme::kRpcHmacSha1:
      return buildRpc(call, *endpoint, credentials, now, nonce);
  }
  return absl::InvalidArgumentError("unknown signature scheme");
}

}  // namespace credsync::alibaba
