#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/fleet/cloud_model.h"
#include "sidecar/config/config.h"
#include "tests/common/simulated_time_source.h"

// A discrete-event simulation of N credsync sidecars against one account's
// STS and KMS (cloud_model.h). Each pod is the real thing minus sockets and
// threads: credsync's SyncEngine (schedule, backoff, jitter), its OIDC
// identity and session cache, its KMS source with circuit breaker, its STS
// and KMS clients (signing, parsing) and its RefreshCoordinator (single
// flight, token bucket), all on one simulated clock. Calls take no
// simulated time. Not thread-safe.
namespace credsync::fleet {

struct FleetOptions {
  int pods = 1000;
  uint64_t seed = 1;
  // The sidecars' refresh settings (credsync's defaults unless changed).
  config::RefreshConfig refresh;
  CloudModelOptions cloud;
  // Emergency rotation: the app threads per pod that each call Refresh once
  // the key fails, how long each waits for an answer, and how long it waits
  // after an error answer before calling again (retry_after when given).
  int callers_per_pod = 4;
  absl::Duration refresh_timeout = absl::Seconds(30);
  absl::Duration app_retry = absl::Seconds(1);
};

// How long pods took to reach a state, from a phase's start.
struct Spread {
  int reached = 0;
  int missing = 0;  // did not reach it within the phase's horizon
  absl::Duration p50;
  absl::Duration p99;
  absl::Duration max;
};

struct PhaseReport {
  std::string name;
  // From the phase's start to the last pod reaching the state (or the
  // horizon); steady state: the span asked for.
  absl::Duration span;
  Spread pods;
  Traffic traffic;  // over `span`
  double mean_sts_per_minute = 0;
  double mean_kms_per_second = 0;
  // Emergency rotation: every Refresh answer, by outcome.
  std::map<std::string, int64_t> refresh_answers;
};

class Fleet {
 public:
  // Starts every pod now (a rollout): each fetches first within
  // refresh.startup_jitter.
  static absl::StatusOr<std::unique_ptr<Fleet>> create(const FleetOptions& options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Until every pod is ready (or `horizon`).
  PhaseReport rollout(absl::Duration horizon);
  // The secret gets a rotation date past every pod's next scheduled fetch
  // (so each learns it as it would in a cluster), then rotates: until
  // every pod holds the new key (or `horizon` after the rotation).
  PhaseReport scheduledRotation(absl::Duration horizon);
  // The secret is rotated by hand now, without notice, and every caller of
  // every pod calls Refresh at once: until every pod holds the new key.
  PhaseReport emergencyRotation(absl::Duration horizon);
  // Nothing happening but the schedule: `warmup` unmeasured (so the
  // rollout's own calls are behind), then `span` measured.
  PhaseReport steadyState(absl::Duration warmup, absl::Duration span);

  absl::Time now() const { return clock_.systemTime(); }

 private:
  struct Pod;
  enum class EventKind { kEngine, kAppCall, kDeadline };
  struct Event {
    absl::Time at;
    uint64_t sequence;
    int pod;
    EventKind kind;
    bool operator>(const Event& other) const {
      return at != other.at ? at > other.at : sequence > other.sequence;
    }
  };

  Fleet(const FleetOptions& options, std::string token_file);
  absl::Status start();
  // Runs to the next whole second, where the next phase starts.
  absl::Time beginPhase();
  void push(absl::Time at, int pod, EventKind kind);
  // Makes pod's engine run at `at` if that is sooner than planned.
  void scheduleEngine(int pod, absl::Time at);
  // Processes events up to `until`, or until `done` pods have reached the
  // phase's state; leaves the clock at the last event processed (or
  // `until` when the queue ran dry before it).
  void runUntil(absl::Time until, int done);
  void process(const Event& event);
  void callRefresh(int pod);
  void onKeyChanged(int pod, const std::string& key_id, absl::Time at);
  PhaseReport report(std::string name, absl::Time start, absl::Time end,
                     const std::vector<absl::Time>& reached) const;

  const FleetOptions options_;
  const std::string token_file_;
  testing::SimulatedTimeSource clock_;
  CloudModel model_;
  config::Config config_;
  std::vector<std::unique_ptr<Pod>> pods_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  uint64_t sequence_ = 0;

  // The phase under way: pods reach its state when they become ready
  // (rollout) or hold `target_key_` (rotations).
  std::string target_key_;
  std::string failed_key_;
  int reached_ = 0;
  std::vector<absl::Time> reached_at_;
  std::map<std::string, int64_t> refresh_answers_;
};

}  // namespace credsync::fleet
