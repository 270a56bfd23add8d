#include "sidecar/http/observed_client.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/json_depth.h"

namespace credsync::http {
namespace {

// Error documents are a few hundred bytes; anything much larger is not one,
// and parsing it on every failed call would cost for nothing.
constexpr size_t kMaxErrorBodyBytes = 64 * 1024;
constexpr int kMaxErrorBodyDepth = 8;

class ObservedClient : public Client {
 public:
  ObservedClient(Client& inner, const TimeSource& time_source, UpstreamObserver observer)
      : inner_(inner), time_source_(time_source), observer_(std::move(observer)) {}

  absl::StatusOr<Response> send(const Request& request) override {
    const MonotonicTime start = time_source_.monotonicTime();
    absl::StatusOr<Response> result = inner_.send(request);
    const absl::Duration latency = absl::FromChrono(time_source_.monotonicTime() - start);
    if (observer_) observer_(request, result, latency);
    return result;
  }

 private:
  Client& inner_;
  const TimeSource& time_source_;
  const UpstreamObserver observer_;
};

// The POP error document's "Code" ({"RequestId", "HostId", "Code",
// "Message", ...}), or empty when the body is not one.
std::string errorCode(absl::string_view body) {
  if (body.empty() || body.size() > kMaxErrorBodyBytes ||
      !jsonDepthWithin(body, kMaxErrorBodyDepth)) {
    return "";
  }
  const nlohmann::json document =
      nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (!document.is_object()) return "";
  const auto code = document.find("Code");
  if (code == document.end() || !code->is_string()) return "";
  return code->get<std::string>();
}

// How STS and KMS say "slow down" (docs/research/sdk-behaviour.md): STS
// answers Throttling.User, "Request was denied due to user flow control"
// (the error table of ACK's RRSA guide); the official secretsmanager clients
// back off on KMS's Rejected.Throttling and ServiceUnavailableTemporary
// (their backoff_utils). Which HTTP status carries them is not documented,
// so the code decides, not the status. ServiceUnavailableTemporary counts
// here because the clients treat it exactly like throttling: wait and retry.
bool isThrottlingCode(absl::string_view code) {
  return absl::StartsWith(code, "Throttling") || code == "Rejected.Throttling" ||
         code == "ServiceUnavailableTemporary";
}

}  // namespace

ClientPtr makeObservedClient(Client& inner, const TimeSource& time_source,
                             UpstreamObserver observer) {
  return std::make_unique<ObservedClient>(inner, time_source, std::move(observer));
}

absl::string_view classifyUpstreamOutcome(const absl::StatusOr<Response>& result) {
  if (!result.ok()) return "network_error";
  const int status = result->status;
  if (status >= 200 && status < 300) return "ok";
  if (status == 429) return "throttled";
  if (status >= 400 && status < 600) {
    if (isThrottlingCode(errorCode(result->body))) return "throttled";
    return status < 500 ? "client_error" : "server_error";
  }
  // 1xx and 3xx are nothing STS or KMS answer with; they come from something
  // in between (a proxy, a captive portal), which is not the caller's fault.
  return "server_error";
}

}  // namespace credsync::http
