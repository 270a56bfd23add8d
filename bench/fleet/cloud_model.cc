#include "bench/fleet/cloud_model.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace credsync::fleet {
namespace {

std::string utc(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

http::Response jsonResponse(int status, const nlohmann::json& body) {
  http::Response response;
  response.status = status;
  response.headers = {{"Content-Type", "application/json;charset=utf-8"}};
  response.body = body.dump();
  return response;
}

}  // namespace

bool SlidingWindowLimiter::tryAccept(absl::Time now) {
  while (!accepted_.empty() && accepted_.front() <= now - window_) accepted_.pop_front();
  if (static_cast<int>(accepted_.size()) >= limit_) return false;
  accepted_.push_back(now);
  return true;
}

CloudModel::CloudModel(CloudModelOptions options, const TimeSource& time_source)
    : options_(std::move(options)),
      time_source_(time_source),
      sts_limiter_(options_.sts_per_minute, absl::Minutes(1)),
      kms_limiter_(options_.kms_per_second, absl::Seconds(1)) {
  versions_.push_back({absl::InfinitePast(), 1, std::nullopt});
}

void CloudModel::rotateAt(absl::Time at, std::optional<absl::Time> next_rotation_date) {
  versions_.push_back({at, versions_.back().number + 1, next_rotation_date});
}

void CloudModel::announceRotation(absl::Time next_rotation_date) {
  versions_[versionIndexAt(time_source_.systemTime())].next_rotation_date = next_rotation_date;
}

size_t CloudModel::versionIndexAt(absl::Time time) const {
  auto after = std::upper_bound(versions_.begin(), versions_.end(), time,
                                [](absl::Time t, const Version& v) { return t < v.from; });
  return static_cast<size_t>(std::prev(after) - versions_.begin());
}

const CloudModel::Version& CloudModel::versionAt(absl::Time time) const {
  return versions_[versionIndexAt(time)];
}

std::string CloudModel::keyIdAt(absl::Time time) const {
  return absl::StrFormat("LTAI5tFleetKey%06d", versionAt(time).number);
}

http::Response CloudModel::answer(int pod, const http::Request& request) {
  const absl::Time now = time_source_.systemTime();
  ++requests_;
  if (absl::StartsWith(request.url, options_.sts_endpoint)) return admit(pod, Service::kSts, now);
  if (absl::StartsWith(request.url, options_.kms_endpoint)) return admit(pod, Service::kKms, now);
  return error(404, "InvalidAction.NotFound", "no such endpoint in the fleet model");
}

http::Response CloudModel::admit(int pod, Service service, absl::Time now) {
  const bool to_sts = service == Service::kSts;
  const bool accepted = (to_sts ? sts_limiter_ : kms_limiter_).tryAccept(now);
  count(pod, service, !accepted, now);
  if (accepted) return to_sts ? sts(now) : kms(now);
  // The codes and messages the services answer with.
  return to_sts ? error(400, "Throttling.User", "Request was denied due to user flow control.")
                : error(400, "Rejected.Throttling", "QPS Limit Exceeded");
}

http::Response CloudModel::error(int status, absl::string_view code, absl::string_view message) {
  return jsonResponse(status, {{"RequestId", absl::StrCat("fleet-", requests_)},
                               {"Code", std::string(code)},
                               {"Message", std::string(message)}});
}

http::Response CloudModel::sts(absl::Time now) {
  nlohmann::json credentials = {
      {"AccessKeyId", absl::StrFormat("STS.Fleet%010d", requests_)},
      {"AccessKeySecret", absl::StrFormat("FleetSessionSecret%014d", requests_)},
      {"SecurityToken", absl::StrFormat("CAISFleetSessionToken%020d", requests_)},
      {"Expiration", utc(now + options_.session_duration)}};
  return jsonResponse(200, {{"RequestId", absl::StrCat("fleet-", requests_)},
                            {"AssumedRoleUser",
                             {{"Arn", "acs:ram::1234567890123456:role/fleet/credsync"},
                              {"AssumedRoleId", "312345678901234567:credsync"}}},
                            {"Credentials", credentials}});
}

http::Response CloudModel::kms(absl::Time now) {
  const Version& version = versionAt(now);
  const nlohmann::json secret_data = {
      {"AccessKeyId", keyIdAt(now)},
      {"AccessKeySecret", absl::StrFormat("FleetManagedSecret%012d", version.number)},
      {"GenerateTimestamp", utc(version.from == absl::InfinitePast() ? now : version.from)}};
  nlohmann::json body = {{"RequestId", absl::StrCat("fleet-", requests_)},
                         {"SecretName", "acs/ram/user/fleet-app"},
                         {"SecretType", "RAMCredentials"},
                         {"SecretData", secret_data.dump()},
                         {"SecretDataType", "text"},
                         {"VersionId", absl::StrFormat("v%06d", version.number)},
                         {"VersionStages", {{"VersionStage", {"ACSCurrent"}}}},
                         {"CreateTime", "2025-12-01T00:00:00Z"}};
  if (version.next_rotation_date) body["NextRotationDate"] = utc(*version.next_rotation_date);
  return jsonResponse(200, body);
}

void CloudModel::count(int pod, Service service, bool throttled, absl::Time now) {
  const int64_t second = absl::ToUnixSeconds(now);
  SecondCounts& counts = seconds_[second];
  PodHistory& history = pods_[pod];
  bool& last_throttled =
      service == Service::kSts ? history.last_sts_throttled : history.last_kms_throttled;
  if (last_throttled) {
    Retries& retries = retries_[second];
    ++retries.retries;
    if (throttled) ++retries.wasted;
  }
  last_throttled = throttled;
  if (service == Service::kSts) {
    ++counts.sts;
    if (throttled) ++counts.sts_throttled;
  } else {
    ++counts.kms;
    if (throttled) ++counts.kms_throttled;
  }
}

Traffic CloudModel::traffic(absl::Time from, absl::Time to) const {
  Traffic traffic;
  const int64_t first = absl::ToUnixSeconds(from);
  const int64_t last = absl::ToUnixSeconds(to);  // exclusive
  std::map<int64_t, int> sts_by_minute;
  for (auto it = seconds_.lower_bound(first); it != seconds_.end() && it->first < last; ++it) {
    const SecondCounts& counts = it->second;
    traffic.sts += counts.sts;
    traffic.sts_throttled += counts.sts_throttled;
    traffic.kms += counts.kms;
    traffic.kms_throttled += counts.kms_throttled;
    traffic.peak_kms_per_second = std::max(traffic.peak_kms_per_second, counts.kms);
    sts_by_minute[(it->first - first) / 60] += counts.sts;
  }
  for (const auto& [minute, calls] : sts_by_minute) {
    traffic.peak_sts_per_minute = std::max(traffic.peak_sts_per_minute, calls);
  }
  for (auto it = retries_.lower_bound(first); it != retries_.end() && it->first < last; ++it) {
    traffic.retries += it->second.retries;
    traffic.wasted_retries += it->second.wasted;
  }
  return traffic;
}

}  // namespace credsync::fleet
