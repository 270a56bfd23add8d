#include "sidecar/common/upstream_error.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace credsync {

absl::Status withUpstreamCode(absl::Status status, absl::string_view code) {
  if (!status.ok() && !code.empty()) status.SetPayload(kUpstreamCodePayloadUrl, absl::Cord(code));
  return status;
}

std::optional<std::string> upstreamCode(const absl::Status& status) {
  const auto payload = status.GetPayload(kUpstreamCodePayloadUrl);
  if (!payload) return std::nullopt;
  return std::string(*payload);
}

absl::Status markThrottled(absl::Status status) {
  if (!status.ok()) status.SetPayload(kThrottledPayloadUrl, absl::Cord());
  return status;
}

bool isThrottled(const absl::Status& status) {
  return status.GetPayload(kThrottledPayloadUrl).has_value();
}

absl::Status withContext(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  absl::Status result(status.code(), absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload([&result](absl::string_view type_url, const absl::Cord& payload) {
    result.SetPayload(type_url, payload);
  });
  return result;
}

bool isRetryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

}  // namespace credsync
