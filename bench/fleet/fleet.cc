#include "bench/fleet/fleet.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/alibaba/kms_client.h"
#include "sidecar/alibaba/sts_client.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/common/random.h"
#include "sidecar/fetch/secret_source.h"
#include "sidecar/identity/oidc_provider.h"
#include "sidecar/sync/refresh_coordinator.h"
#include "sidecar/sync/sync_engine.h"
#include "tests/common/fake_output_writer.h"
#include "tests/common/test_config.h"

namespace credsync::fleet {
namespace {

constexpr char kProfile[] = "default";

absl::Duration quantile(const std::vector<absl::Duration>& sorted, double q) {
  if (sorted.empty()) return absl::ZeroDuration();
  const auto index = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(index, sorted.size() - 1)];
}

std::string outcomeName(const absl::StatusOr<sync::RefreshAnswer>& answer) {
  if (answer.ok()) {
    return answer->outcome == sync::RefreshOutcome::kRefreshed ? "refreshed" : "already_current";
  }
  return absl::StatusCodeToString(answer.status().code());
}

}  // namespace

// One sidecar: credsync's components wired as app::Sidecar wires them, over
// a PodLink instead of libcurl, without threads.
struct Fleet::Pod : public sync::SyncListener {
  Fleet* fleet = nullptr;
  int index = 0;
  RandomPtr random;
  std::unique_ptr<PodLink> link;
  alibaba::StsClientPtr sts;
  identity::CredentialProviderPtr identity;
  alibaba::KmsClientPtr kms;
  fetch::SecretSourcePtr source;
  testing::FakeWriter writer;
  std::unique_ptr<sync::SyncEngine> engine;
  std::unique_ptr<sync::RefreshCoordinator> coordinator;
  absl::Time scheduled = absl::InfiniteFuture();  // of its engine's next round
  bool ready = false;
  std::string key_id;  // in its credentials file

  void onProfileChanged(const sync::ProfileChange& change) override {
    fleet->onKeyChanged(index, change.access_key_id, change.change_time);
  }
};

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::create(const FleetOptions& options) {
  if (options.pods < 1) return absl::InvalidArgumentError("fleet: pods must be at least 1");
  if (options.cloud.sts_per_minute < 1 || options.cloud.kms_per_second < 1) {
    return absl::InvalidArgumentError("fleet: quotas must be at least 1");
  }
  // The projected service-account token, read by every exchange as in a pod.
  const char* tmp = std::getenv("TMPDIR");
  std::string path =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/credsync-fleet-token.XXXXXX");
  const int fd = ::mkstemp(path.data());
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("fleet: cannot create the token file: ", errnoText(errno)));
  }
  const std::string token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmbGVldCJ9.c2lnbmF0dXJl";
  const bool written =
      ::write(fd, token.data(), token.size()) == static_cast<ssize_t>(token.size());
  ::close(fd);
  std::unique_ptr<Fleet> fleet(new Fleet(options, path));
  if (!written) return absl::UnavailableError("fleet: cannot write the token file");
  if (absl::Status started = fleet->start(); !started.ok()) return started;
  return fleet;
}

Fleet::Fleet(const FleetOptions& options, std::string token_file)
    : options_(options), token_file_(std::move(token_file)), model_(options.cloud, clock_) {}

Fleet::~Fleet() {
  // Coordinators answer their waiters on the way out: nothing may schedule
  // events then, so they go first.
  for (auto& pod : pods_) pod->coordinator.reset();
  ::unlink(token_file_.c_str());
}

absl::Status Fleet::start() {
  config_.identity.type = config::IdentityType::kOidc;
  config_.identity.role_arn = "acs:ram::1234567890123456:role/fleet-credsync";
  config_.identity.oidc_provider_arn = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-fleet";
  config_.identity.oidc_token_file = token_file_;
  config_.identity.sts_endpoint = options_.cloud.sts_endpoint;
  config_.identity.session_duration = options_.cloud.session_duration;
  config_.kms.endpoints = {options_.cloud.kms_endpoint};
  config_.refresh = options_.refresh;
  config_.profiles = {testing::profile(kProfile, "acs/ram/user/fleet-app", /*is_default=*/true)};
  fetch::CircuitBreakerOptions breaker;
  breaker.failure_threshold = config_.kms.circuit_failure_threshold;
  breaker.open_for = config_.kms.circuit_open_for;
  breaker.max_open_for = config_.kms.circuit_max_open_for;

  reached_at_.assign(options_.pods, absl::InfiniteFuture());
  pods_.reserve(options_.pods);
  for (int i = 0; i < options_.pods; ++i) {
    auto pod = std::make_unique<Pod>();
    pod->fleet = this;
    pod->index = i;
    pod->random = makeSeededRandom(options_.seed * 1000003 + static_cast<uint64_t>(i));
    pod->link = std::make_unique<PodLink>(model_, i);
    pod->sts = alibaba::makeStsClient(*pod->link, clock_, config_.identity.sts_endpoint);
    pod->identity = identity::makeOidcProvider(config_.identity, *pod->sts, clock_, *pod->random);
    pod->kms =
        alibaba::makeKmsClient(*pod->link, clock_, alibaba::SignatureScheme::kAcs3HmacSha256);
    std::vector<fetch::KmsBackendPtr> backends;
    backends.push_back(fetch::makeOpenApiBackend(*pod->kms, options_.cloud.kms_endpoint));
    pod->source =
        fetch::makeKmsSecretSource(pod->identity.get(), std::move(backends), breaker, clock_);
    pod->engine = std::make_unique<sync::SyncEngine>(config_, *pod->source, pod->writer, clock_,
                                                     *pod->random);
    pod->engine->addListener(pod.get());
    pod->coordinator = std::make_unique<sync::RefreshCoordinator>(
        *pod->engine, config_.refresh, clock_, [this, i] { scheduleEngine(i, now()); }, nullptr,
        sync::RefreshCoordinator::Deadlines::kCallerDriven);
    const absl::Time first_round = pod->engine->status().front().next_refresh;
    pods_.push_back(std::move(pod));
    // Within startup_jitter.
    scheduleEngine(i, first_round);
  }
  return absl::OkStatus();
}

void Fleet::push(absl::Time at, int pod, EventKind kind) {
  events_.push({at, sequence_++, pod, kind});
}

void Fleet::scheduleEngine(int pod, absl::Time at) {
  Pod& state = *pods_[pod];
  at = std::max(at, now());
  if (at >= state.scheduled) return;  // an earlier round is planned already
  state.scheduled = at;
  push(at, pod, EventKind::kEngine);
}

void Fleet::process(const Event& event) {
  Pod& pod = *pods_[event.pod];
  switch (event.kind) {
    case EventKind::kEngine: {
      if (event.at != pod.scheduled) return;  // superseded by an earlier round
      pod.scheduled = absl::InfiniteFuture();
      const absl::Time next = pod.engine->runDue();
      if (!pod.ready && pod.engine->ready()) {
        pod.ready = true;
        if (target_key_.empty() && reached_at_[event.pod] == absl::InfiniteFuture()) {
          reached_at_[event.pod] = now();
          ++reached_;
        }
      }
      scheduleEngine(event.pod, next);
      return;
    }
    case EventKind::kAppCall:
      callRefresh(event.pod);
      return;
    case EventKind::kDeadline:
      pod.coordinator->answerExpired();
      return;
  }
}

void Fleet::callRefresh(int index) {
  Pod& pod = *pods_[index];
  // The app's calls work again once its file holds another key.
  if (pod.key_id != failed_key_) return;
  sync::RefreshRequest request;
  request.profile = kProfile;
  request.failed_access_key_id = failed_key_;
  request.reason = "InvalidAccessKeyId.NotFound";
  push(now() + options_.refresh_timeout, index, EventKind::kDeadline);
  pod.coordinator->start(
      request, options_.refresh_timeout, [this, index](absl::StatusOr<sync::RefreshAnswer> answer) {
        ++refresh_answers_[outcomeName(answer)];
        if (answer.ok()) return;
        const std::optional<absl::Duration> retry_after =
            sync::RefreshCoordinator::retryAfter(answer.status());
        push(now() + retry_after.value_or(options_.app_retry), index, EventKind::kAppCall);
      });
}

void Fleet::onKeyChanged(int pod, const std::string& key_id, absl::Time at) {
  pods_[pod]->key_id = key_id;
  if (!target_key_.empty() && key_id == target_key_ && reached_at_[pod] == absl::InfiniteFuture()) {
    reached_at_[pod] = at;
    ++reached_;
  }
}

void Fleet::runUntil(absl::Time until, int done) {
  while (!events_.empty() && reached_ < done) {
    const Event event = events_.top();
    if (event.at > until) break;
    events_.pop();
    if (event.at > now()) clock_.advance(event.at - now());
    process(event);
  }
  if (reached_ < done && now() < until && until != absl::InfiniteFuture()) {
    clock_.advance(until - now());
  }
}

PhaseReport Fleet::report(std::string name, absl::Time start, absl::Time end,
                          const std::vector<absl::Time>& reached) const {
  PhaseReport report;
  report.name = std::move(name);
  std::vector<absl::Duration> times;
  for (absl::Time at : reached) {
    if (at == absl::InfiniteFuture()) {
      ++report.pods.missing;
    } else {
      times.push_back(at - start);
    }
  }
  std::sort(times.begin(), times.end());
  report.pods.reached = static_cast<int>(times.size());
  report.pods.p50 = quantile(times, 0.5);
  report.pods.p99 = quantile(times, 0.99);
  report.pods.max = times.empty() ? absl::ZeroDuration() : times.back();
  report.span = end - start;
  // Whole seconds, at least one, so the last second's calls count.
  const absl::Time counted_end =
      start + absl::Ceil(std::max(report.span, absl::Seconds(1)), absl::Seconds(1)) +
      absl::Seconds(1);
  report.traffic = model_.traffic(start, counted_end);
  const double seconds = absl::ToDoubleSeconds(counted_end - start);
  report.mean_sts_per_minute = static_cast<double>(report.traffic.sts) * 60 / seconds;
  report.mean_kms_per_second = static_cast<double>(report.traffic.kms) / seconds;
  report.refresh_answers = refresh_answers_;
  return report;
}

PhaseReport Fleet::rollout(absl::Duration horizon) {
  const absl::Time start = now();
  target_key_.clear();
  runUntil(start + horizon, options_.pods);
  const absl::Time end = reached_ == options_.pods ? now() : start + horizon;
  return report("rollout", start, end, reached_at_);
}

absl::Time Fleet::beginPhase() {
  // Calls are counted by whole seconds: a phase starts on a fresh one.
  const absl::Time at = absl::FromUnixSeconds(absl::ToUnixSeconds(now()) + 1);
  target_key_ = "(between phases)";
  reached_ = 0;
  runUntil(at, options_.pods + 1);
  return at;
}

PhaseReport Fleet::scheduledRotation(absl::Duration horizon) {
  beginPhase();
  // Past every pod's next regular fetch, so each has learned the date.
  const absl::Duration notice =
      options_.refresh.interval * (1 + options_.refresh.jitter) + absl::Minutes(1);
  const absl::Time rotation = now() + notice;
  model_.announceRotation(rotation);
  model_.rotateAt(rotation, rotation + absl::Hours(24 * 7));
  target_key_ = model_.keyIdAt(rotation);
  reached_ = 0;
  reached_at_.assign(options_.pods, absl::InfiniteFuture());
  runUntil(rotation, options_.pods + 1);
  runUntil(rotation + horizon, options_.pods);
  const absl::Time end = reached_ == options_.pods ? now() : rotation + horizon;
  return report("scheduled rotation", rotation, end, reached_at_);
}

PhaseReport Fleet::emergencyRotation(absl::Duration horizon) {
  const absl::Time start = beginPhase();
  failed_key_ = model_.keyIdAt(start);
  model_.rotateAt(start, std::nullopt);
  target_key_ = model_.keyIdAt(start);
  reached_ = 0;
  reached_at_.assign(options_.pods, absl::InfiniteFuture());
  refresh_answers_.clear();
  for (int pod = 0; pod < options_.pods; ++pod) {
    for (int caller = 0; caller < options_.callers_per_pod; ++caller) {
      push(start, pod, EventKind::kAppCall);
    }
  }
  runUntil(start + horizon, options_.pods);
  const absl::Time end = reached_ == options_.pods ? now() : start + horizon;
  PhaseReport result = report("emergency rotation", start, end, reached_at_);
  failed_key_.clear();
  return result;
}

PhaseReport Fleet::steadyState(absl::Duration warmup, absl::Duration span) {
  beginPhase();
  target_key_ = "(none)";  // nothing is reached: run the whole span
  runUntil(now() + warmup, options_.pods + 1);
  const absl::Time start = now();
  runUntil(start + span, options_.pods + 1);
  std::vector<absl::Time> none;
  return report("steady state", start, start + span, none);
}

}  // namespace credsync::fleet
