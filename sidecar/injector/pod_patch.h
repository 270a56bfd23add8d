#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "sidecar/injector/annotations.h"
#include "sidecar/injector/injection_settings.h"

// The RFC 6902 patch that injects credsync into a pod: the same containers,
// volumes, env and mounts the Helm chart's helpers (credsync.container,
// credsync.syncOnceContainer, credsync.volumes, credsync.appEnv,
// credsync.appVolumeMounts, credsync.webhookAnnotations) give a pod, added
// only where missing and never replacing anything of the app's.
namespace credsync::injector {

// Where the injected pieces live inside the pod.
inline constexpr char kOutputDir[] = "/var/run/credsync";
inline constexpr char kCredentialsFile[] = "/var/run/credsync/credentials.ini";
inline constexpr char kTokenDir[] = "/var/run/secrets/credsync/rrsa";
inline constexpr char kConfigMapDir[] = "/etc/credsync/injected";
inline constexpr char kConfigEnv[] = "CREDSYNC_CONFIG";
inline constexpr char kCredentialsFileEnv[] = "ALIBABA_CLOUD_CREDENTIALS_FILE";
inline constexpr char kCredentialsUriEnv[] = "ALIBABA_CLOUD_CREDENTIALS_URI";
inline constexpr char kEcsMetadataDisabledEnv[] = "ALIBABA_CLOUD_ECS_METADATA_DISABLED";
// credsync's own env var holding the local API's path secret
// (local_api.path_secret_env).
inline constexpr char kLocalApiPathSecretEnv[] = "CREDSYNC_LOCAL_API_PATH_SECRET";

struct PodPatch {
  nlohmann::json operations = nlohmann::json::array();  // RFC 6902, in order
  // For the AdmissionResponse: what was left out of an app container because
  // the app already had it.
  std::vector<std::string> warnings;
  // One line for the log: the containers added and the app containers given
  // the file or the URI (never the URI itself: it holds the path secret).
  std::string summary;
};

// Builds the patch for `pod` (request.object). INVALID_ARGUMENT with one
// line when the pod's own spec has a shape credsync cannot add to (e.g.
// spec.containers is not a list, fsGroup is not an integer).
absl::StatusOr<PodPatch> buildPodPatch(const nlohmann::json& pod, const InjectionRequest& request,
                                       const InjectionSettings& settings);

// The config document the credsync containers read from $CREDSYNC_CONFIG
// (compact JSON), for a pod whose output group is `fs_group`.
nlohmann::json injectedConfig(const InjectionRequest& request, const InjectionSettings& settings,
                              int64_t fs_group);

// ALIBABA_CLOUD_CREDENTIALS_URI for `profile` ("default": the default
// profile): http://127.0.0.1:<port>/<path secret>/v1/credentials/<profile>.
std::string credentialsUri(const InjectionSettings& settings, absl::string_view path_secret,
                           absl::string_view profile);

// "a/b~c" as a JSON Pointer reference token: "a~1b~0c" (RFC 6901).
std::string escapePointerToken(absl::string_view token);

}  // namespace credsync::injector
