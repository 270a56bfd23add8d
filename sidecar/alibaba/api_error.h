#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "sidecar/common/upstream_error.h"

// Alibaba Cloud's error answers, turned into absl::Status. The upstream code
// ("Forbidden.NoPermission") travels in the message and as a status payload
// (sidecar/common/upstream_error.h, which also says what is retryable), so
// callers can both print it and branch on it.
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
//   UNAVAILABLE          isThrottlingCode(), ServiceUnavailable*, InternalFailure,
//                        InternalError, 5xx, 429
//   PERMISSION_DENIED    Forbidden.*, NoPermission, AuthenticationFail.NoPermission
//   NOT_FOUND            Forbidden.ResourceNotFound, EntityNotExist.*
//   UNAUTHENTICATED      InvalidAccessKeyId.*, SignatureDoesNotMatch, InvalidSecurityToken.*,
//                        AuthenticationFail.OIDCToken.*; the KMS instance API's
//                        Unauthorized (unknown client key) and SignatureNotMatch
//   INVALID_ARGUMENT     MissingParameter, InvalidParameter.*, other 4xx
// Message: "<action>: <Code>: <Message> (RequestId <id>)". `action` names
// the call, e.g. "KMS GetSecretValue". A quota answer (Throttling,
// Throttling.*, *.Throttling, or HTTP 429) is also markThrottled()
// (sidecar/common/upstream_error.h), so schedulers back off further than
// after an outage; ServiceUnavailableTemporary is not: it is a 503.
absl::Status statusFromApiError(absl::string_view action, const ApiErrorInfo& error);

// The status for a non-2xx HTTP answer: parseApiErrorBody, then
// statusFromApiError; a body that is no error document still yields a status
// by the HTTP code alone ("<action>: HTTP 502: ...").
absl::Status statusFromErrorResponse(absl::string_view action, int http_status,
                                     absl::string_view body,
                                     absl::Span<const absl::string_view> redact = {});

// How STS and KMS say "slow down": STS answers Throttling.User ("Request
// was denied due to user flow control", the error table of ACK's RRSA
// guide), ECS Throttling and Throttling.Api, KMS Rejected.Throttling; the
// official secretsmanager clients wait and retry on those and on
// ServiceUnavailableTemporary exactly alike (their backoff_utils). So:
// Throttling and Throttling.*, *.Throttling, ServiceUnavailableTemporary.
// Which HTTP status carries them is not documented, so the code decides. The one throttling rule:
// statusFromApiError() maps these to UNAVAILABLE, and the HTTP layer's outcome metric counts them
// as throttled through isThrottlingResponse().
bool isThrottlingCode(absl::string_view code);

// The quota answers among them, Throttling, Throttling.* and *.Throttling:
// "slow down", which statusFromApiError() marks (markThrottled) so retries
// back off further; ServiceUnavailableTemporary is a 503 and is not one.
bool isQuotaCode(absl::string_view code);

// Whether an HTTP answer is an Alibaba Cloud error document (JSON or XML, at
// most 64 KiB) whose code isThrottlingCode(): the rule the HTTP layer's
// outcome metric is handed (http::classifyUpstreamOutcome).
bool isThrottlingResponse(int http_status, absl::string_view body);

}  // namespace credsync::alibaba
