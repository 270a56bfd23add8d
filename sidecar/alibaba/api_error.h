#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

// Alibaba Cloud's error answers, turned into absl::Status. The upstream code
// ("Forbidden.NoPermission") travels in the message and as a status payload,
// so callers can both print it and branch on it.
namespace credsync::alibaba {

struct ApiErrorInfo {
  int http_status = 0;
  std::string code;
  std::string message;
  std::string request_id;
};

// Parses a POP error body (JSON {"Code", "Message", "RequestId", ...}, or the
// XML <Error> form). nullopt when the body is not an error document. The
// message is cut to a bounded length and stripped of control characters.
std::optional<ApiErrorInfo> parseApiErrorBody(absl::string_view body, int http_status);

// The status for an upstream error, by abseil's guidance:
//   UNAVAILABLE          throttling, ServiceUnavailableTemporary, InternalFailure, 5xx
//   PERMISSION_DENIED    Forbidden.*, NoPermission, AuthenticationFail.NoPermission
//   NOT_FOUND            Forbidden.ResourceNotFound, EntityNotExist.*
//   UNAUTHENTICATED      InvalidAccessKeyId.*, SignatureDoesNotMatch, InvalidSecurityToken.*,
//                        AuthenticationFail.OIDCToken.*
//   INVALID_ARGUMENT     MissingParameter, InvalidParameter.*, other 4xx
// Message: "<action>: <Code>: <Message> (RequestId <id>)". `action` names
// the call, e.g. "KMS GetSecretValue".
absl::Status statusFromApiError(absl::string_view action, const ApiErrorInfo& error);

// The upstream code carried by a status made above, if any.
std::optional<std::string> upstreamCode(const absl::Status& status);

// Whether retrying the same call later may succeed: UNAVAILABLE and
// DEADLINE_EXCEEDED (network, timeouts, throttling, 5xx) and RESOURCE_EXHAUSTED.
bool isRetryable(const absl::Status& status);

}  // namespace credsync::alibaba
