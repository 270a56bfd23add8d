#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "sidecar/injector/injection_settings.h"

// What a pod asks of the injector through its `credsync.io/*` annotations
// (and the `credsync.io/inject` label), validated against the pod and the
// operator's InjectionSettings. docs/injector.md has the table.
namespace credsync::injector {

inline constexpr char kAnnotationPrefix[] = "credsync.io/";
inline constexpr char kInjectKey[] = "credsync.io/inject";
inline constexpr char kStatusKey[] = "credsync.io/status";
inline constexpr char kStatusInjected[] = "injected";
inline constexpr char kOnlyContainersKey[] = "pod-identity.alibabacloud.com/only-containers";

// How credsync's containers get their RAM identity.
enum class RrsaRoute {
  kProject,     // credsync projects the service-account token and sets the RRSA variables
  kAckWebhook,  // ACK's ack-pod-identity-webhook injects them (only-containers annotation)
  kNone,        // no RRSA: the config-map's identity (ecs_ram_role, or KMS instances only)
};

// An app container that reads credsync's local API through
// ALIBABA_CLOUD_CREDENTIALS_URI instead of credentials.ini
// (credsync.io/credentials-uri).
struct UriContainer {
  std::string name;
  std::string profile;  // "default" (the default profile) or a profile's name
};

struct ProfileRequest {
  std::string name;         // credsync.io/secret-<name>
  std::string secret_name;  // the annotation's value
  bool is_default = false;
};

// A validated request to inject. Every field holds its final value (the
// annotation's, else the InjectionSettings default).
struct InjectionRequest {
  std::vector<ProfileRequest> profiles;  // sorted by name; empty only with a config-map
  // Names of the pod's containers and init containers that get the env and
  // mount, in the pod's order (containers first, then init containers).
  // Never holds a container of uri_containers: those get the URI instead.
  std::vector<std::string> app_containers;
  // credsync.io/credentials-uri, in the pod's order; empty: no local API.
  std::vector<UriContainer> uri_containers;
  // The local API's path secret (base64url of 32 random bytes): drawn per
  // admission by reviewAdmission when uri_containers is not empty.
  std::string local_api_path_secret;
  SidecarMode mode = SidecarMode::kNative;
  RrsaRoute rrsa = RrsaRoute::kProject;
  std::string role_arn;           // rrsa=project only
  std::string oidc_provider_arn;  // rrsa=project only
  std::string region;             // empty: the config-map's
  std::string config_map;         // empty: none
  std::string cpu_request;
  std::string memory_request;
  std::string memory_limit;
  std::string cpu_limit;  // empty: no limit
  std::string log_level;  // empty: the sidecar's default (or the config-map's)
};

// What the annotations say about this pod.
struct AnnotationDecision {
  bool inject = false;
  std::string skip_reason;   // when !inject: one line, e.g. "not opted in"
  InjectionRequest request;  // when inject
};

// Reads `pod` (the AdmissionReview's request.object). A pod that does not opt
// in, or that was already injected, is skipped without further checks, so a
// typo on a pod that did not ask for credsync never blocks it. Otherwise a
// bad or unknown annotation is INVALID_ARGUMENT with one line naming it:
// "credsync.io/secret-My Profile: profile name must match ^[A-Za-z0-9_-]{1,56}$".
absl::StatusOr<AnnotationDecision> readAnnotations(const nlohmann::json& pod,
                                                   const InjectionSettings& settings);

}  // namespace credsync::injector
