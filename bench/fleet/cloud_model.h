#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sidecar/common/time_source.h"
#include "sidecar/http/client.h"

// STS and KMS as a fleet of sidecars sees them: one account's quotas, and
// one secret that every pod reads, answered in the services' own wire
// format so that credsync's real clients parse every answer. Simulated
// time, no sockets, no latency.
namespace credsync::fleet {

struct CloudModelOptions {
  // AssumeRoleWithOIDC calls accepted per sliding minute. Alibaba's ACK
  // guide for per-pod agents warns of throttling above about 500.
  int sts_per_minute = 500;
  // GetSecretValue calls accepted per sliding second: the KMS QPS quota of
  // the account (or of the KMS instance's shared gateway). Not a documented
  // figure; set your own.
  int kms_per_second = 100;
  // The sessions AssumeRoleWithOIDC hands out.
  absl::Duration session_duration = absl::Hours(1);
  std::string sts_endpoint = "https://sts.fleet.invalid";
  std::string kms_endpoint = "https://kms.fleet.invalid";
};

// Accepts at most `limit` events in any window of `window`; refused events
// do not count (a throttled call costs the caller, not the quota).
class SlidingWindowLimiter {
 public:
  SlidingWindowLimiter(int limit, absl::Duration window) : limit_(limit), window_(window) {}
  bool tryAccept(absl::Time now);

 private:
  const int limit_;
  const absl::Duration window_;
  std::deque<absl::Time> accepted_;
};

enum class Service { kSts, kKms };

// The calls of one second of simulated time.
struct SecondCounts {
  int sts = 0;
  int sts_throttled = 0;
  int kms = 0;
  int kms_throttled = 0;
};

// Totals over a span of simulated time.
struct Traffic {
  int64_t sts = 0;
  int64_t sts_throttled = 0;
  int64_t kms = 0;
  int64_t kms_throttled = 0;
  // Calls a pod made after its previous call to the same service was
  // throttled, and those of them that were throttled again.
  int64_t retries = 0;
  int64_t wasted_retries = 0;
  int peak_sts_per_minute = 0;  // over any whole minute of the span
  int peak_kms_per_second = 0;
};

// Not thread-safe: the fleet drives it from one thread.
class CloudModel {
 public:
  CloudModel(CloudModelOptions options, const TimeSource& time_source);

  // From `at` on, the secret holds a new AccessKey, and GetSecretValue
  // reports `next_rotation_date` (nullopt: none, as after a rotation made
  // by hand). Rotations must be added in time order.
  void rotateAt(absl::Time at, std::optional<absl::Time> next_rotation_date);
  // Makes the version current now report `next_rotation_date`, as setting
  // a rotation schedule on the secret does.
  void announceRotation(absl::Time next_rotation_date);
  // The AccessKey id the secret holds at `time`.
  std::string keyIdAt(absl::Time time) const;

  // Answers one call of pod `pod`: STS AssumeRoleWithOIDC or KMS
  // GetSecretValue by the URL's endpoint, or a throttling error.
  http::Response answer(int pod, const http::Request& request);

  // The calls made in [from, to).
  Traffic traffic(absl::Time from, absl::Time to) const;
  const CloudModelOptions& options() const { return options_; }

 private:
  struct Version {
    absl::Time from;
    int number = 0;
    std::optional<absl::Time> next_rotation_date;
  };
  struct PodHistory {
    bool last_sts_throttled = false;
    bool last_kms_throttled = false;
  };
  struct Retries {
    int64_t retries = 0;
    int64_t wasted = 0;
  };

  size_t versionIndexAt(absl::Time time) const;
  const Version& versionAt(absl::Time time) const;
  // Counts the call and answers it, or refuses it above the quota.
  http::Response admit(int pod, Service service, absl::Time now);
  http::Response error(int status, absl::string_view code, absl::string_view message);
  http::Response sts(absl::Time now);
  http::Response kms(absl::Time now);
  void count(int pod, Service service, bool throttled, absl::Time now);

  const CloudModelOptions options_;
  const TimeSource& time_source_;
  SlidingWindowLimiter sts_limiter_;
  SlidingWindowLimiter kms_limiter_;
  std::vector<Version> versions_;
  std::map<int, PodHistory> pods_;
  std::map<int64_t, SecondCounts> seconds_;  // by Unix second
  std::map<int64_t, Retries> retries_;       // by Unix second
  uint64_t requests_ = 0;
};

// One pod's transport: every call goes to the model, tagged with the pod.
class PodLink : public http::Client {
 public:
  PodLink(CloudModel& model, int pod) : model_(model), pod_(pod) {}
  absl::StatusOr<http::Response> send(const http::Request& request) override {
    return model_.answer(pod_, request);
  }

 private:
  CloudModel& model_;
  const int pod_;
};

}  // namespace credsync::fleet
