#include "sidecar/metrics/sidecar_metrics.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/metrics/exposition_validator.h"

namespace credsync::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::validateExposition;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);

// The sample lines of an exposition, without HELP and TYPE.
std::vector<std::string> samples(const std::string& text) {
  std::vector<std::string> result;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(line, "#")) result.emplace_back(line);
  }
  return result;
}

// Verifies the exact exposition of a sidecar that has done nothing yet:
// every family announced, unlabelled counters and state at zero, and no
// sample for what is unknown (session expiry, profiles).
TEST(SidecarMetricsTest, FreshExposition) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  const std::string text = metrics->render(StateSnapshot{}, kNow);
  EXPECT_EQ(
      text,
      "# HELP credsync_upstream_requests_total HTTP calls to STS and KMS by API action and "
      "outcome (ok, client_error, server_error, throttled, network_error).\n"
      "# TYPE credsync_upstream_requests_total counter\n"
      "# HELP credsync_upstream_request_duration_seconds Duration of HTTP calls to STS and KMS "
      "by API action, failures included.\n"
      "# TYPE credsync_upstream_request_duration_seconds histogram\n"
      "# HELP credsync_fetches_total Completed fetches of a profile's credentials, scheduled or "
      "requested, by result.\n"
      "# TYPE credsync_fetches_total counter\n"
      "# HELP credsync_refresh_calls_total Refresh calls by how they ended.\n"
      "# TYPE credsync_refresh_calls_total counter\n"
      "# HELP credsync_refresh_coalesced_callers_total Refresh callers that joined a fetch "
      "already under way instead of starting one.\n"
      "# TYPE credsync_refresh_coalesced_callers_total counter\n"
      "credsync_refresh_coalesced_callers_total 0\n"
      "# HELP credsync_hook_runs_total Change hook runs by hook and result (ok, failed, "
      "timeout, no_process).\n"
      "# TYPE credsync_hook_runs_total counter\n"
      "# HELP credsync_hook_duration_seconds Duration of change hook runs, failures included.\n"
      "# TYPE credsync_hook_duration_seconds histogram\n"
      "# HELP credsync_local_api_requests_total Requests to the loopback local API by API "
      "(credentials_uri, kms_agent, refused) and HTTP status.\n"
      "# TYPE credsync_local_api_requests_total counter\n"
      "# HELP credsync_profile_generation Generation of the credentials last written for a "
      "profile (0 before the first write).\n"
      "# TYPE credsync_profile_generation gauge\n"
      "# HELP credsync_profile_seconds_since_last_success Seconds since a profile's last "
      "successful fetch; absent until one succeeds.\n"
      "# TYPE credsync_profile_seconds_since_last_success gauge\n"
      "# HELP credsync_profile_written 1 when a profile's credentials are in the output file, "
      "else 0.\n"
      "# TYPE credsync_profile_written gauge\n"
      "# HELP credsync_identity_session_expiry_timestamp_seconds Unix time at which the current "
      "STS session expires; absent while none is held.\n"
      "# TYPE credsync_identity_session_expiry_timestamp_seconds gauge\n"
      "# HELP credsync_ready 1 when every required profile is written and not known to be "
      "invalid, else 0.\n"
      "# TYPE credsync_ready gauge\n"
      "credsync_ready 0\n"
      "# HELP credsync_file_generation Generation of the credentials file; it goes up with "
      "every write.\n"
      "# TYPE credsync_file_generation gauge\n"
      "credsync_file_generation 0\n"
      "# HELP credsync_watch_subscribers Open Watch streams.\n"
      "# TYPE credsync_watch_subscribers gauge\n"
      "credsync_watch_subscribers 0\n"
      "# HELP credsync_kms_endpoint_circuit_state 1 for the state a KMS endpoint's circuit "
      "breaker is in (closed, open, half_open), 0 for the others.\n"
      "# TYPE credsync_kms_endpoint_circuit_state gauge\n"
      "# HELP credsync_kms_endpoint_circuit_opened_total Times a KMS endpoint's circuit opened "
      "(including after a failed probe).\n"
      "# TYPE credsync_kms_endpoint_circuit_opened_total counter\n"
      "# HELP credsync_kms_instance_client_key_reloads_total Times a KMS instance's client-key "
      "files changed on disk, by whether the new key loaded (ok) or the previous one stayed in "
      "use (error).\n"
      "# TYPE credsync_kms_instance_client_key_reloads_total counter\n"
      "# HELP credsync_listener_connections Connections open on a listener.\n"
      "# TYPE credsync_listener_connections gauge\n"
      "# HELP credsync_listener_connections_accepted_total Connections a listener accepted and "
      "served.\n"
      "# TYPE credsync_listener_connections_accepted_total counter\n"
      "# HELP credsync_listener_connections_closed_total Connections credsync closed: shed (the "
      "longest-waiting one, to admit a new one at the connection limit) or timeout (no whole "
      "request, or the answer not read, in time).\n"
      "# TYPE credsync_listener_connections_closed_total counter\n"
      "# HELP credsync_listener_connections_refused_total Connections closed as they were "
      "accepted: descriptor_reserve (fewer descriptors left than fetching and publishing need) or "
      "limit (the listener's connection limit).\n"
      "# TYPE credsync_listener_connections_refused_total counter\n"
      "# HELP credsync_build_info Always 1; the version label names the running build.\n"
      "# TYPE credsync_build_info gauge\n"
      "credsync_build_info{version=\"1.2.3\"} 1\n");
  EXPECT_EQ(validateExposition(text), "");
}

// Verifies every family's samples after some activity: counters by label,
// cumulative latency buckets, zero fetch series for a profile that has not
// fetched yet, and no seconds-since-success for a profile that never
// succeeded.
TEST(SidecarMetricsTest, ExpositionAfterActivity) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  metrics->upstreamCall("GetSecretValue", "ok", absl::Microseconds(15625));  // 1/64 s
  metrics->upstreamCall("GetSecretValue", "throttled", absl::Milliseconds(1500));
  metrics->upstreamCall("AssumeRoleWithOIDC", "ok", absl::Milliseconds(4));
  metrics->fetchCompleted("app", true);
  metrics->fetchCompleted("app", false);
  metrics->refreshCall("refreshed", false);
  metrics->refreshCall("refreshed", true);
  metrics->refreshCall("rate_limited", false);

  StateSnapshot state;
  state.profiles.push_back({"app", 3, kNow - absl::Seconds(90), true});
  state.profiles.push_back({"db", 0, std::nullopt, false});
  state.session_expiration = kNow + absl::Hours(1);
  state.ready = false;
  state.generation = 7;
  state.watch_subscribers = 2;
  const std::string text = metrics->render(state, kNow);

  EXPECT_EQ(validateExposition(text), "");
  EXPECT_THAT(
      samples(text),
      ElementsAre(
          "credsync_upstream_requests_total{action=\"AssumeRoleWithOIDC\",outcome=\"ok\"} 1",
          "credsync_upstream_requests_total{action=\"GetSecretValue\",outcome=\"ok\"} 1",
          "credsync_upstream_requests_total{action=\"GetSecretValue\",outcome=\"throttled\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"0.005\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"0.01\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"0.025\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"0.05\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"0.1\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"0.25\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"0.5\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"1\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"2.5\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"5\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"10\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"30\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"AssumeRoleWithOIDC\","
          "le=\"+Inf\"} 1",
          "credsync_upstream_request_duration_seconds_sum{action=\"AssumeRoleWithOIDC\"} 0.004",
          "credsync_upstream_request_duration_seconds_count{action=\"AssumeRoleWithOIDC\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"0.005\"} 0",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"0.01\"} 0",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"0.025\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"0.05\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"0.1\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"0.25\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"0.5\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"1\"} 1",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"2.5\"} 2",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"5\"} 2",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"10\"} 2",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"30\"} 2",
          "credsync_upstream_request_duration_seconds_bucket{action=\"GetSecretValue\","
          "le=\"+Inf\"} 2",
          "credsync_upstream_request_duration_seconds_sum{action=\"GetSecretValue\"} 1.515625",
          "credsync_upstream_request_duration_seconds_count{action=\"GetSecretValue\"} 2",
          "credsync_fetches_total{profile=\"app\",result=\"failure\"} 1",
          "credsync_fetches_total{profile=\"app\",result=\"success\"} 1",
          "credsync_fetches_total{profile=\"db\",result=\"failure\"} 0",
          "credsync_fetches_total{profile=\"db\",result=\"success\"} 0",
          "credsync_refresh_calls_total{outcome=\"rate_limited\"} 1",
          "credsync_refresh_calls_total{outcome=\"refreshed\"} 2",
          "credsync_refresh_coalesced_callers_total 1",
          "credsync_profile_generation{profile=\"app\"} 3",
          "credsync_profile_generation{profile=\"db\"} 0",
          "credsync_profile_seconds_since_last_success{profile=\"app\"} 90",
          "credsync_profile_written{profile=\"app\"} 1",
          "credsync_profile_written{profile=\"db\"} 0",
          "credsync_identity_session_expiry_timestamp_seconds 1767229200", "credsync_ready 0",
          "credsync_file_generation 7", "credsync_watch_subscribers 2",
          "credsync_build_info{version=\"1.2.3\"} 1"));
}

// Verifies scrape-time state follows the snapshot: ready flips, and a
// profile that no longer succeeds-or-exists loses its samples while the
// session expiry disappears when unknown.
// Verifies every configured hook has all four result series from the first
// scrape, and a run counts in its result and in the duration histogram.
TEST(SidecarMetricsTest, HookRuns) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  metrics->hooksConfigured({"reload-nginx"});
  metrics->hookRun("reload-nginx", "timeout", absl::Seconds(35));
  const std::string text = metrics->render(StateSnapshot{}, kNow);
  EXPECT_EQ(validateExposition(text), "");
  const std::vector<std::string> lines = samples(text);
  for (const char* sample :
       {"credsync_hook_runs_total{hook=\"reload-nginx\",result=\"failed\"} 0",
        "credsync_hook_runs_total{hook=\"reload-nginx\",result=\"no_process\"} 0",
        "credsync_hook_runs_total{hook=\"reload-nginx\",result=\"ok\"} 0",
        "credsync_hook_runs_total{hook=\"reload-nginx\",result=\"timeout\"} 1",
        "credsync_hook_duration_seconds_bucket{hook=\"reload-nginx\",le=\"30\"} 0",
        "credsync_hook_duration_seconds_bucket{hook=\"reload-nginx\",le=\"60\"} 1",
        "credsync_hook_duration_seconds_sum{hook=\"reload-nginx\"} 35",
        "credsync_hook_duration_seconds_count{hook=\"reload-nginx\"} 1"}) {
    EXPECT_THAT(lines, ::testing::Contains(sample));
  }
}

// Verifies local API requests are counted by API and status.
TEST(SidecarMetricsTest, LocalApiRequests) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  metrics->localApiRequest("credentials_uri", 200);
  metrics->localApiRequest("credentials_uri", 200);
  metrics->localApiRequest("refused", 404);
  metrics->localApiRequest("kms_agent", 403);
  const std::string text = metrics->render(StateSnapshot{}, kNow);
  EXPECT_EQ(validateExposition(text), "");
  const std::vector<std::string> lines = samples(text);
  for (const char* sample :
       {"credsync_local_api_requests_total{api=\"credentials_uri\",code=\"200\"} 2",
        "credsync_local_api_requests_total{api=\"refused\",code=\"404\"} 1",
        "credsync_local_api_requests_total{api=\"kms_agent\",code=\"403\"} 1"}) {
    EXPECT_THAT(lines, ::testing::Contains(sample));
  }
}

TEST(SidecarMetricsTest, ScrapeTimeStateFollowsTheSnapshot) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  StateSnapshot state;
  state.profiles.push_back({"app", 1, kNow - absl::Seconds(5), true});
  state.session_expiration = kNow + absl::Minutes(30);
  state.ready = true;
  std::string text = metrics->render(state, kNow);
  EXPECT_THAT(text, HasSubstr("\ncredsync_ready 1\n"));
  EXPECT_THAT(text, HasSubstr("\ncredsync_identity_session_expiry_timestamp_seconds 1767227400\n"));
  EXPECT_THAT(text,
              HasSubstr("\ncredsync_profile_seconds_since_last_success{profile=\"app\"} 5\n"));

  text = metrics->render(StateSnapshot{}, kNow);
  EXPECT_THAT(text, HasSubstr("\ncredsync_ready 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("\ncredsync_identity_session_expiry_timestamp_seconds ")));
  EXPECT_THAT(text, Not(HasSubstr("{profile=\"app\"} 5")));
  EXPECT_THAT(text, Not(HasSubstr("credsync_profile_generation{")));
  EXPECT_EQ(validateExposition(text), "");
}

// Verifies each endpoint's circuit shows as one state set to 1 and its
// openings as a counter present from the first scrape.
TEST(SidecarMetricsTest, EndpointCircuits) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  StateSnapshot state;
  state.endpoints.push_back({"https://kms-a.example", "open", 2});
  state.endpoints.push_back({"https://kms-b.example", "closed", 0});
  const std::string text = metrics->render(state, kNow);
  EXPECT_THAT(text, HasSubstr("credsync_kms_endpoint_circuit_state{endpoint=\"https://"
                              "kms-a.example\",state=\"open\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("credsync_kms_endpoint_circuit_state{endpoint=\"https://"
                              "kms-a.example\",state=\"closed\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("credsync_kms_endpoint_circuit_state{endpoint=\"https://"
                              "kms-b.example\",state=\"closed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("credsync_kms_endpoint_circuit_opened_total{endpoint=\"https://"
                              "kms-a.example\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("credsync_kms_endpoint_circuit_opened_total{endpoint=\"https://"
                              "kms-b.example\"} 0\n"));
  EXPECT_EQ(validateExposition(text), "");
}

// Verifies each KMS instance has both reload series from the first scrape,
// counting what its client key source reports.
TEST(SidecarMetricsTest, ClientKeyReloads) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  StateSnapshot state;
  state.client_keys.push_back({"https://kst-a.example", 2, 1});
  state.client_keys.push_back({"https://kst-b.example", 0, 0});
  const std::string text = metrics->render(state, kNow);
  EXPECT_THAT(text, HasSubstr("credsync_kms_instance_client_key_reloads_total{endpoint=\"https://"
                              "kst-a.example\",result=\"ok\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("credsync_kms_instance_client_key_reloads_total{endpoint=\"https://"
                              "kst-a.example\",result=\"error\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("credsync_kms_instance_client_key_reloads_total{endpoint=\"https://"
                              "kst-b.example\",result=\"ok\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("credsync_kms_instance_client_key_reloads_total{endpoint=\"https://"
                              "kst-b.example\",result=\"error\"} 0\n"));
  EXPECT_EQ(validateExposition(text), "");
}

// Verifies each listener has its gauge and every counter series from the
// first scrape, with the counts its server reports.
TEST(SidecarMetricsTest, ListenerConnections) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  StateSnapshot state;
  state.listeners.push_back({"http", 12, 3000, 40, 7, 2, 0});
  state.listeners.push_back({"unix", 0, 0, 0, 0, 0, 0});
  const std::string text = metrics->render(state, kNow);
  for (const char* line : {
           "credsync_listener_connections{listener=\"http\"} 12\n",
           "credsync_listener_connections_accepted_total{listener=\"http\"} 3000\n",
           "credsync_listener_connections_closed_total{listener=\"http\",reason=\"shed\"} 40\n",
           "credsync_listener_connections_closed_total{listener=\"http\",reason=\"timeout\"} 7\n",
           "credsync_listener_connections_refused_total{listener=\"http\",reason=\"descriptor_"
           "reserve\"} 2\n",
           "credsync_listener_connections_refused_total{listener=\"http\",reason=\"limit\"} 0\n",
           "credsync_listener_connections{listener=\"unix\"} 0\n",
           "credsync_listener_connections_refused_total{listener=\"unix\",reason=\"descriptor_"
           "reserve\"} 0\n",
       }) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  EXPECT_EQ(validateExposition(text), "");
}

// Verifies a last success "in the future" (the wall clock stepped back)
// reads as zero seconds ago, not as a negative age.
TEST(SidecarMetricsTest, SecondsSinceSuccessNeverNegative) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  StateSnapshot state;
  state.profiles.push_back({"app", 1, kNow + absl::Minutes(2), true});
  EXPECT_THAT(metrics->render(state, kNow),
              HasSubstr("\ncredsync_profile_seconds_since_last_success{profile=\"app\"} 0\n"));
}

// Verifies profile names from the configuration are escaped in label values,
// keeping the exposition parseable.
TEST(SidecarMetricsTest, EscapesProfileNames) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  metrics->fetchCompleted("we\"ird\\name", true);
  StateSnapshot state;
  state.profiles.push_back({"we\"ird\\name", 2, kNow, true});
  const std::string text = metrics->render(state, kNow);
  EXPECT_THAT(text, HasSubstr("credsync_profile_generation{profile=\"we\\\"ird\\\\name\"} 2\n"));
  EXPECT_EQ(validateExposition(text), "");
}

// Verifies the build version defaults to the version credsync was built as.
TEST(SidecarMetricsTest, DefaultVersionIsTheBuildVersion) {
  const std::string text = makeSidecarMetrics()->render(StateSnapshot{}, kNow);
  EXPECT_THAT(text, HasSubstr("credsync_build_info{version=\""));
  EXPECT_THAT(text, Not(HasSubstr("credsync_build_info{version=\"\"}")));
  EXPECT_THAT(text, Not(HasSubstr("credsync_build_info{version=\"unknown\"}")));
}

// Verifies recording from many threads while scraping loses nothing and
// always yields a valid exposition.
TEST(SidecarMetricsTest, ConcurrentRecordingAndScraping) {
  const std::unique_ptr<SidecarMetrics> metrics = makeSidecarMetrics("1.2.3");
  StateSnapshot state;
  state.profiles.push_back({"app", 1, kNow, true});
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 500; ++j) {
        metrics->upstreamCall("GetSecretValue", "ok", absl::Milliseconds(j));
        metrics->fetchCompleted("app", true);
        metrics->refreshCall("refreshed", true);
      }
    });
  }
  threads.emplace_back([&] {
    for (int j = 0; j < 50; ++j) EXPECT_EQ(validateExposition(metrics->render(state, kNow)), "");
  });
  for (std::thread& thread : threads) thread.join();
  const std::string text = metrics->render(state, kNow);
  EXPECT_THAT(text, HasSubstr("credsync_fetches_total{profile=\"app\",result=\"success\"} 2000\n"));
  EXPECT_THAT(text, HasSubstr("credsync_refresh_coalesced_callers_total 2000\n"));
  EXPECT_THAT(
      text, HasSubstr("credsync_upstream_request_duration_seconds_count{action=\"GetSecretValue\"} "
                      "2000\n"));
}

}  // namespace
}  // namespace credsync::metrics
