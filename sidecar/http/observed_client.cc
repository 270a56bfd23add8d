#include "sidecar/http/observed_client.h"

#include <memory>
#include <utility>

namespace credsync::http {
namespace {

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

}  // namespace

ClientPtr makeObservedClient(Client& inner, const TimeSource& time_source,
                             UpstreamObserver observer) {
  return std::make_unique<ObservedClient>(inner, time_source, std::move(observer));
}

absl::string_view classifyUpstreamOutcome(const absl::StatusOr<Response>& result,
                                          const ThrottleRule& is_throttled) {
  if (!result.ok()) return "network_error";
  const int status = result->status;
  if (status >= 200 && status < 300) return "ok";
  if (status == 429) return "throttled";
  if (status >= 400 && status < 600) {
    if (is_throttled && is_throttled(status, result->body)) return "throttled";
    return status < 500 ? "client_error" : "server_error";
  }
  // 1xx and 3xx are nothing STS or KMS answer with; they come from something
  // in between (a proxy, a captive portal), which is not the caller's fault.
  return "server_error";
}

}  // namespace credsync::http
