#include "sidecar/sync/sync_engine.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/upstream_error.h"
#include "sidecar/output/credentials_ini.h"
#include "sidecar/sync/published_set.h"

namespace credsync::sync {
namespace {

constexpr const char* kCredentialsFile = config::kCredentialsIniFile;
// Full jitter can draw arbitrarily small waits; this keeps a failing
// upstream from being hit in a tight loop.
constexpr absl::Duration kMinimumRetryDelay = absl::Milliseconds(100);

std::string formatTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

bool isGeneric(const config::ProfileConfig& profile) {
  return profile.kind == config::ProfileKind::kGeneric;
}

// Whether a fetch brought something the files do not hold yet.
bool differs(const fetch::ManagedCredential& held, const fetch::ManagedCredential& fetched) {
  if (fetched.kind == config::ProfileKind::kGeneric) {
    if (held.version_id != fetched.version_id || held.files.size() != fetched.files.size()) {
      return true;
    }
    for (auto a = held.files.begin(), b = fetched.files.begin(); a != held.files.end(); ++a, ++b) {
      if (a->first != b->first || !(a->second == b->second)) return true;
    }
    return false;
  }
  return held.access_key_id != fetched.access_key_id ||
         !(held.access_key_secret == fetched.access_key_secret);
}

}  // namespace

absl::Time RefreshSchedule::first(absl::Time now) {
  return now + random_.uniformDuration(config_.startup_jitter);
}

absl::Time RefreshSchedule::slow(absl::Time now) {
  // interval * (1 +- jitter), drawn uniformly.
  const double factor = 1.0 + config_.jitter * (2.0 * random_.uniform() - 1.0);
  return now + config_.interval * factor;
}

absl::Time RefreshSchedule::afterSuccess(absl::Time now,
                                         std::optional<absl::Time> next_rotation_date) {
  const absl::Time regular = slow(now);
  if (!next_rotation_date || *next_rotation_date <= now) return regular;
  const absl::Time after_rotation = *next_rotation_date + config_.rotation_delay +
                                    random_.uniformDuration(config_.rotation_jitter);
  return std::min(regular, after_rotation);
}

absl::Time RefreshSchedule::afterFailure(absl::Time now, int consecutive_failures, bool retryable) {
  if (!retryable) return slow(now);
  // min(cap, base * 2^(n-1)), with the exponent bounded so it cannot overflow.
  const int exponent = std::min(consecutive_failures - 1, 30);
  const absl::Duration ceiling = std::min(
      config_.retry_max_backoff, config_.retry_initial_backoff * std::ldexp(1.0, exponent));
  return now + std::max(kMinimumRetryDelay, random_.uniformDuration(ceiling));
}

absl::Time RefreshSchedule::afterThrottling(absl::Time now, absl::Duration& previous_delay) {
  const absl::Duration base = config_.retry_initial_backoff;
  const absl::Duration upper =
      std::min(config_.throttled_max_backoff, std::max(base, previous_delay) * 3);
  previous_delay = base + random_.uniformDuration(upper - base);
  return now + std::max(kMinimumRetryDelay, previous_delay);
}

SyncEngine::SyncEngine(const config::Config& config, fetch::SecretSource& source,
                       output::OutputWriter& writer, const TimeSource& time_source, Random& random)
    : config_(config),
      source_(source),
      writer_(writer),
      time_source_(time_source),
      schedule_(config_.refresh, random) {
  const absl::Time now = time_source_.systemTime();
  MutexLock lock(&mutex_);
  for (const config::ProfileConfig& profile : config_.profiles) {
    ProfileState state;
    state.config = profile;
    state.status.name = profile.name;
    state.status.secret_name = profile.secret_name;
    state.status.kind = profile.kind;
    state.status.required = profile.required;
    state.status.next_refresh = schedule_.first(now);
    profiles_.push_back(std::move(state));
  }
}

absl::Time SyncEngine::runDue() {
  const absl::Time now = time_source_.systemTime();
  std::vector<config::ProfileConfig> due;
  {
    MutexLock lock(&mutex_);
    for (ProfileState& state : profiles_) {
      if (state.status.next_refresh <= now) {
        due.push_back(state.config);
        state.requests_covered = state.refresh_requests;
        ++state.fetches_started;
        state.fetch_in_flight = true;
      }
    }
  }
  // Fetch outside the lock: status and probes stay answerable meanwhile.
  std::vector<std::pair<std::string, absl::StatusOr<fetch::ManagedCredential>>> results;
  for (const config::ProfileConfig& profile : due) {
    absl::StatusOr<fetch::ManagedCredential> fetched = source_.fetch(profile);
    // A key the file cannot hold (characters some SDK's parser would read
    // differently) is a failed fetch of this profile: the last good key
    // stays, status says why, and the slow schedule applies, rather than a
    // success whose publish then fails for every profile.
    if (fetched.ok() && !isGeneric(profile)) {
      if (absl::Status writable = output::validateIniCredential(
              profile.name, fetched->access_key_id, fetched->access_key_secret);
          !writable.ok()) {
        fetched = absl::InvalidArgumentError(
            absl::StrCat("KMS returned a key credentials.ini cannot hold (version ",
                         fetched->version_id, "): ", writable.message()));
      }
    }
    results.emplace_back(profile.name, std::move(fetched));
  }

  absl::Time next;
  const uint64_t generation_before = writer_.generation();
  {
    MutexLock lock(&mutex_);
    next = recordRoundLocked(results);
  }
  // Outside the lock, so listeners may call into the engine. A round that
  // only retried a failed publish fetched nothing but changed the file.
  if (!due.empty() || writer_.generation() != generation_before) {
    for (SyncListener* listener : listeners_) listener->onRoundFinished();
  }
  return next;
}

absl::Time SyncEngine::recordRoundLocked(
    std::vector<std::pair<std::string, absl::StatusOr<fetch::ManagedCredential>>>& results) {
  const absl::Time done = time_source_.systemTime();
  std::vector<std::string> changed;
  for (auto& [name, result] : results) {
    ProfileState* state = findLocked(name);
    ProfileStatus& status = state->status;
    const bool requested_meanwhile = state->refresh_requests != state->requests_covered;
    if (result.ok()) {
      const bool is_new = !state->credential || differs(*state->credential, *result);
      if (status.consecutive_failures > 0) {
        log::info("fetch recovered",
                  {{"profile", name}, {"failures", status.consecutive_failures}});
      }
      status.last_success = done;
      status.last_error = absl::OkStatus();
      status.consecutive_failures = 0;
      state->throttled_delay = absl::ZeroDuration();
      status.version_id = result->version_id;
      status.next_rotation_date = result->next_rotation_date;
      status.next_refresh = schedule_.afterSuccess(done, result->next_rotation_date);
      if (requested_meanwhile) status.next_refresh = done;
      if (is_new) {
        changed.push_back(name);
        state->credential = *std::move(result);
      }
      log::debug("fetched", {{"profile", name},
                             {"access_key_id", state->credential->access_key_id},
                             {"version_id", state->credential->version_id},
                             {"changed", is_new},
                             {"next_refresh", formatTime(status.next_refresh)}});
    } else {
      const absl::Status& error = result.status();
      const bool retryable = isRetryable(error);
      ++status.consecutive_failures;
      status.last_error = error;
      status.next_refresh =
          retryable && isThrottled(error)
              ? schedule_.afterThrottling(done, state->throttled_delay)
              : schedule_.afterFailure(done, status.consecutive_failures, retryable);
      if (requested_meanwhile) status.next_refresh = done;
      // Degraded mode is never silent: say whether the last good key stays.
      const std::string next_refresh = formatTime(status.next_refresh);
      log::write(retryable ? log::Level::kWarn : log::Level::kError, "fetch failed",
                 {{"profile", name},
                  {"error", error},
                  {"retryable", retryable},
                  {"throttled", isThrottled(error)},
                  {"failures", status.consecutive_failures},
                  {"next_refresh", next_refresh},
                  {"serving_last_good_key", state->credential.has_value()}});
    }
  }
  unpublished_.insert(changed.begin(), changed.end());
  if (!unpublished_.empty() && (!changed.empty() || done >= publish_retry_at_)) {
    const std::vector<std::string> pending(unpublished_.begin(), unpublished_.end());
    if (absl::Status published = publishLocked(done, pending); published.ok()) {
      unpublished_.clear();
      publish_failures_ = 0;
    } else {
      // The keys are in memory, only the write failed: retry the write with
      // backoff, without asking KMS again.
      ++publish_failures_;
      publish_retry_at_ = schedule_.afterFailure(done, publish_failures_, /*retryable=*/true);
      log::error("publish failed; the previous file stays in place",
                 {{"error", published},
                  {"failures", publish_failures_},
                  {"next_attempt", formatTime(publish_retry_at_)}});
    }
  }
  // Completion is visible together with the file it produced: a waiting
  // Refresh wakes to the key that is actually on disk.
  for (auto& [name, result] : results) {
    ProfileState* state = findLocked(name);
    state->fetch_in_flight = false;
    state->fetches_completed = state->fetches_started;
    state->last_fetch = result.status();
    for (SyncListener* listener : listeners_) listener->onFetchCompleted(name, result.status());
  }
  if (const bool ready = readyLocked(); ready != logged_ready_) {
    log::write(ready ? log::Level::kInfo : log::Level::kWarn, ready ? "ready" : "not ready");
    logged_ready_ = ready;
  }
  absl::Time next = unpublished_.empty() ? absl::InfiniteFuture() : publish_retry_at_;
  for (const ProfileState& state : profiles_) next = std::min(next, state.status.next_refresh);
  return next;
}

absl::Status SyncEngine::publishLocked(absl::Time now, const std::vector<std::string>& changed) {
  std::vector<output::IniProfile> sections;
  std::map<std::string, SecretString> files;
  for (const ProfileState& state : profiles_) {
    if (!state.credential) continue;
    if (isGeneric(state.config)) {
      // Names cannot clash: configuration keeps prefixes and names apart.
      files.insert(state.credential->files.begin(), state.credential->files.end());
      continue;
    }
    auto section = [&](const std::string& name) {
      return output::IniProfile{name, state.credential->access_key_id,
                                state.credential->access_key_secret};
    };
    // The default profile is [default], and also [its own name] so apps that
    // select it by ALIBABA_CLOUD_PROFILE find it too.
    if (state.config.is_default) {
      sections.push_back(section("default"));
      if (state.config.name != "default") sections.push_back(section(state.config.name));
    } else {
      sections.push_back(section(state.config.name));
    }
  }
  if (!sections.empty()) {
    absl::StatusOr<SecretString> ini = output::renderCredentialsIni(sections);
    if (!ini.ok()) return ini.status();
    files.emplace(kCredentialsFile, *std::move(ini));
  }
  if (files.empty()) return absl::OkStatus();
  // One set: credentials.ini and every generic file switch together.
  absl::StatusOr<output::PublishResult> result = writer_.publish(files);
  if (!result.ok()) return result.status();
  for (ProfileState& state : profiles_) {
    if (!state.credential) continue;
    const bool was_written = state.status.written;
    const std::string previous_key = state.status.access_key_id;
    const std::string previous_version = state.published_version_id;
    state.status.written = true;
    state.status.access_key_id = state.credential->access_key_id;
    state.published_version_id = state.credential->version_id;
    state.status.files.clear();
    for (const auto& [file, content] : state.credential->files) state.status.files.push_back(file);
    if (std::find(changed.begin(), changed.end(), state.config.name) != changed.end() &&
        result->changed) {
      state.status.generation = result->generation;
      state.status.last_change = now;
      const ProfileChange change{state.config.name,
                                 state.status.access_key_id,
                                 previous_key,
                                 result->generation,
                                 now,
                                 state.published_version_id,
                                 previous_version};
      for (SyncListener* listener : listeners_) listener->onProfileChanged(change);
      if (isGeneric(state.config)) {
        // File names, never contents.
        log::info(was_written ? "updated" : "written",
                  {{"profile", state.config.name},
                   {"version_id", state.credential->version_id},
                   {"previous_version_id", previous_version},
                   {"generation", static_cast<long long>(result->generation)},
                   {"files", absl::StrJoin(state.status.files, ",")}});
      } else {
        log::info(was_written ? "rotated" : "written",
                  {{"profile", state.config.name},
                   {"access_key_id", state.credential->access_key_id},
                   {"previous_access_key_id", previous_key},
                   {"version_id", state.credential->version_id},
                   {"generation", static_cast<long long>(result->generation)},
                   {"file", kCredentialsFile}});
      }
    }
  }
  if (absl::c_any_of(listeners_,
                     [](const SyncListener* listener) { return listener->wantsPublishedSets(); })) {
    auto published = std::make_shared<PublishedSet>();
    published->generation = result->generation;
    published->published_at = now;
    for (const ProfileState& state : profiles_) {
      if (!state.credential) continue;
      published->profiles.push_back({state.config.name, state.config.secret_name,
                                     state.config.is_default, *state.credential});
    }
    const std::shared_ptr<const PublishedSet> shared = std::move(published);
    for (SyncListener* listener : listeners_) {
      if (listener->wantsPublishedSets()) listener->onPublished(shared);
    }
  }
  return absl::OkStatus();
}

bool SyncEngine::requestRefreshForTest(const std::string& profile) {
  // Through the one path Refresh takes, so tests exercise what production runs.
  return inspectAndRequest(profile, [](const RefreshView&) { return true; }).has_value();
}

void SyncEngine::addListener(SyncListener* listener) { listeners_.push_back(listener); }

SyncEngine::ProfileState* SyncEngine::findLocked(const std::string& profile) {
  for (ProfileState& state : profiles_) {
    if (state.config.name == profile) return &state;
  }
  // Apps that read [default] may name it so.
  if (profile == "default") {
    for (ProfileState& state : profiles_) {
      if (state.config.is_default) return &state;
    }
  }
  return nullptr;
}

RefreshView SyncEngine::viewLocked(const ProfileState& state) const {
  RefreshView view;
  view.profile = state.config.name;
  view.generic = isGeneric(state.config);
  view.access_key_id = state.status.access_key_id;
  view.version_id = state.published_version_id;
  view.generation = state.status.generation;
  view.last_change = state.status.last_change;
  view.fetches_started = state.fetches_started;
  view.fetches_completed = state.fetches_completed;
  view.fetch_in_flight = state.fetch_in_flight;
  view.fetch_requested = state.refresh_requests != state.requests_covered;
  view.last_fetch = state.last_fetch;
  view.publish_pending = unpublished_.count(state.config.name) > 0;
  view.next_fetch = state.status.next_refresh;
  return view;
}

std::optional<RefreshView> SyncEngine::inspectAndRequest(
    const std::string& profile, absl::FunctionRef<bool(const RefreshView&)> should_request) {
  MutexLock lock(&mutex_);
  ProfileState* state = findLocked(profile);
  if (state == nullptr) return std::nullopt;
  RefreshView view = viewLocked(*state);
  if (should_request(view)) {
    ++state->refresh_requests;
    state->status.next_refresh = time_source_.systemTime();
    view.fetch_requested = true;
  }
  return view;
}

std::vector<ProfileStatus> SyncEngine::status() const {
  MutexLock lock(&mutex_);
  std::vector<ProfileStatus> out;
  for (const ProfileState& state : profiles_) out.push_back(state.status);
  return out;
}

bool SyncEngine::ready() const {
  MutexLock lock(&mutex_);
  return readyLocked();
}

bool SyncEngine::readyLocked() const {
  for (const ProfileState& state : profiles_) {
    if (!state.status.required) continue;
    if (!state.status.written) return false;
    // A key KMS says we may no longer read is not known to be valid.
    if (absl::IsPermissionDenied(state.status.last_error) ||
        absl::IsNotFound(state.status.last_error)) {
      return false;
    }
  }
  return true;
}

bool SyncEngine::allWritten() const {
  MutexLock lock(&mutex_);
  return std::all_of(profiles_.begin(), profiles_.end(),
                     [](const ProfileState& state) { return state.status.written; });
}

bool SyncEngine::anyRetryablePending() const {
  MutexLock lock(&mutex_);
  return std::any_of(profiles_.begin(), profiles_.end(), [](const ProfileState& state) {
    return !state.status.written &&
           (state.status.last_error.ok() || isRetryable(state.status.last_error));
  });
}

uint64_t SyncEngine::generation() const { return writer_.generation(); }

}  // namespace credsync::sync
