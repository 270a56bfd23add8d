#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/common/time_source.h"
#include "sidecar/http/client.h"

namespace credsync::http {

// Told about every call after it completes: the request as sent, what came
// back (a response of any status, or the transport error) and how long
// send() took on the monotonic clock. Runs on the sending thread, possibly on
// many threads at once, so it must be thread-safe and quick. The request
// carries secrets in headers and query: an observer reads `operation`, not
// the rest.
using UpstreamObserver = std::function<void(
    const Request& request, const absl::StatusOr<Response>& result, absl::Duration latency)>;

// Wraps `inner` so that every send() is timed and reported to `observer`;
// the result is passed through untouched. `inner` and `time_source` must
// outlive the returned client. Thread-safe as `inner` is.
ClientPtr makeObservedClient(Client& inner, const TimeSource& time_source,
                             UpstreamObserver observer);

// Whether an HTTP answer (status, body) is the service asking the caller to
// slow down. The service client knows its error codes
// (alibaba::isThrottlingResponse); the HTTP layer does not.
using ThrottleRule = std::function<bool(int http_status, absl::string_view body)>;

// The outcome label of an upstream call, one of:
//   "ok"             2xx;
//   "throttled"      429, or a 4xx/5xx that `is_throttled` says is throttling;
//   "client_error"   any other 4xx;
//   "server_error"   any other 5xx, and statuses no API answers with (1xx,
//                    3xx: redirects are not followed);
//   "network_error"  no HTTP answer at all (a non-OK result).
absl::string_view classifyUpstreamOutcome(const absl::StatusOr<Response>& result,
                                          const ThrottleRule& is_throttled);

}  // namespace credsync::http
