#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

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

// The status payload type URL under which the upstream code travels.
inline constexpr absl::string_view kUpstreamCodePayloadUrl = "type.credsync.dev/alibaba.code";

// Parses a POP error body (JSON {"Code", "Message", "RequestId", ...}, or the
// XML <Error> form). nullopt when the body is not an error document. The
// message is cut to a bounded length and stripped of control characters.
// Every value in `redact` (the secrets the failed request carried) is replaced
// by "***" wherever it appears, raw or percent-encoded, and a "string to
// sign" echoed by SignatureDoesNotMatch is dropped: both may hold a token.
std::optional<ApiErrorInfo> parseApiErrorBody(absl::string_view body, int http_status,
                                              absl::Span<const absl::string_view> redact = {});

// Applies parseApiErrorBody's cleaning (redaction, bounded printable message,
// identifier-only code and request id, no echoed string to sign) to an error
// read from another encoding: the KMS instance API's protobuf Error.
ApiErrorInfo sanitizeApiError(ApiErrorInfo error, absl::Span<const absl::string_view> redact = {});

// The status for an upstream error, by abseil's guidance:
//   UNAVAILABLE          throttling, ServiceUnavailableTemporary, InternalFailure, 5xx
//   PERMISSION_DENIED    Forbidden.*, NoPermission, AuthenticationFail.NoPermission
//   NOT_FOUND            Forbidden.ResourceNotFound, EntityNotExist.*
//   UNAUTHENTICATED      InvalidAccessKeyId.*, SignatureDoesNotMatch, InvalidSecurityToken.*,
//                        AuthenticationFail.OIDCToken.*; the KMS instance API's
//                        Unauthorized (unknown client key) and SignatureNotMatch
//   INVALID_ARGUMENT     MissingParameter, InvalidParameter.*, other 4xx
// Message: "<action>: <Code>: <Message> (RequestId <id>)". `action` names
// the call, e.g. "KMS GetSecretValue".
absl::Status statusFromApiError(absl::string_view action, const ApiErrorInfo& error);

// The status for a non-2xx HTTP answer: parseApiErrorBody, then
// statusFromApiError; a body that is no error document still yields a status
// by the HTTP code alone ("<action>: HTTP 502: ...").
absl::Status statusFromErrorResponse(absl::string_view action, int http_status,
                                     absl::string_view body,
                                     absl::Span<const absl::string_view> redact = {});

// `status` with "<context>: " put in front of its message, code and payloads
// (the upstream code) kept. OK stays OK.
absl::Status withContext(const absl::Status& status, absl::string_view context);

// The upstream code carried by a status made above, if any.
std::optional<std::string> upstreamCode(const absl::Status& status);

// Whether retrying the same call later may succeed: UNAVAILABLE and
// DEADLINE_EXCEEDED (network, timeouts, throttling, 5xx) and RESOURCE_EXHAUSTED.
bool isRetryable(const absl::Status& status);

}  // namespace credsync::alibaba
