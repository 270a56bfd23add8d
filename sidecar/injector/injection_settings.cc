#include "sidecar/injector/injection_settings.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/name_rules.h"
#include "sidecar/injector/kube_values.h"

namespace credsync::injector {
namespace {

absl::Status badFlag(absl::string_view flag, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", rule));
}

// Reads an integer flag in [min, max] into `out` when it is given.
absl::Status readInteger(const ParsedFlags& flags, const std::string& flag, int64_t min,
                         int64_t max, int64_t& out) {
  if (!flags.has(flag)) return absl::OkStatus();
  int64_t value = 0;
  if (!absl::SimpleAtoi(flags.values.at(flag), &value) || value < min || value > max) {
    return badFlag(flag, absl::StrCat("must be an integer from ", min, " to ", max));
  }
  out = value;
  return absl::OkStatus();
}

absl::Status readQuantity(const ParsedFlags& flags, const std::string& flag, bool may_be_empty,
                          std::string& out) {
  if (!flags.has(flag)) return absl::OkStatus();
  const std::string& value = flags.values.at(flag);
  if (value.empty() && may_be_empty) {
    out.clear();
    return absl::OkStatus();
  }
  if (!isQuantity(value)) {
    return badFlag(flag, "must be a Kubernetes quantity such as 10m, 0.5, 32Mi or 1Gi");
  }
  out = value;
  return absl::OkStatus();
}

}  // namespace

std::vector<FlagSpec> injectionFlagSpecs() {
  return {{"image"},
          {"image-pull-policy"},
          {"default-mode"},
          {"native-sidecars"},
          {"kms-region"},
          {"oidc-provider-arn"},
          {"token-expiration-seconds"},
          {"run-as-user"},
          {"run-as-group"},
          {"fs-group"},
          {"cpu-request"},
          {"memory-request"},
          {"memory-limit"},
          {"cpu-limit"},
          {"sync-once-timeout"},
          {"sidecar-http-port"},
          {"volume-size-limit"},
          {"local-api-port"},
          {"local-api-refetch-within"}};
}

absl::StatusOr<InjectionSettings> parseInjectionSettings(const ParsedFlags& flags) {
  InjectionSettings settings;
  if (!flags.has("image") || flags.values.at("image").empty()) {
    return badFlag("image", "required (the credsync image injected into pods)");
  }
  settings.image = flags.values.at("image");
  if (!isImageReference(settings.image)) {
    return badFlag("image", "must be an image reference without spaces");
  }
  if (flags.has("image-pull-policy")) {
    const std::string& policy = flags.values.at("image-pull-policy");
    if (policy != "Always" && policy != "IfNotPresent" && policy != "Never") {
      return badFlag("image-pull-policy", "must be Always, IfNotPresent or Never");
    }
    settings.image_pull_policy = policy;
  }
  if (flags.has("native-sidecars")) {
    const std::string& value = flags.values.at("native-sidecars");
    if (value != "true" && value != "false")
      return badFlag("native-sidecars", "must be true or false");
    settings.native_sidecars_available = value == "true";
  }
  const std::string mode = flags.has("default-mode") ? flags.values.at("default-mode") : "auto";
  if (mode == "auto") {
    settings.default_mode =
        settings.native_sidecars_available ? SidecarMode::kNative : SidecarMode::kClassic;
  } else if (mode == "native") {
    if (!settings.native_sidecars_available) {
      return badFlag("default-mode",
                     "native needs native sidecars (Kubernetes 1.29+), but --native-sidecars is "
                     "false");
    }
    settings.default_mode = SidecarMode::kNative;
  } else if (mode == "classic") {
    settings.default_mode = SidecarMode::kClassic;
  } else {
    return badFlag("default-mode", "must be auto, native or classic");
  }
  if (flags.has("kms-region")) {
    settings.kms_region = flags.values.at("kms-region");
    if (!settings.kms_region.empty() && !isRegionId(settings.kms_region)) {
      return badFlag("kms-region", "must be a region id such as cn-hangzhou");
    }
  }
  if (flags.has("oidc-provider-arn")) {
    settings.oidc_provider_arn = flags.values.at("oidc-provider-arn");
    if (!settings.oidc_provider_arn.empty() &&
        !isRamArn(settings.oidc_provider_arn, "oidc-provider/")) {
      return badFlag("oidc-provider-arn",
                     "must look like acs:ram::<account id>:oidc-provider/<provider name>");
    }
  }
  constexpr int64_t kMaxId = 2147483647;
  for (const auto& [flag, min, max, out] :
       {std::tuple<const char*, int64_t, int64_t, int64_t*>{"token-expiration-seconds", 600, 86400,
                                                            &settings.token_expiration_seconds},
        {"run-as-user", 1, kMaxId, &settings.run_as_user},
        {"run-as-group", 1, kMaxId, &settings.run_as_group},
        {"fs-group", 1, kMaxId, &settings.fs_group}}) {
    if (absl::Status status = readInteger(flags, flag, min, max, *out); !status.ok()) return status;
  }
  int64_t port = settings.http_port;
  if (absl::Status status = readInteger(flags, "sidecar-http-port", 1, 65535, port); !status.ok())
    return status;
  settings.http_port = static_cast<int>(port);
  int64_t local_api_port = settings.local_api_port;
  if (absl::Status status = readInteger(flags, "local-api-port", 1, 65535, local_api_port);
      !status.ok()) {
    return status;
  }
  if (local_api_port == settings.http_port) {
    // The probe port listens on 0.0.0.0, which takes the port on 127.0.0.1 too.
    return badFlag("local-api-port", "must differ from --sidecar-http-port");
  }
  settings.local_api_port = static_cast<int>(local_api_port);
  for (const auto& [flag, may_be_empty, out] :
       {std::tuple<const char*, bool, std::string*>{"cpu-request", true, &settings.cpu_request},
        {"memory-request", true, &settings.memory_request},
        {"memory-limit", true, &settings.memory_limit},
        {"cpu-limit", true, &settings.cpu_limit},
        {"volume-size-limit", false, &settings.volume_size_limit}}) {
    if (absl::Status status = readQuantity(flags, flag, may_be_empty, *out); !status.ok())
      return status;
  }
  if (flags.has("sync-once-timeout")) {
    absl::Duration timeout;
    if (!absl::ParseDuration(flags.values.at("sync-once-timeout"), &timeout) ||
        timeout < absl::Seconds(1) || timeout > absl::Hours(1) ||
        timeout != absl::Trunc(timeout, absl::Seconds(1))) {
      return badFlag("sync-once-timeout", "must be whole seconds from 1s to 1h, such as 60s or 2m");
    }
    settings.sync_once_timeout = timeout;
  }
  if (flags.has("local-api-refetch-within")) {
    // The sidecar's own bounds for local_api.refetch_within.
    absl::Duration within;
    if (!absl::ParseDuration(flags.values.at("local-api-refetch-within"), &within) ||
        within < absl::Seconds(10) || within > absl::Seconds(600) ||
        within != absl::Trunc(within, absl::Seconds(1))) {
      return badFlag("local-api-refetch-within",
                     "must be whole seconds from 10s to 600s, such as 60s or 2m");
    }
    settings.local_api_refetch_within = within;
  }
  return settings;
}

}  // namespace credsync::injector
