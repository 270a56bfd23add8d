// credsync-fleet: N sidecars against STS and KMS quotas, simulated
// (fleet.h). Prints one table row per phase; asserts nothing.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/fleet/fleet.h"
#include "sidecar/common/flags.h"
#include "sidecar/common/logging.h"

namespace credsync::fleet {
namespace {

constexpr char kUsage[] = R"(usage: credsync-fleet [flags]

Simulates N credsync sidecars (the real schedule, backoff, jitter, single
flight, session cache, signing and parsing; simulated time, no sockets)
against one account's STS and KMS quotas, and prints for each N:
  a rollout of every pod at once, for each --startup-jitter;
  with the first --startup-jitter: an hour of steady state, a scheduled
  rotation of the secret every pod reads, and an emergency rotation where
  every pod's app calls Refresh at once.

  --pods LIST                  pod counts (default 1000,10000)
  --startup-jitter LIST        refresh.startup_jitter values (default 30s,0s,10s,60s)
  --sts-per-minute N           AssumeRoleWithOIDC quota per minute (default 500)
  --kms-qps N                  GetSecretValue quota per second (default 100)
  --session-duration D         identity.session_duration (default 1h)
  --interval D                 refresh.interval (default credsync's)
  --retry-max-backoff D        refresh.retry_max_backoff (default credsync's)
  --throttled-max-backoff D    refresh.throttled_max_backoff (default credsync's)
  --callers-per-pod N          app threads calling Refresh per pod (default 4)
  --seed N                     random seed (default 1)
  --help                       this text
)";

struct Options {
  std::vector<int> pods = {1000, 10000};
  std::vector<absl::Duration> startup_jitters = {absl::Seconds(30), absl::ZeroDuration(),
                                                 absl::Seconds(10), absl::Seconds(60)};
  FleetOptions fleet;
  bool help = false;
};

std::string seconds(absl::Duration duration) {
  return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(duration));
}

absl::Status parseDuration(absl::string_view flag, absl::string_view text, absl::Duration& out) {
  if (!absl::ParseDuration(text, &out) || out < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": not a duration such as 30s or 2m: ", text));
  }
  return absl::OkStatus();
}

absl::Status parseCount(absl::string_view flag, absl::string_view text, int& out) {
  if (!absl::SimpleAtoi(text, &out) || out < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": not a whole number of at least 1: ", text));
  }
  return absl::OkStatus();
}

absl::StatusOr<Options> parseOptions(const std::vector<std::string>& args) {
  absl::StatusOr<ParsedFlags> flags = parseFlags(args, {{"pods"},
                                                        {"startup-jitter"},
                                                        {"sts-per-minute"},
                                                        {"kms-qps"},
                                                        {"session-duration"},
                                                        {"interval"},
                                                        {"retry-max-backoff"},
                                                        {"throttled-max-backoff"},
                                                        {"callers-per-pod"},
                                                        {"seed"},
                                                        {"help", false}});
  if (!flags.ok()) return flags.status();
  if (!flags->positional.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument: ", flags->positional.front()));
  }
  Options options;
  options.help = flags->has("help");
  const auto& values = flags->values;
  if (flags->has("pods")) {
    options.pods.clear();
    for (absl::string_view item : absl::StrSplit(values.at("pods"), ',')) {
      int count = 0;
      if (absl::Status status = parseCount("pods", item, count); !status.ok()) return status;
      options.pods.push_back(count);
    }
  }
  if (flags->has("startup-jitter")) {
    options.startup_jitters.clear();
    for (absl::string_view item : absl::StrSplit(values.at("startup-jitter"), ',')) {
      absl::Duration jitter;
      if (absl::Status status = parseDuration("startup-jitter", item, jitter); !status.ok()) {
        return status;
      }
      options.startup_jitters.push_back(jitter);
    }
  }
  FleetOptions& fleet = options.fleet;
  const struct {
    const char* flag;
    int* out;
  } counts[] = {{"sts-per-minute", &fleet.cloud.sts_per_minute},
                {"kms-qps", &fleet.cloud.kms_per_second},
                {"callers-per-pod", &fleet.callers_per_pod}};
  for (const auto& count : counts) {
    if (!flags->has(count.flag)) continue;
    if (absl::Status status = parseCount(count.flag, values.at(count.flag), *count.out);
        !status.ok()) {
      return status;
    }
  }
  const struct {
    const char* flag;
    absl::Duration* out;
  } durations[] = {{"session-duration", &fleet.cloud.session_duration},
                   {"interval", &fleet.refresh.interval},
                   {"retry-max-backoff", &fleet.refresh.retry_max_backoff},
                   {"throttled-max-backoff", &fleet.refresh.throttled_max_backoff}};
  for (const auto& duration : durations) {
    if (!flags->has(duration.flag)) continue;
    if (absl::Status status = parseDuration(duration.flag, values.at(duration.flag), *duration.out);
        !status.ok()) {
      return status;
    }
  }
  if (fleet.cloud.session_duration < absl::Minutes(15) ||
      fleet.refresh.interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        "--session-duration must be at least 15m (as STS requires) and --interval at least 1s");
  }
  if (flags->has("seed") && !absl::SimpleAtoi(values.at("seed"), &fleet.seed)) {
    return absl::InvalidArgumentError(absl::StrCat("--seed: not a number: ", values.at("seed")));
  }
  return options;
}

// Steady state is measured over this many hours (after three unmeasured
// ones) and printed per hour: long sessions renew less than hourly.
constexpr int kSteadyHours = 6;

PhaseReport perHour(PhaseReport report) {
  Traffic& t = report.traffic;
  for (int64_t* count :
       {&t.sts, &t.sts_throttled, &t.kms, &t.kms_throttled, &t.retries, &t.wasted_retries}) {
    *count /= kSteadyHours;
  }
  report.name = absl::StrCat("steady state, per hour (", kSteadyHours, " h mean)");
  return report;
}

void printHeader() {
  std::printf(
      "| phase | pods | startup jitter | done p50 | p99 | max | not done | STS calls | STS "
      "throttled | peak STS/min | mean STS/min | KMS calls | KMS throttled | peak KMS/s | mean "
      "KMS/s | retries | wasted retries |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
}

void printRow(const PhaseReport& report, int pods, absl::Duration jitter) {
  const Traffic& t = report.traffic;
  std::printf(
      "| %s | %d | %s | %s | %s | %s | %d | %lld | %lld | %d | %.0f | %lld | %lld | %d | "
      "%.1f | %lld | %lld |\n",
      report.name.c_str(), pods, seconds(jitter).c_str(), seconds(report.pods.p50).c_str(),
      seconds(report.pods.p99).c_str(), seconds(report.pods.max).c_str(), report.pods.missing,
      static_cast<long long>(t.sts), static_cast<long long>(t.sts_throttled), t.peak_sts_per_minute,
      report.mean_sts_per_minute, static_cast<long long>(t.kms),
      static_cast<long long>(t.kms_throttled), t.peak_kms_per_second, report.mean_kms_per_second,
      static_cast<long long>(t.retries), static_cast<long long>(t.wasted_retries));
  if (!report.refresh_answers.empty()) {
    std::string answers;
    for (const auto& [outcome, count] : report.refresh_answers) {
      absl::StrAppend(&answers, answers.empty() ? "" : ", ", outcome, " ", count);
    }
    std::printf("|  | Refresh answers: %s |\n", answers.c_str());
  }
  std::fflush(stdout);
}

int run(int argc, char** argv) {
  absl::StatusOr<Options> options = parseOptions(std::vector<std::string>(argv + 1, argv + argc));
  if (!options.ok()) {
    std::fprintf(stderr, "credsync-fleet: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  if (options->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  // Every pod logs like a sidecar; only errors would be news here.
  log::setLevel(log::Level::kError);
  const FleetOptions& base = options->fleet;
  std::printf(
      "credsync-fleet: STS %d AssumeRoleWithOIDC/min, KMS %d GetSecretValue/s, sessions %s, "
      "interval %s, retries %s..%s (throttled: up to %s), %d Refresh callers per pod, seed "
      "%llu\n\n",
      base.cloud.sts_per_minute, base.cloud.kms_per_second,
      absl::FormatDuration(base.cloud.session_duration).c_str(),
      absl::FormatDuration(base.refresh.interval).c_str(),
      seconds(base.refresh.retry_initial_backoff).c_str(),
      seconds(base.refresh.retry_max_backoff).c_str(),
      seconds(base.refresh.throttled_max_backoff).c_str(), base.callers_per_pod,
      static_cast<unsigned long long>(base.seed));
  printHeader();
  const absl::Duration horizon = absl::Hours(2);
  for (int pods : options->pods) {
    for (size_t i = 0; i < options->startup_jitters.size(); ++i) {
      FleetOptions fleet_options = base;
      fleet_options.pods = pods;
      fleet_options.refresh.startup_jitter = options->startup_jitters[i];
      absl::StatusOr<std::unique_ptr<Fleet>> fleet = Fleet::create(fleet_options);
      if (!fleet.ok()) {
        std::fprintf(stderr, "credsync-fleet: %s\n", std::string(fleet.status().message()).c_str());
        return 1;
      }
      printRow((*fleet)->rollout(horizon), pods, fleet_options.refresh.startup_jitter);
      if (i != 0) continue;
      printRow(perHour((*fleet)->steadyState(absl::Hours(3), absl::Hours(kSteadyHours))), pods,
               fleet_options.refresh.startup_jitter);
      printRow((*fleet)->scheduledRotation(horizon), pods, fleet_options.refresh.startup_jitter);
      printRow((*fleet)->emergencyRotation(horizon), pods, fleet_options.refresh.startup_jitter);
    }
  }
  return 0;
}

}  // namespace
}  // namespace credsync::fleet

int main(int argc, char** argv) { return credsync::fleet::run(argc, argv); }
