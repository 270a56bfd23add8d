#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "sidecar/alibaba/request_signer.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"
#include "sidecar/http/client.h"

namespace credsync::alibaba {

struct AssumeRoleWithOidcRequest {
  std::string role_arn;
  std::string oidc_provider_arn;
  SecretString oidc_token;  // the raw JWT
  std::string role_session_name;
  std::string policy;  // optional
  absl::Duration duration = absl::Hours(1);
};

struct StsSession {
  AccessKeyCredentials credentials;  // STS.* id, secret and security token
  absl::Time expiration;
  std::string assumed_role_arn;
  std::string request_id;
};

// STS 2015-04-01. Thread-safe.
class StsClient {
 public:
  virtual ~StsClient() = default;
  // AssumeRoleWithOIDC, anonymous (the OIDC token is the credential), sent as
  // the official credentials SDKs send it (POST, parameters in the form
  // body). Errors as in api_error.h. A 200 answer that is not JSON, or lacks
  // AccessKeyId, AccessKeySecret, SecurityToken or a parsable Expiration, is
  // UNAVAILABLE naming the problem: truncation and proxies cause it, so a
  // retry may succeed.
  virtual absl::StatusOr<StsSession> assumeRoleWithOidc(
      const AssumeRoleWithOidcRequest& request) = 0;
};
using StsClientPtr = std::unique_ptr<StsClient>;

// `endpoint` is a URL, "https://sts.aliyuncs.com". Requests are timestamped
// from `time_source`.
// Interprets an AssumeRoleWithOIDC answer exactly as assumeRoleWithOidc()
// does (exposed for tests and fuzzing): non-2xx through api_error.h, a 2xx
// strictly (body at most 1 MiB, JSON, the three credentials non-empty
// printable strings, a parsable Expiration). Values in `redact` never appear
// in an error message.
absl::StatusOr<StsSession> parseAssumeRoleWithOidcResponse(
    const http::Response& response, absl::Span<const absl::string_view> redact = {});

StsClientPtr makeStsClient(http::Client& http, const TimeSource& time_source, std::string endpoint);

}  // namespace credsync::alibaba
