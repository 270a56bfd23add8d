#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

// The failure vocabulary that fetch, sync and server share, without knowing
// which cloud answered: whether a retry may help, and the upstream's own
// error code ("Forbidden.NoPermission"), which travels as a status payload so
// that callers can both print it and branch on it. Which codes a service
// uses, and what they mean, is the service client's business
// (sidecar/alibaba/api_error.h).
namespace credsync {

// The status payload type URL under which the upstream code travels.
inline constexpr absl::string_view kUpstreamCodePayloadUrl = "type.credsync.dev/alibaba.code";

// `status` carrying `code` as its upstream code (nothing when `code` is empty).
absl::Status withUpstreamCode(absl::Status status, absl::string_view code);

// The upstream code carried by a status, if any.
std::optional<std::string> upstreamCode(const absl::Status& status);

// The status payload type URL marking an upstream's "slow down" answer.
inline constexpr absl::string_view kThrottledPayloadUrl = "type.credsync.dev/throttled";

// `status` marked as the upstream asking callers to slow down (a quota or
// flow-control answer, HTTP 429): retries back off further than after an
// outage, since every retry spends the quota that is exhausted.
absl::Status markThrottled(absl::Status status);

// Whether `status` carries markThrottled()'s mark.
bool isThrottled(const absl::Status& status);

// `status` with "<context>: " put in front of its message, code and payloads
// (the upstream code) kept. OK stays OK.
absl::Status withContext(const absl::Status& status, absl::string_view context);

// Whether retrying the same call later may succeed: UNAVAILABLE and
// DEADLINE_EXCEEDED (network, timeouts, throttling, 5xx) and RESOURCE_EXHAUSTED.
bool isRetryable(const absl::Status& status);

}  // namespace credsync
