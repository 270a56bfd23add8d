#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/random.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/fetch/secret_source.h"
#include "sidecar/output/atomic_writer.h"
#include "sidecar/sync/sync_listener.h"

namespace credsync::sync {

// What is known about one profile, for status, probes and metrics.
struct ProfileStatus {
  std::string name;
  std::string secret_name;
  config::ProfileKind kind = config::ProfileKind::kRamCredentials;
  bool required = true;
  bool written = false;       // this profile's secret is in the published files
  std::string access_key_id;  // the key in the file (never the secret); RAM credentials only
  std::string version_id;     // of the last successful fetch
  // Generic: the names of the files written for it (in the output directory).
  std::vector<std::string> files;
  uint64_t generation = 0;  // the file generation that last changed this profile
  std::optional<absl::Time> last_success;
  std::optional<absl::Time> last_change;
  absl::Status last_error;  // OK after a success
  int consecutive_failures = 0;
  absl::Time next_refresh;
  std::optional<absl::Time> next_rotation_date;
};

// When each profile is fetched next, given how the last attempt went.
// Pure: the engine feeds it the time and the random draws.
class RefreshSchedule {
 public:
  RefreshSchedule(const config::RefreshConfig& config, Random& random)
      : config_(config), random_(random) {}

  // The first fetch: now plus up to refresh.startup_jitter.
  absl::Time first(absl::Time now);
  // After a success: the slow interval (+- jitter), or a few minutes after
  // the secret's next rotation when that comes sooner.
  absl::Time afterSuccess(absl::Time now, std::optional<absl::Time> next_rotation_date);
  // After the n-th consecutive failure (n >= 1): full-jitter exponential
  // backoff for retryable errors; the slow interval for the others, so that
  // a missing permission or secret does not spin.
  absl::Time afterFailure(absl::Time now, int consecutive_failures, bool retryable);
  // After a throttling answer: decorrelated jitter, uniform in
  // [retry_initial_backoff, min(throttled_max_backoff, 3 x previous_delay)],
  // and `previous_delay` becomes the delay drawn (zero means none yet).
  // Unlike full jitter's, each draw depends on the pod's own last one, so a
  // throttled fleet spreads over the whole cap instead of coming back in
  // waves (bench/fleet measures both).
  absl::Time afterThrottling(absl::Time now, absl::Duration& previous_delay);

 private:
  absl::Time slow(absl::Time now);

  const config::RefreshConfig config_;
  Random& random_;
};

// A profile as an app-requested refresh sees it: the key in the file and
// where its fetches stand. Fetches are numbered from 1 in the order they
// start; a request made while none is pending makes the next one start.
struct RefreshView {
  std::string profile;  // the configured name ("default" resolved)
  bool generic = false;
  std::string access_key_id;  // in the file; empty before the first write
  std::string version_id;     // the secret version in the files; empty before the first write
  uint64_t generation = 0;
  std::optional<absl::Time> last_change;
  uint64_t fetches_started = 0;
  uint64_t fetches_completed = 0;
  bool fetch_in_flight = false;
  bool fetch_requested = false;  // requested, not yet started
  absl::Status last_fetch;       // the latest completed fetch
  bool publish_pending = false;  // a fetched key is not in the file yet
  absl::Time next_fetch;         // when the next fetch is scheduled
};

// Identity -> fetch -> store -> publish. Keeps each profile's latest good
// key (or generic profile's files), fetches the profiles that are due, and
// publishes credentials.ini and the generic files together, in one atomic
// set, when any of them changed. credentials.ini is in the set only when a
// RAM credentials profile has a key. A failed fetch never touches the file: the last
// good key stays (degraded mode, logged as a warning and shown in status).
// Thread-safe; runDue() is called by one driver thread at a time.
class SyncEngine {
 public:
  SyncEngine(const config::Config& config, fetch::SecretSource& source,
             output::OutputWriter& writer, const TimeSource& time_source, Random& random);

  // Fetches every profile due by now, publishes if anything changed, and
  // returns the time the next profile falls due.
  absl::Time runDue();

  // Makes a profile due now (false if there is no such profile), as a Refresh
  // that asks for a fetch does; for tests, which drive the engine directly.
  bool requestRefreshForTest(const std::string& profile);

  // Registers a listener before the engine runs; it must outlive the engine.
  void addListener(SyncListener* listener);

  // For Refresh: under the engine's lock, shows `profile` (a configured name,
  // or "default") to `should_request` and, when it returns true, makes the
  // profile due now. nullopt for an unknown profile.
  std::optional<RefreshView> inspectAndRequest(
      const std::string& profile, absl::FunctionRef<bool(const RefreshView&)> should_request);

  std::vector<ProfileStatus> status() const;
  // Every required profile has been written and its last fetch did not say
  // the key is unusable.
  bool ready() const;
  // Whether every profile is written, and whether any unwritten one can
  // still succeed by retrying (for `sync --once`).
  bool allWritten() const;
  bool anyRetryablePending() const;
  uint64_t generation() const;

 private:
  struct ProfileState {
    config::ProfileConfig config;
    ProfileStatus status;
    std::optional<fetch::ManagedCredential> credential;
    // The version of `credential` that is in the published files.
    std::string published_version_id;
    // Counts refresh requests, so a request made while a fetch is in
    // flight is not overwritten by that fetch's schedule.
    uint64_t refresh_requests = 0;
    // The requests the latest started fetch answers.
    uint64_t requests_covered = 0;
    uint64_t fetches_started = 0;
    uint64_t fetches_completed = 0;
    bool fetch_in_flight = false;
    absl::Status last_fetch;
    // The last delay drawn after a throttling answer (zero after a success).
    absl::Duration throttled_delay;
  };

  ProfileState* findLocked(const std::string& profile) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The second half of runDue(): records the fetch results, publishes, and
  // returns when the next profile falls due.
  absl::Time recordRoundLocked(
      std::vector<std::pair<std::string, absl::StatusOr<fetch::ManagedCredential>>>& results)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  bool readyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  RefreshView viewLocked(const ProfileState& state) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  // Renders and publishes the files from every profile's current secret.
  absl::Status publishLocked(absl::Time now, const std::vector<std::string>& changed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const config::Config config_;
  fetch::SecretSource& source_;
  output::OutputWriter& writer_;
  const TimeSource& time_source_;
  RefreshSchedule schedule_;

  // First in the lock order: RefreshCoordinator's and TokenBucket's mutexes
  // may be taken under it (inspectAndRequest()'s callback), never the
  // reverse (sync/refresh_coordinator.h).
  mutable Mutex mutex_;
  std::vector<ProfileState> profiles_ ABSL_GUARDED_BY(mutex_);
  // Profiles whose fetched key is not yet in the file (a publish failed),
  // and when the write is tried again.
  std::set<std::string> unpublished_ ABSL_GUARDED_BY(mutex_);
  absl::Time publish_retry_at_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  int publish_failures_ ABSL_GUARDED_BY(mutex_) = 0;
  // Readiness as last logged, so each change is logged once.
  bool logged_ready_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<SyncListener*> listeners_;
};

}  // namespace credsync::sync
