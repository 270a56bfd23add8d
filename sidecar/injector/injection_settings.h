#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/common/flags.h"

// What the injector puts into a pod unless the pod's annotations say
// otherwise: the operator's choices, given as flags of `credsync injector
// serve` and `credsync injector review` (the chart renders them from its
// injector.* values).
namespace credsync::injector {

enum class SidecarMode { kNative, kClassic };

struct InjectionSettings {
  std::string image;                               // --image (required)
  std::string image_pull_policy = "IfNotPresent";  // --image-pull-policy
  // --default-mode auto|native|classic; auto resolves by
  // --native-sidecars (the cluster runs Kubernetes 1.29+).
  SidecarMode default_mode = SidecarMode::kNative;
  bool native_sidecars_available = true;    // --native-sidecars true|false
  std::string kms_region;                   // --kms-region (default for pods)
  std::string oidc_provider_arn;            // --oidc-provider-arn (cluster's RRSA provider)
  int64_t token_expiration_seconds = 3600;  // --token-expiration-seconds
  int64_t run_as_user = 65532;              // --run-as-user
  int64_t run_as_group = 65532;             // --run-as-group
  int64_t fs_group = 65532;                 // --fs-group (only when the pod has none)
  std::string cpu_request = "10m";          // --cpu-request
  std::string memory_request = "32Mi";      // --memory-request
  std::string memory_limit = "128Mi";       // --memory-limit
  std::string cpu_limit;                    // --cpu-limit (none by default)
  absl::Duration sync_once_timeout = absl::Seconds(60);  // --sync-once-timeout
  int http_port = 9808;                                  // --sidecar-http-port
  std::string volume_size_limit = "4Mi";                 // --volume-size-limit
  // credsync's local API (local_api.listen 127.0.0.1:<port>) in pods with
  // credsync.io/credentials-uri; never the probe port.
  int local_api_port = 8190;  // --local-api-port
  // local_api.refetch_within: every SDK re-fetches within this after a change.
  absl::Duration local_api_refetch_within = absl::Seconds(60);  // --local-api-refetch-within
};

// The flags above, for parseFlags.
std::vector<FlagSpec> injectionFlagSpecs();
// Reads them; INVALID_ARGUMENT naming the flag on a bad value.
absl::StatusOr<InjectionSettings> parseInjectionSettings(const ParsedFlags& flags);

}  // namespace credsync::injector
