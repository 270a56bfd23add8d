#include "sidecar/injector/annotations.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/name_rules.h"
#include "sidecar/injector/kube_values.h"

namespace credsync::injector {
namespace {

using nlohmann::json;

constexpr char kSecretPrefix[] = "credsync.io/secret-";

absl::Status deny(absl::string_view key, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", rule));
}

// A key or value as it may appear in a one-line message.
std::string shown(absl::string_view text) { return oneLine(text, 128); }

// The string entries of metadata.<field>; a credsync.io/ key whose value is
// not a string is refused (the API server never sends one).
absl::StatusOr<std::map<std::string, std::string>> stringMap(const json& pod, const char* field) {
  std::map<std::string, std::string> out;
  const auto metadata = pod.find("metadata");
  if (metadata == pod.end() || !metadata->is_object()) return out;
  const auto map = metadata->find(field);
  if (map == metadata->end() || map->is_null()) return out;
  if (!map->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("metadata.", field, ": must be a mapping"));
  }
  for (const auto& [key, value] : map->items()) {
    if (!value.is_string()) {
      if (absl::StartsWith(key, kAnnotationPrefix)) return deny(shown(key), "must be a string");
      continue;
    }
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

// The names of the pod's containers, then of its init containers.
std::vector<std::string> containerNames(const json& pod) {
  std::vector<std::string> names;
  const auto spec = pod.find("spec");
  if (spec == pod.end() || !spec->is_object()) return names;
  for (const char* list : {"containers", "initContainers"}) {
    const auto containers = spec->find(list);
    if (containers == spec->end() || !containers->is_array()) continue;
    for (const json& container : *containers) {
      if (!container.is_object()) continue;
      const auto name = container.find("name");
      if (name != container.end() && name->is_string()) names.push_back(name->get<std::string>());
    }
  }
  return names;
}

// The names of the pod's init containers.
std::set<std::string> initContainerNames(const json& pod) {
  std::set<std::string> names;
  const auto spec = pod.find("spec");
  if (spec == pod.end() || !spec->is_object()) return names;
  const auto containers = spec->find("initContainers");
  if (containers == spec->end() || !containers->is_array()) return names;
  for (const json& container : *containers) {
    if (!container.is_object()) continue;
    const auto name = container.find("name");
    if (name != container.end() && name->is_string()) names.insert(name->get<std::string>());
  }
  return names;
}

bool isProfileName(absl::string_view name) {
  if (name.empty() || name.size() > 56) return false;
  return validateIniProfileName(name).ok();
}

// The keys this injector understands besides secret-<profile>.
// clang-format off
constexpr const char* kKnownKeys[] = {
    "credsync.io/inject",
    "credsync.io/status",
    "credsync.io/default-profile",
    "credsync.io/containers",
    "credsync.io/credentials-uri",
    "credsync.io/mode",
    "credsync.io/rrsa",
    "credsync.io/role-arn",
    "credsync.io/oidc-provider-arn",
    "credsync.io/region",
    "credsync.io/config-map",
    "credsync.io/cpu-request",
    "credsync.io/memory-request",
    "credsync.io/memory-limit",
    "credsync.io/cpu-limit",
    "credsync.io/log-level",
};
// clang-format on

bool isKnownKey(absl::string_view key) {
  return std::any_of(std::begin(kKnownKeys), std::end(kKnownKeys),
                     [&](const char* known) { return key == known; });
}

// Whether the label or annotation value `credsync.io/inject` opts in.
absl::StatusOr<bool> optedIn(const std::map<std::string, std::string>& labels,
                             const std::map<std::string, std::string>& annotations) {
  bool in = false;
  for (const auto* map : {&labels, &annotations}) {
    const auto it = map->find(kInjectKey);
    if (it == map->end()) continue;
    if (it->second == "true") {
      in = true;
    } else if (it->second != "false") {
      return deny(kInjectKey,
                  absl::StrCat("must be \"true\" or \"false\", not \"", shown(it->second), "\""));
    }
  }
  return in;
}

class Reader {
 public:
  Reader(const std::map<std::string, std::string>& annotations, const InjectionSettings& settings)
      : annotations_(annotations), settings_(settings) {}

  const std::string* find(const std::string& key) const {
    const auto it = annotations_.find(key);
    return it == annotations_.end() ? nullptr : &it->second;
  }

  absl::Status read(const json& pod, InjectionRequest& request) const {
    for (const auto& [key, value] : annotations_) {
      if (!absl::StartsWith(key, kAnnotationPrefix) || isKnownKey(key)) continue;
      if (!absl::StartsWith(key, kSecretPrefix)) {
        return deny(shown(key), "unknown credsync.io annotation (docs/injector.md lists them)");
      }
    }
    if (absl::Status status = readProfiles(request); !status.ok()) return status;
    if (absl::Status status = readContainers(pod, request); !status.ok()) return status;
    if (absl::Status status = readMode(request); !status.ok()) return status;
    if (absl::Status status = readIdentity(request); !status.ok()) return status;
    if (absl::Status status = readResources(request); !status.ok()) return status;
    if (const std::string* level = find("credsync.io/log-level")) {
      if (!log::parseLevel(*level).ok()) {
        return deny("credsync.io/log-level", "must be debug, info, warn or error");
      }
      request.log_level = *level;
    }
    return readCredentialsUri(pod, request);
  }

 private:
  absl::Status readProfiles(InjectionRequest& request) const {
    // The map is ordered by key, so the profiles come out sorted by name.
    for (const auto& [key, value] : annotations_) {
      if (!absl::StartsWith(key, kSecretPrefix)) continue;
      const std::string name = key.substr(sizeof(kSecretPrefix) - 1);
      if (!isProfileName(name)) {
        return deny(shown(key), "profile name must match ^[A-Za-z0-9_-]{1,56}$ (not DEFAULT)");
      }
      if (value.empty() || value.size() > 192 ||
          std::any_of(value.begin(), value.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; })) {
        return deny(shown(key), "must be a KMS secret name of 1 to 192 characters without spaces");
      }
      request.profiles.push_back({name, value, false});
    }
    const bool has_config_map = find("credsync.io/config-map") != nullptr;
    const std::string* chosen = find("credsync.io/default-profile");
    if (request.profiles.empty()) {
      if (chosen != nullptr) {
        return deny("credsync.io/default-profile", "names no credsync.io/secret-<profile>");
      }
      if (!has_config_map) {
        return deny("credsync.io/secret-<profile>",
                    "at least one is required (or credsync.io/config-map with profiles)");
      }
      return absl::OkStatus();
    }
    const auto named = [&](absl::string_view name) {
      return std::find_if(request.profiles.begin(), request.profiles.end(),
                          [&](const ProfileRequest& p) { return p.name == name; });
    };
    auto default_profile = request.profiles.end();
    if (chosen != nullptr) {
      default_profile = named(*chosen);
      if (default_profile == request.profiles.end()) {
        return deny(
            "credsync.io/default-profile",
            absl::StrCat("names no profile: there is no credsync.io/secret-", shown(*chosen)));
      }
      // credentials.ini's [default] is the default profile, so a profile
      // literally named "default" cannot be another one.
      if (*chosen != "default" && named("default") != request.profiles.end()) {
        return deny("credsync.io/default-profile",
                    "must be \"default\" when a profile is named default");
      }
    } else if (named("default") != request.profiles.end()) {
      default_profile = named("default");
    } else if (request.profiles.size() == 1) {
      default_profile = request.profiles.begin();
    } else {
      return deny("credsync.io/default-profile",
                  "required with several profiles and none named default");
    }
    default_profile->is_default = true;
    return absl::OkStatus();
  }

  absl::Status readContainers(const json& pod, InjectionRequest& request) const {
    const std::vector<std::string> names = containerNames(pod);
    const std::string* chosen = find("credsync.io/containers");
    if (chosen == nullptr) {
      request.app_containers = names;
      return absl::OkStatus();
    }
    std::set<std::string> wanted;
    for (absl::string_view part : absl::StrSplit(*chosen, ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (part.empty()) {
        return deny("credsync.io/containers",
                    "must be a comma-separated list of container names without empty entries");
      }
      if (std::find(names.begin(), names.end(), part) == names.end()) {
        return deny(
            "credsync.io/containers",
            absl::StrCat("the pod has no container or init container \"", shown(part), "\""));
      }
      wanted.insert(std::string(part));
    }
    for (const std::string& name : names) {
      if (wanted.count(name) > 0) request.app_containers.push_back(name);
    }
    return absl::OkStatus();
  }

  // credsync.io/credentials-uri: "app" or "app=profile", comma-separated.
  // Runs last: it checks against the profiles, the containers, the mode and
  // the RRSA route already read.
  absl::Status readCredentialsUri(const json& pod, InjectionRequest& request) const {
    constexpr char kKey[] = "credsync.io/credentials-uri";
    const std::string* chosen = find(kKey);
    if (chosen == nullptr) return absl::OkStatus();
    const std::vector<std::string> names = containerNames(pod);
    const std::set<std::string> init_names = initContainerNames(pod);
    std::set<std::string> only_containers;
    if (request.rrsa == RrsaRoute::kAckWebhook) {
      if (const auto it = annotations_.find(kOnlyContainersKey); it != annotations_.end()) {
        for (absl::string_view part : absl::StrSplit(it->second, ',')) {
          only_containers.insert(std::string(absl::StripAsciiWhitespace(part)));
        }
      }
    }
    const bool file_containers_chosen = find("credsync.io/containers") != nullptr;
    std::map<std::string, std::string> wanted;  // container -> profile
    for (absl::string_view part : absl::StrSplit(*chosen, ',')) {
      part = absl::StripAsciiWhitespace(part);
      std::string name(part);
      std::string profile = "default";
      if (const size_t equals = part.find('='); equals != absl::string_view::npos) {
        name = std::string(absl::StripAsciiWhitespace(part.substr(0, equals)));
        profile = std::string(absl::StripAsciiWhitespace(part.substr(equals + 1)));
        if (!isProfileName(profile) && profile != "default") {
          return deny(kKey,
                      absl::StrCat("container \"", shown(name), "\": profile \"", shown(profile),
                                   "\" must match ^[A-Za-z0-9_-]{1,56}$ (not DEFAULT)"));
        }
      }
      if (name.empty()) {
        return deny(kKey,
                    "must be a comma-separated list of container names (each optionally "
                    "name=profile) without empty entries");
      }
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        return deny(
            kKey, absl::StrCat("the pod has no container or init container \"", shown(name), "\""));
      }
      if (!wanted.emplace(name, profile).second) {
        return deny(kKey, absl::StrCat("container \"", shown(name), "\" is listed twice"));
      }
      // Profiles from a config-map alone are not visible here; the local
      // API answers 404 for a name it does not have.
      if (profile != "default" && !request.profiles.empty() &&
          std::none_of(request.profiles.begin(), request.profiles.end(),
                       [&](const ProfileRequest& p) { return p.name == profile; })) {
        return deny(
            kKey, absl::StrCat("container \"", shown(name), "\": the pod has no profile \"",
                               shown(profile), "\" (no credsync.io/secret-", shown(profile), ")"));
      }
      if (file_containers_chosen &&
          std::find(request.app_containers.begin(), request.app_containers.end(), name) !=
              request.app_containers.end()) {
        return deny(kKey, absl::StrCat("container \"", shown(name),
                                       "\" is also in credsync.io/containers; a container gets "
                                       "either the file or the URI"));
      }
      if (request.mode == SidecarMode::kClassic && init_names.count(name) > 0) {
        return deny(kKey, absl::StrCat("init container \"", shown(name),
                                       "\" cannot reach the local API in classic mode (credsync "
                                       "starts after the init containers); use native mode or the "
                                       "file"));
      }
      if (only_containers.count(name) > 0) {
        return deny(kKey, absl::StrCat("container \"", shown(name), "\" is in ", kOnlyContainersKey,
                                       ", so ACK's webhook would give it the RRSA variables, "
                                       "which every SDK's default chain reads before the URI"));
      }
    }
    for (const std::string& name : names) {
      const auto it = wanted.find(name);
      if (it != wanted.end()) request.uri_containers.push_back({name, it->second});
    }
    request.app_containers.erase(
        std::remove_if(request.app_containers.begin(), request.app_containers.end(),
                       [&](const std::string& name) { return wanted.count(name) > 0; }),
        request.app_containers.end());
    return absl::OkStatus();
  }

  absl::Status readMode(InjectionRequest& request) const {
    request.mode = settings_.default_mode;
    const std::string* mode = find("credsync.io/mode");
    if (mode == nullptr) return absl::OkStatus();
    if (*mode == "classic") {
      request.mode = SidecarMode::kClassic;
    } else if (*mode == "native") {
      if (!settings_.native_sidecars_available) {
        return deny("credsync.io/mode",
                    "native sidecars are not available in this cluster (the injector runs with "
                    "--native-sidecars=false); use classic");
      }
      request.mode = SidecarMode::kNative;
    } else {
      return deny("credsync.io/mode", "must be native or classic");
    }
    return absl::OkStatus();
  }

  absl::Status readIdentity(InjectionRequest& request) const {
    if (const std::string* config_map = find("credsync.io/config-map")) {
      if (!isDnsSubdomain(*config_map)) {
        return deny("credsync.io/config-map",
                    "must be a ConfigMap name (lower-case letters, digits, '-' and '.')");
      }
      request.config_map = *config_map;
    }
    if (const std::string* rrsa = find("credsync.io/rrsa")) {
      if (*rrsa == "project") {
        request.rrsa = RrsaRoute::kProject;
      } else if (*rrsa == "ack-webhook") {
        request.rrsa = RrsaRoute::kAckWebhook;
      } else if (*rrsa == "none") {
        request.rrsa = RrsaRoute::kNone;
      } else {
        return deny("credsync.io/rrsa", "must be project, ack-webhook or none");
      }
    }
    const std::string* role = find("credsync.io/role-arn");
    const std::string* provider = find("credsync.io/oidc-provider-arn");
    if (request.rrsa != RrsaRoute::kProject) {
      if (role != nullptr)
        return deny("credsync.io/role-arn", "only with credsync.io/rrsa: project");
      if (provider != nullptr) {
        return deny("credsync.io/oidc-provider-arn", "only with credsync.io/rrsa: project");
      }
      if (request.rrsa == RrsaRoute::kNone && request.config_map.empty()) {
        return deny("credsync.io/rrsa",
                    "none needs credsync.io/config-map, whose config gives the identity "
                    "(ecs_ram_role) or KMS instances");
      }
    } else {
      if (role == nullptr) {
        return deny("credsync.io/role-arn",
                    "required with credsync.io/rrsa: project (acs:ram::<account id>:role/<name>)");
      }
      if (!isRamArn(*role, "role/")) {
        return deny("credsync.io/role-arn", "must look like acs:ram::<account id>:role/<name>");
      }
      request.role_arn = *role;
      request.oidc_provider_arn = settings_.oidc_provider_arn;
      if (provider != nullptr) {
        if (!isRamArn(*provider, "oidc-provider/")) {
          return deny("credsync.io/oidc-provider-arn",
                      "must look like acs:ram::<account id>:oidc-provider/<provider name>");
        }
        request.oidc_provider_arn = *provider;
      }
      if (request.oidc_provider_arn.empty()) {
        return deny("credsync.io/oidc-provider-arn",
                    "required with credsync.io/rrsa: project (the injector has no "
                    "--oidc-provider-arn default)");
      }
    }
    // The injector's default region stands in only where no config-map
    // could name one: overlaid on a config-map, it would replace the
    // config-map's own kms.region.
    if (request.config_map.empty()) request.region = settings_.kms_region;
    if (const std::string* region = find("credsync.io/region")) {
      if (!isRegionId(*region)) {
        return deny("credsync.io/region", "must be a region id such as cn-hangzhou");
      }
      request.region = *region;
    }
    if (request.region.empty() && request.config_map.empty()) {
      return deny("credsync.io/region",
                  "required: the injector has no --kms-region default and there is no "
                  "credsync.io/config-map");
    }
    return absl::OkStatus();
  }

  absl::Status readResources(InjectionRequest& request) const {
    struct Resource {
      const char* key;
      const std::string& fallback;
      std::string& out;
    };
    const Resource resources[] = {
        {"credsync.io/cpu-request", settings_.cpu_request, request.cpu_request},
        {"credsync.io/memory-request", settings_.memory_request, request.memory_request},
        {"credsync.io/memory-limit", settings_.memory_limit, request.memory_limit},
        {"credsync.io/cpu-limit", settings_.cpu_limit, request.cpu_limit},
    };
    for (const Resource& resource : resources) {
      resource.out = resource.fallback;
      const std::string* value = find(resource.key);
      if (value == nullptr) continue;
      if (!isQuantity(*value)) {
        return deny(resource.key, "must be a Kubernetes quantity such as 10m, 0.5, 32Mi or 1Gi");
      }
      resource.out = *value;
    }
    return absl::OkStatus();
  }

  const std::map<std::string, std::string>& annotations_;
  const InjectionSettings& settings_;
};

}  // namespace

absl::StatusOr<AnnotationDecision> readAnnotations(const json& pod,
                                                   const InjectionSettings& settings) {
  AnnotationDecision decision;
  if (!pod.is_object()) return absl::InvalidArgumentError("request.object: must be a Pod object");
  absl::StatusOr<std::map<std::string, std::string>> labels = stringMap(pod, "labels");
  if (!labels.ok()) return labels.status();
  absl::StatusOr<std::map<std::string, std::string>> annotations = stringMap(pod, "annotations");
  if (!annotations.ok()) return annotations.status();
  absl::StatusOr<bool> opted_in = optedIn(*labels, *annotations);
  if (!opted_in.ok()) return opted_in.status();
  if (!*opted_in) {
    decision.skip_reason = "not opted in (credsync.io/inject is not \"true\")";
    return decision;
  }
  if (const auto status = annotations->find(kStatusKey); status != annotations->end()) {
    decision.skip_reason =
        absl::StrCat("already injected (credsync.io/status: ", shown(status->second), ")");
    return decision;
  }
  if (absl::Status status = Reader(*annotations, settings).read(pod, decision.request);
      !status.ok()) {
    return status;
  }
  decision.inject = true;
  return decision;
}

}  // namespace credsync::injector
