#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace credsync::metrics {

// A profile's state at scrape time.
struct ProfileGauges {
  std::string profile;
  uint64_t generation = 0;
  std::optional<absl::Time> last_success;
  bool written = false;
};

// One KMS endpoint's circuit breaker at scrape time.
struct EndpointGauges {
  std::string endpoint;
  std::string circuit_state;  // "closed", "open", "half_open"
  uint64_t times_opened = 0;
};

// One KMS instance's client key reloads at scrape time.
struct ClientKeyGauges {
  std::string endpoint;
  uint64_t reloads_succeeded = 0;
  uint64_t reloads_failed = 0;
};

// One listener's connections at scrape time: "http" (probes and metrics),
// "unix" (the control socket) or "tcp" (the control API on TCP).
struct ListenerGauges {
  std::string listener;
  uint64_t open = 0;
  uint64_t accepted = 0;
  uint64_t shed = 0;       // closed to admit a newer one at the limit
  uint64_t timed_out = 0;  // closed for sending no request, or reading no answer, in time
  uint64_t refused_for_descriptors = 0;
  uint64_t refused_at_limit = 0;
};

// Everything that is read at scrape time rather than counted as it happens.
struct StateSnapshot {
  std::vector<ProfileGauges> profiles;
  std::optional<absl::Time> session_expiration;
  bool ready = false;
  uint64_t generation = 0;
  int watch_subscribers = 0;
  std::vector<EndpointGauges> endpoints;
  std::vector<ClientKeyGauges> client_keys;
  std::vector<ListenerGauges> listeners;
};

// The sidecar's Prometheus metrics (text exposition format 0.0.4), every
// family named credsync_*. Label values come only from the configuration or
// from small fixed sets, never from callers, so cardinality stays bounded.
// Thread-safe; recording is a short critical section.
class SidecarMetrics {
 public:
  virtual ~SidecarMetrics() = default;

  // One HTTP call to STS or KMS: `action` is the API action
  // ("GetSecretValue", "AssumeRoleWithOIDC"), `outcome` one of
  // "ok", "client_error", "server_error", "throttled", "network_error".
  virtual void upstreamCall(absl::string_view action, absl::string_view outcome,
                            absl::Duration latency) = 0;
  // One completed fetch of a profile (scheduled or requested).
  virtual void fetchCompleted(absl::string_view profile, bool ok) = 0;
  // One Refresh RPC and how it ended ("already_current", "refreshed",
  // "rate_limited", "unchanged", "unavailable", "failed", "not_found",
  // "invalid", "deadline_exceeded", "cancelled", "unauthenticated");
  // `coalesced` when it
  // joined another caller's fetch.
  virtual void refreshCall(absl::string_view outcome, bool coalesced) = 0;
  // The configured hooks, so each has every result series from the first
  // scrape; called once, before the first hookRun.
  virtual void hooksConfigured(const std::vector<std::string>& hooks) = 0;
  // One hook run: `result` one of "ok", "failed", "timeout", "no_process".
  virtual void hookRun(absl::string_view hook, absl::string_view result,
                       absl::Duration duration) = 0;

  // One request to the loopback local API: `api` "credentials_uri",
  // "kms_agent" or "refused" (not for either, or refused before it was
  // looked at), and the HTTP status it was answered with.
  virtual void localApiRequest(absl::string_view api, int status) = 0;

  // The whole exposition, with the scrape-time state taken from `state`.
  virtual std::string render(const StateSnapshot& state, absl::Time now) const = 0;
};

// `version` goes into credsync_build_info; empty means the version this
// library was built as (the CMake project version).
std::unique_ptr<SidecarMetrics> makeSidecarMetrics(absl::string_view version = {});

}  // namespace credsync::metrics
