#include "sidecar/injector/pod_patch.h"

#include <algorithm>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace credsync::injector {
namespace {

using nlohmann::json;

constexpr int kDefaultHttpPort = 9808;

absl::Status badPod(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat("pod ", field, ": ", rule));
}

// The list at spec.<field>: null when absent, INVALID_ARGUMENT when present
// but not a list of objects.
absl::StatusOr<const json*> specList(const json& spec, const char* field) {
  const auto it = spec.find(field);
  if (it == spec.end() || it->is_null()) return nullptr;
  if (!it->is_array()) return badPod(absl::StrCat("spec.", field), "must be a list");
  for (const json& item : *it) {
    if (!item.is_object()) return badPod(absl::StrCat("spec.", field), "must hold objects");
  }
  return &*it;
}

std::string stringField(const json& object, const char* field) {
  const auto it = object.find(field);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// The first of base, base-2, base-3, ... not in `taken`, which it then joins.
std::string freeName(const std::string& base, std::set<std::string>& taken) {
  std::string name = base;
  for (int i = 2; taken.count(name) > 0; ++i) name = absl::StrCat(base, "-", i);
  taken.insert(name);
  return name;
}

json addOp(std::string path, json value) {
  return json{{"op", "add"}, {"path", std::move(path)}, {"value", std::move(value)}};
}

// Appends `item` to the list at `path` inside `parent` (field `field`),
// creating the list when the parent has none.
void appendTo(json& ops, const json& parent, const std::string& path, const char* field,
              json item) {
  const auto it = parent.find(field);
  if (it == parent.end() || it->is_null()) {
    ops.push_back(addOp(absl::StrCat(path, "/", field), json::array({std::move(item)})));
  } else {
    ops.push_back(addOp(absl::StrCat(path, "/", field, "/-"), std::move(item)));
  }
}

// The names the injector gives what it adds, each free in this pod.
struct Names {
  std::string volume;
  std::string token_volume;   // rrsa=project only
  std::string config_volume;  // with a config-map only
  std::string sidecar;
  std::string sync_once;  // classic only
};

json probe(const char* path, int period, int timeout, int failure_threshold) {
  return json{{"httpGet", {{"path", path}, {"port", "probes"}}},
              {"periodSeconds", period},
              {"timeoutSeconds", timeout},
              {"failureThreshold", failure_threshold}};
}

json resources(const InjectionRequest& request) {
  json requests = json::object();
  json limits = json::object();
  if (!request.cpu_request.empty()) requests["cpu"] = request.cpu_request;
  if (!request.memory_request.empty()) requests["memory"] = request.memory_request;
  if (!request.memory_limit.empty()) limits["memory"] = request.memory_limit;
  if (!request.cpu_limit.empty()) limits["cpu"] = request.cpu_limit;
  json out = json::object();
  if (!requests.empty()) out["requests"] = std::move(requests);
  if (!limits.empty()) out["limits"] = std::move(limits);
  return out;
}

// As the chart's credsync.containerSecurityContext.
json containerSecurityContext(const InjectionSettings& settings) {
  return json{{"runAsNonRoot", true},
              {"runAsUser", settings.run_as_user},
              {"runAsGroup", settings.run_as_group},
              {"readOnlyRootFilesystem", true},
              {"allowPrivilegeEscalation", false},
              {"capabilities", {{"drop", json::array({"ALL"})}}},
              {"seccompProfile", {{"type", "RuntimeDefault"}}}};
}

class PatchBuilder {
 public:
  PatchBuilder(const json& pod, const InjectionRequest& request, const InjectionSettings& settings)
      : pod_(pod), request_(request), settings_(settings) {}

  absl::StatusOr<PodPatch> build() {
    const auto spec_it = pod_.find("spec");
    if (spec_it == pod_.end() || !spec_it->is_object()) return badPod("spec", "must be an object");
    const json& spec = *spec_it;
    absl::StatusOr<const json*> containers = specList(spec, "containers");
    if (!containers.ok()) return containers.status();
    if (*containers == nullptr) return badPod("spec.containers", "must be a list");
    absl::StatusOr<const json*> init_containers = specList(spec, "initContainers");
    if (!init_containers.ok()) return init_containers.status();
    absl::StatusOr<const json*> volumes = specList(spec, "volumes");
    if (!volumes.ok()) return volumes.status();
    absl::StatusOr<const json*> ephemeral = specList(spec, "ephemeralContainers");
    if (!ephemeral.ok()) return ephemeral.status();

    std::set<std::string> volume_names;
    if (*volumes != nullptr) {
      for (const json& volume : **volumes) volume_names.insert(stringField(volume, "name"));
    }
    std::set<std::string> container_names;
    for (const json* list : {*containers, *init_containers, *ephemeral}) {
      if (list == nullptr) continue;
      for (const json& container : *list) container_names.insert(stringField(container, "name"));
    }
    const bool classic = request_.mode == SidecarMode::kClassic;
    names_.volume = freeName("credsync", volume_names);
    if (request_.rrsa == RrsaRoute::kProject) {
      names_.token_volume = freeName("credsync-rrsa-token", volume_names);
    }
    if (!request_.config_map.empty()) {
      names_.config_volume = freeName("credsync-config", volume_names);
    }
    names_.sidecar = freeName("credsync", container_names);
    if (classic) names_.sync_once = freeName("credsync-init", container_names);

    absl::StatusOr<int64_t> fs_group = podFsGroup(spec);
    if (!fs_group.ok()) return fs_group.status();
    config_text_ = injectedConfig(request_, settings_, *fs_group)
                       .dump(-1, ' ', false, json::error_handler_t::replace);

    for (const auto& [field, list] :
         {std::pair<const char*, const json*>{"containers", *containers},
          {"initContainers", *init_containers}}) {
      if (list == nullptr) continue;
      for (size_t i = 0; i < list->size(); ++i) {
        if (absl::Status status = giveFile(field, i, (*list)[i]); !status.ok()) return status;
        if (absl::Status status = giveUri(field, i, (*list)[i]); !status.ok()) return status;
      }
      for (const json& container : *list) warnOnPortClash(container);
    }

    // The app's own init containers come after credsync's, so that they can
    // read the file too: native, the sidecar runs before them; classic,
    // credsync-init has written it.
    const json first_init = classic ? syncOnceContainer() : sidecarContainer(/*native=*/true);
    if (*init_containers == nullptr) {
      patch_.operations.push_back(addOp("/spec/initContainers", json::array({first_init})));
    } else {
      patch_.operations.push_back(addOp("/spec/initContainers/0", first_init));
    }
    if (classic) {
      patch_.operations.push_back(addOp("/spec/containers/-", sidecarContainer(false)));
      // A classic sidecar never exits, so a run-to-completion pod (a Job's)
      // would never complete; native sidecars do not have that problem.
      const std::string restart_policy = stringField(spec, "restartPolicy");
      if (restart_policy == "Never" || restart_policy == "OnFailure") {
        patch_.warnings.push_back(
            absl::StrCat("credsync: classic mode in a pod with restartPolicy ", restart_policy,
                         ": the ", names_.sidecar,
                         " container does not exit, so the pod never completes; use "
                         "credsync.io/mode: native (Kubernetes 1.29+)"));
      }
    }
    if (*volumes == nullptr) {
      patch_.operations.push_back(addOp("/spec/volumes", json(podVolumes())));
    } else {
      for (json& volume : podVolumes()) {
        patch_.operations.push_back(addOp("/spec/volumes/-", std::move(volume)));
      }
    }
    addFsGroup(spec, *fs_group);
    addAnnotations();

    patch_.summary = absl::StrCat(
        "added ", classic ? absl::StrCat(names_.sync_once, " and ") : "", names_.sidecar, " (",
        classic ? "classic" : "native", "); file in ",
        given_.empty() ? "no app container" : absl::StrJoin(given_, ", "),
        given_uri_.empty() ? "" : absl::StrCat("; URI in ", absl::StrJoin(given_uri_, ", ")));
    return std::move(patch_);
  }

 private:
  // The pod's fsGroup, else the one the injector adds.
  absl::StatusOr<int64_t> podFsGroup(const json& spec) {
    const auto context = spec.find("securityContext");
    if (context == spec.end() || context->is_null()) return settings_.fs_group;
    if (!context->is_object()) return badPod("spec.securityContext", "must be an object");
    const auto group = context->find("fsGroup");
    if (group == context->end() || group->is_null()) return settings_.fs_group;
    if (!group->is_number_integer() || group->get<int64_t>() < 0 ||
        group->get<int64_t>() > 2147483647) {
      return badPod("spec.securityContext.fsGroup", "must be an integer from 0 to 2147483647");
    }
    pod_has_fs_group_ = true;
    return group->get<int64_t>();
  }

  // ALIBABA_CLOUD_CREDENTIALS_FILE and the read-only mount for one app
  // container, unless it is not chosen or already has either.
  absl::Status giveFile(const char* field, size_t index, const json& container) {
    const std::string name = stringField(container, "name");
    if (std::find(request_.app_containers.begin(), request_.app_containers.end(), name) ==
        request_.app_containers.end()) {
      return absl::OkStatus();
    }
    const std::string path = absl::StrCat("/spec/", field, "/", index);
    const auto mounts = container.find("volumeMounts");
    if (mounts != container.end() && !mounts->is_null()) {
      if (!mounts->is_array()) return badPod(absl::StrCat(name, ".volumeMounts"), "must be a list");
      for (const json& mount : *mounts) {
        if (!mount.is_object()) continue;
        if (absl::StripSuffix(stringField(mount, "mountPath"), "/") == kOutputDir) {
          patch_.warnings.push_back(absl::StrCat(
              "credsync: container ", name, " already mounts ", kOutputDir,
              "; credsync added neither its mount nor ", kCredentialsFileEnv, " there"));
          return absl::OkStatus();
        }
      }
    }
    const auto env = container.find("env");
    bool sets_file = false;
    if (env != container.end() && !env->is_null()) {
      if (!env->is_array()) return badPod(absl::StrCat(name, ".env"), "must be a list");
      for (const json& variable : *env) {
        if (variable.is_object() && stringField(variable, "name") == kCredentialsFileEnv) {
          sets_file = true;
        }
      }
    }
    if (sets_file) {
      patch_.warnings.push_back(absl::StrCat("credsync: container ", name, " sets ",
                                             kCredentialsFileEnv, " itself; kept its value"));
    } else {
      appendTo(patch_.operations, container, path, "env",
               json{{"name", kCredentialsFileEnv}, {"value", kCredentialsFile}});
    }
    appendTo(patch_.operations, container, path, "volumeMounts",
             json{{"name", names_.volume}, {"mountPath", kOutputDir}, {"readOnly", true}});
    given_.push_back(name);
    return absl::OkStatus();
  }

  // The local API's URI and ALIBABA_CLOUD_ECS_METADATA_DISABLED for one
  // container of credsync.io/credentials-uri (no file, no mount). What the
  // container sets itself is kept, with a warning when it defeats the URI.
  absl::Status giveUri(const char* field, size_t index, const json& container) {
    const std::string name = stringField(container, "name");
    const auto uri = std::find_if(request_.uri_containers.begin(), request_.uri_containers.end(),
                                  [&](const UriContainer& c) { return c.name == name; });
    if (uri == request_.uri_containers.end()) return absl::OkStatus();
    const std::string path = absl::StrCat("/spec/", field, "/", index);
    std::set<std::string> set_names;
    std::string metadata_disabled_value;
    const auto env = container.find("env");
    if (env != container.end() && !env->is_null()) {
      if (!env->is_array()) return badPod(absl::StrCat(name, ".env"), "must be a list");
      for (const json& variable : *env) {
        if (!variable.is_object()) continue;
        const std::string variable_name = stringField(variable, "name");
        set_names.insert(variable_name);
        if (variable_name == kEcsMetadataDisabledEnv) {
          metadata_disabled_value =
              variable.contains("value") ? stringField(variable, "value") : "<valueFrom>";
        }
      }
    }
    // Each comes before the URI in every SDK's default chain (environment
    // AccessKey, OIDC, the credentials file), so the URI would never be read.
    for (const char* earlier : {"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ROLE_ARN",
                                "ALIBABA_CLOUD_OIDC_TOKEN_FILE", kCredentialsFileEnv}) {
      if (set_names.count(earlier) > 0) {
        patch_.warnings.push_back(absl::StrCat("credsync: container ", name, " sets ", earlier,
                                               ", which every SDK's default chain reads before ",
                                               kCredentialsUriEnv,
                                               "; the URI will not be used while it is set"));
      }
    }
    // credentials-python sends the URI request through HTTP_PROXY and
    // ignores NO_PROXY (docs/integration.md): the path secret would leave
    // the pod, and the request would not reach 127.0.0.1 of this pod.
    for (const char* proxy : {"HTTP_PROXY", "http_proxy"}) {
      if (set_names.count(proxy) > 0) {
        patch_.warnings.push_back(absl::StrCat(
            "credsync: container ", name, " sets ", proxy,
            ", through which the Python SDK sends the credentials URI request (it ignores "
            "NO_PROXY), path secret included; unset it for a Python app"));
      }
    }
    json added = json::array();
    if (set_names.count(kCredentialsUriEnv) > 0) {
      patch_.warnings.push_back(absl::StrCat("credsync: container ", name, " sets ",
                                             kCredentialsUriEnv, " itself; kept its value"));
    } else {
      added.push_back(
          {{"name", kCredentialsUriEnv},
           {"value", credentialsUri(settings_, request_.local_api_path_secret, uri->profile)}});
    }
    if (set_names.count(kEcsMetadataDisabledEnv) == 0) {
      added.push_back({{"name", kEcsMetadataDisabledEnv}, {"value", "true"}});
    } else if (metadata_disabled_value != "true") {
      patch_.warnings.push_back(absl::StrCat(
          "credsync: container ", name, " sets ", kEcsMetadataDisabledEnv,
          " itself, not to \"true\"; on ECS nodes the node's RAM role comes before the URI"));
    }
    if (env == container.end() || env->is_null()) {
      if (!added.empty()) patch_.operations.push_back(addOp(absl::StrCat(path, "/env"), added));
    } else {
      for (json& variable : added) {
        patch_.operations.push_back(addOp(absl::StrCat(path, "/env/-"), std::move(variable)));
      }
    }
    given_uri_.push_back(name);
    return absl::OkStatus();
  }

  // Containers share the pod's network: an app port equal to credsync's
  // probe port or local API port makes one of them fail to bind.
  void warnOnPortClash(const json& container) {
    const auto ports = container.find("ports");
    if (ports == container.end() || !ports->is_array()) return;
    for (const json& port : *ports) {
      if (!port.is_object()) continue;
      const auto number = port.find("containerPort");
      if (number != port.end() && number->is_number_integer() &&
          number->get<int64_t>() == settings_.http_port) {
        patch_.warnings.push_back(
            absl::StrCat("credsync: container ", stringField(container, "name"), " declares port ",
                         settings_.http_port, ", credsync's probe port (--sidecar-http-port)"));
      }
      if (!request_.uri_containers.empty() && number != port.end() && number->is_number_integer() &&
          number->get<int64_t>() == settings_.local_api_port) {
        patch_.warnings.push_back(absl::StrCat(
            "credsync: container ", stringField(container, "name"), " declares port ",
            settings_.local_api_port, ", credsync's local API port (--local-api-port)"));
      }
    }
  }

  json env() const {
    json out = json::array();
    out.push_back({{"name", kConfigEnv}, {"value", config_text_}});
    out.push_back(
        {{"name", "POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}});
    if (!request_.uri_containers.empty()) {
      out.push_back({{"name", kLocalApiPathSecretEnv}, {"value", request_.local_api_path_secret}});
    }
    if (request_.rrsa == RrsaRoute::kProject) {
      out.push_back({{"name", "ALIBABA_CLOUD_ROLE_ARN"}, {"value", request_.role_arn}});
      out.push_back(
          {{"name", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"}, {"value", request_.oidc_provider_arn}});
      out.push_back({{"name", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"},
                     {"value", absl::StrCat(kTokenDir, "/token")}});
    }
    return out;
  }

  json mounts() const {
    json out = json::array();
    if (!names_.config_volume.empty()) {
      out.push_back(
          {{"name", names_.config_volume}, {"mountPath", kConfigMapDir}, {"readOnly", true}});
    }
    out.push_back({{"name", names_.volume}, {"mountPath", kOutputDir}});
    if (!names_.token_volume.empty()) {
      out.push_back({{"name", names_.token_volume}, {"mountPath", kTokenDir}, {"readOnly", true}});
    }
    return out;
  }

  // The config arguments: the config-map's file (when annotated), with the
  // annotation-derived document overlaid.
  json configArgs() const {
    json out = json::array();
    if (!names_.config_volume.empty()) {
      out.push_back("--config");
      out.push_back(absl::StrCat(kConfigMapDir, "/config.yaml"));
    }
    out.push_back("--config-env");
    out.push_back(kConfigEnv);
    return out;
  }

  json commonFields(const std::string& name) const {
    json container = json::object();
    container["name"] = name;
    container["image"] = settings_.image;
    container["imagePullPolicy"] = settings_.image_pull_policy;
    container["command"] = json::array({"/usr/local/bin/credsync"});
    container["env"] = env();
    const json limits = resources(request_);
    if (!limits.empty()) container["resources"] = limits;
    container["securityContext"] = containerSecurityContext(settings_);
    container["volumeMounts"] = mounts();
    return container;
  }

  // As the chart's credsync.container.
  json sidecarContainer(bool native) const {
    json container = commonFields(names_.sidecar);
    if (native) container["restartPolicy"] = "Always";
    json args = json::array({"run"});
    for (const json& arg : configArgs()) args.push_back(arg);
    container["args"] = std::move(args);
    container["ports"] = json::array(
        {{{"name", "probes"}, {"containerPort", settings_.http_port}, {"protocol", "TCP"}}});
    // With a native sidecar the kubelet starts the app containers only after
    // the startup probe succeeds, that is once every profile is written.
    if (native) container["startupProbe"] = probe("/readyz", 2, 2, 90);
    container["livenessProbe"] = probe("/healthz", 10, 2, 3);
    container["readinessProbe"] = probe("/readyz", 10, 2, 3);
    return container;
  }

  // As the chart's credsync.syncOnceContainer.
  json syncOnceContainer() const {
    json container = commonFields(names_.sync_once);
    json args = json::array({"sync", "--once"});
    for (const json& arg : configArgs()) args.push_back(arg);
    args.push_back("--timeout");
    args.push_back(absl::FormatDuration(settings_.sync_once_timeout));
    container["args"] = std::move(args);
    return container;
  }

  // As the chart's credsync.volumes.
  std::vector<json> podVolumes() const {
    std::vector<json> out;
    out.push_back(
        {{"name", names_.volume},
         {"emptyDir", {{"medium", "Memory"}, {"sizeLimit", settings_.volume_size_limit}}}});
    if (!names_.config_volume.empty()) {
      out.push_back({{"name", names_.config_volume},
                     {"configMap",
                      // Every key, not only config.yaml: a CA bundle or another file
                      // beside it (tls.ca_file: /etc/credsync/injected/ca.pem) is
                      // then there to name, as the chart's ConfigMap carries ca.pem.
                      {{"name", request_.config_map}, {"optional", false}}}});
    }
    if (!names_.token_volume.empty()) {
      out.push_back(
          {{"name", names_.token_volume},
           {"projected",
            {{"sources", json::array({{{"serviceAccountToken",
                                        {{"audience", "sts.aliyuncs.com"},
                                         {"expirationSeconds", settings_.token_expiration_seconds},
                                         {"path", "token"}}}}})}}}});
    }
    return out;
  }

  void addFsGroup(const json& spec, int64_t fs_group) {
    if (pod_has_fs_group_) return;
    const auto context = spec.find("securityContext");
    if (context == spec.end() || context->is_null()) {
      patch_.operations.push_back(addOp("/spec/securityContext", json{{"fsGroup", fs_group}}));
    } else {
      patch_.operations.push_back(addOp("/spec/securityContext/fsGroup", fs_group));
    }
  }

  void addAnnotations() {
    json wanted = json::object();
    wanted[kStatusKey] = kStatusInjected;
    std::string only_containers;
    bool replace_only_containers = false;
    const json* annotations = nullptr;
    if (const auto metadata = pod_.find("metadata");
        metadata != pod_.end() && metadata->is_object()) {
      if (const auto it = metadata->find("annotations"); it != metadata->end() && it->is_object()) {
        annotations = &*it;
      }
    }
    if (request_.rrsa == RrsaRoute::kAckWebhook) {
      only_containers = request_.mode == SidecarMode::kClassic
                            ? absl::StrCat(names_.sync_once, ",", names_.sidecar)
                            : names_.sidecar;
      // The app may already limit ACK's injection to containers of its own:
      // theirs are kept, ours appended.
      if (annotations != nullptr) {
        const auto theirs = annotations->find(kOnlyContainersKey);
        if (theirs != annotations->end() && theirs->is_string() &&
            !theirs->get<std::string>().empty()) {
          only_containers = absl::StrCat(theirs->get<std::string>(), ",", only_containers);
          replace_only_containers = true;
        }
      }
      wanted[kOnlyContainersKey] = only_containers;
    }
    if (annotations == nullptr) {
      const auto metadata = pod_.find("metadata");
      if (metadata == pod_.end() || !metadata->is_object()) {
        patch_.operations.push_back(addOp("/metadata", json{{"annotations", wanted}}));
      } else {
        patch_.operations.push_back(addOp("/metadata/annotations", wanted));
      }
      return;
    }
    for (const auto& [key, value] : wanted.items()) {
      const std::string path = absl::StrCat("/metadata/annotations/", escapePointerToken(key));
      if (key == kOnlyContainersKey && replace_only_containers) {
        patch_.operations.push_back(json{{"op", "replace"}, {"path", path}, {"value", value}});
      } else {
        patch_.operations.push_back(addOp(path, value));
      }
    }
  }

  const json& pod_;
  const InjectionRequest& request_;
  const InjectionSettings& settings_;
  Names names_;
  std::string config_text_;
  bool pod_has_fs_group_ = false;
  std::vector<std::string> given_;
  std::vector<std::string> given_uri_;
  PodPatch patch_;
};

}  // namespace

json injectedConfig(const InjectionRequest& request, const InjectionSettings& settings,
                    int64_t fs_group) {
  json config = json::object();
  if (!request.profiles.empty()) {
    json profiles = json::array();
    for (const ProfileRequest& profile : request.profiles) {
      json entry = {{"name", profile.name}, {"secret_name", profile.secret_name}};
      if (profile.is_default) entry["default"] = true;
      profiles.push_back(std::move(entry));
    }
    config["profiles"] = std::move(profiles);
  }
  if (!request.region.empty()) config["kms"] = {{"region", request.region}};
  config["output"] = {{"group", fs_group}};
  if (!request.log_level.empty()) config["log"] = {{"level", request.log_level}};
  // The probes name this port; a config-map could name another, so with one
  // the address is always set.
  if (settings.http_port != kDefaultHttpPort || !request.config_map.empty()) {
    config["control"] = {{"http_address", absl::StrCat("0.0.0.0:", settings.http_port)}};
  }
  if (!request.uri_containers.empty()) {
    config["local_api"] = {
        {"listen", absl::StrCat("127.0.0.1:", settings.local_api_port)},
        {"path_secret_env", kLocalApiPathSecretEnv},
        {"refetch_within",
         absl::StrCat(absl::ToInt64Seconds(settings.local_api_refetch_within), "s")}};
  }
  return config;
}

std::string credentialsUri(const InjectionSettings& settings, absl::string_view path_secret,
                           absl::string_view profile) {
  return absl::StrCat("http://127.0.0.1:", settings.local_api_port, "/", path_secret,
                      "/v1/credentials/", profile);
}

std::string escapePointerToken(absl::string_view token) {
  std::string out;
  for (const char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<PodPatch> buildPodPatch(const json& pod, const InjectionRequest& request,
                                       const InjectionSettings& settings) {
  return PatchBuilder(pod, request, settings).build();
}

}  // namespace credsync::injector
