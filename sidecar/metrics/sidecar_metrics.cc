#include "sidecar/metrics/sidecar_metrics.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/metrics/registry.h"

#ifndef CREDSYNC_VERSION
#define CREDSYNC_VERSION "unknown"
#endif

namespace credsync::metrics {
namespace {

// STS and KMS calls take from a few milliseconds (same region) to the 30 s
// that is the longest total timeout a call is given.
const std::vector<double> kUpstreamLatencyBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                    0.5,   1,    2.5,   5,    10,  30};
// A signal takes microseconds; a command up to its timeout (30 s by default,
// at most an hour).
const std::vector<double> kHookDurationBounds = {0.001, 0.01, 0.1, 0.5, 1,   2.5,
                                                 5,     10,   30,  60,  300, 3600};
const char* const kHookResults[] = {"ok", "failed", "timeout", "no_process"};

class SidecarMetricsImpl : public SidecarMetrics {
 public:
  explicit SidecarMetricsImpl(std::string version)
      : version_(std::move(version)),
        upstream_requests_(registry_.addCounter(
            "credsync_upstream_requests_total",
            "HTTP calls to STS and KMS by API action and outcome (ok, client_error, "
            "server_error, throttled, network_error).",
            {"action", "outcome"})),
        upstream_duration_(registry_.addHistogram(
            "credsync_upstream_request_duration_seconds",
            "Duration of HTTP calls to STS and KMS by API action, failures included.", {"action"},
            kUpstreamLatencyBounds)),
        fetches_(registry_.addCounter(
            "credsync_fetches_total",
            "Completed fetches of a profile's credentials, scheduled or requested, by result.",
            {"profile", "result"})),
        refresh_calls_(registry_.addCounter("credsync_refresh_calls_total",
                                            "Refresh calls by how they ended.", {"outcome"})),
        refresh_coalesced_(registry_.addCounter(
            "credsync_refresh_coalesced_callers_total",
            "Refresh callers that joined a fetch already under way instead of starting one.")),
        hook_runs_(registry_.addCounter(
            "credsync_hook_runs_total",
            "Change hook runs by hook and result (ok, failed, timeout, no_process).",
            {"hook", "result"})),
        hook_duration_(registry_.addHistogram("credsync_hook_duration_seconds",
                                              "Duration of change hook runs, failures included.",
                                              {"hook"}, kHookDurationBounds)),
        local_api_requests_(registry_.addCounter(
            "credsync_local_api_requests_total",
            "Requests to the loopback local API by API (credentials_uri, kms_agent, refused) "
            "and HTTP status.",
            {"api", "code"})) {
    refresh_coalesced_.initialize({});
  }

  void localApiRequest(absl::string_view api, int status) override {
    local_api_requests_.increment({api, absl::StrCat(status)});
  }

  void upstreamCall(absl::string_view action, absl::string_view outcome,
                    absl::Duration latency) override {
    upstream_requests_.increment({action, outcome});
    upstream_duration_.observe({action}, absl::ToDoubleSeconds(latency));
  }

  void fetchCompleted(absl::string_view profile, bool ok) override {
    fetches_.increment({profile, ok ? "success" : "failure"});
  }

  void refreshCall(absl::string_view outcome, bool coalesced) override {
    refresh_calls_.increment({outcome});
    if (coalesced) refresh_coalesced_.increment({});
  }

  void hooksConfigured(const std::vector<std::string>& hooks) override {
    for (const std::string& hook : hooks) {
      for (const char* result : kHookResults) hook_runs_.initialize({hook, result});
    }
  }

  void hookRun(absl::string_view hook, absl::string_view result, absl::Duration duration) override {
    hook_runs_.increment({hook, result});
    hook_duration_.observe({hook}, absl::ToDoubleSeconds(duration));
  }

  std::string render(const StateSnapshot& state, absl::Time now) const override {
    // Every configured profile gets both fetch series from the first scrape,
    // so an alert on increase(...{result="failure"}) sees the first failure
    // as a step from zero rather than as a new series.
    for (const ProfileGauges& profile : state.profiles) {
      fetches_.initialize({profile.profile, "success"});
      fetches_.initialize({profile.profile, "failure"});
    }
    std::string out = registry_.render();

    // Scrape-time state is rebuilt from the snapshot every time, so a series
    // for a profile that is gone, or a value that is unknown, disappears.
    Registry scrape;
    Gauge& generation = scrape.addGauge(
        "credsync_profile_generation",
        "Generation of the credentials last written for a profile (0 before the first write).",
        {"profile"});
    Gauge& since_success = scrape.addGauge(
        "credsync_profile_seconds_since_last_success",
        "Seconds since a profile's last successful fetch; absent until one succeeds.", {"profile"});
    Gauge& written = scrape.addGauge(
        "credsync_profile_written",
        "1 when a profile's credentials are in the output file, else 0.", {"profile"});
    for (const ProfileGauges& profile : state.profiles) {
      generation.set({profile.profile}, static_cast<double>(profile.generation));
      if (profile.last_success.has_value()) {
        // A wall-clock step back must not show a success in the future.
        since_success.set({profile.profile},
                          std::max(0.0, absl::ToDoubleSeconds(now - *profile.last_success)));
      }
      written.set({profile.profile}, profile.written ? 1 : 0);
    }
    Gauge& session_expiry = scrape.addGauge(
        "credsync_identity_session_expiry_timestamp_seconds",
        "Unix time at which the current STS session expires; absent while none is held.");
    if (state.session_expiration.has_value()) {
      session_expiry.set({}, absl::ToDoubleSeconds(*state.session_expiration - absl::UnixEpoch()));
    }
    scrape
        .addGauge("credsync_ready",
                  "1 when every required profile is written and not known to be invalid, else 0.")
        .set({}, state.ready ? 1 : 0);
    scrape
        .addGauge("credsync_file_generation",
                  "Generation of the credentials file; it goes up with every write.")
        .set({}, static_cast<double>(state.generation));
    scrape.addGauge("credsync_watch_subscribers", "Open Watch streams.")
        .set({}, state.watch_subscribers);
    Gauge& circuit = scrape.addGauge(
        "credsync_kms_endpoint_circuit_state",
        "1 for the state a KMS endpoint's circuit breaker is in (closed, open, half_open), "
        "0 for the others.",
        {"endpoint", "state"});
    Counter& opened = scrape.addCounter(
        "credsync_kms_endpoint_circuit_opened_total",
        "Times a KMS endpoint's circuit opened (including after a failed probe).", {"endpoint"});
    for (const EndpointGauges& endpoint : state.endpoints) {
      for (const char* name : {"closed", "open", "half_open"}) {
        circuit.set({endpoint.endpoint, name}, endpoint.circuit_state == name ? 1 : 0);
      }
      setCount(opened, {endpoint.endpoint}, endpoint.times_opened);
    }
    Counter& key_reloads = scrape.addCounter(
        "credsync_kms_instance_client_key_reloads_total",
        "Times a KMS instance's client-key files changed on disk, by whether the new key "
        "loaded (ok) or the previous one stayed in use (error).",
        {"endpoint", "result"});
    for (const ClientKeyGauges& key : state.client_keys) {
      setCount(key_reloads, {key.endpoint, "ok"}, key.reloads_succeeded);
      setCount(key_reloads, {key.endpoint, "error"}, key.reloads_failed);
    }
    Gauge& connections = scrape.addGauge("credsync_listener_connections",
                                         "Connections open on a listener.", {"listener"});
    Counter& accepted =
        scrape.addCounter("credsync_listener_connections_accepted_total",
                          "Connections a listener accepted and served.", {"listener"});
    Counter& closed = scrape.addCounter(
        "credsync_listener_connections_closed_total",
        "Connections credsync closed: shed (the longest-waiting one, to admit a new one at the "
        "connection limit) or timeout (no whole request, or the answer not read, in time).",
        {"listener", "reason"});
    Counter& refused = scrape.addCounter(
        "credsync_listener_connections_refused_total",
        "Connections closed as they were accepted: descriptor_reserve (fewer descriptors left "
        "than fetching and publishing need) or limit (the listener's connection limit).",
        {"listener", "reason"});
    for (const ListenerGauges& listener : state.listeners) {
      connections.set({listener.listener}, static_cast<double>(listener.open));
      setCount(accepted, {listener.listener}, listener.accepted);
      setCount(closed, {listener.listener, "shed"}, listener.shed);
      setCount(closed, {listener.listener, "timeout"}, listener.timed_out);
      setCount(refused, {listener.listener, "descriptor_reserve"},
               listener.refused_for_descriptors);
      setCount(refused, {listener.listener, "limit"}, listener.refused_at_limit);
    }
    scrape
        .addGauge("credsync_build_info", "Always 1; the version label names the running build.",
                  {"version"})
        .set({version_}, 1);
    scrape.renderTo(out);
    return out;
  }

 private:
  const std::string version_;
  Registry registry_;
  Counter& upstream_requests_;
  Histogram& upstream_duration_;
  Counter& fetches_;
  Counter& refresh_calls_;
  Counter& refresh_coalesced_;
  Counter& hook_runs_;
  Histogram& hook_duration_;
  Counter& local_api_requests_;
};

}  // namespace

std::unique_ptr<SidecarMetrics> makeSidecarMetrics(absl::string_view version) {
  return std::make_unique<SidecarMetricsImpl>(version.empty() ? std::string(CREDSYNC_VERSION)
                                                              : std::string(version));
}

}  // namespace credsync::metrics
