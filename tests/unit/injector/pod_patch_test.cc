#include "sidecar/injector/pod_patch.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/config/config.h"
#include "sidecar/injector/annotations.h"
#include "tests/common/status_matchers.h"
#include "tests/unit/injector/injector_fixtures.h"

namespace credsync::injector {
namespace {

using nlohmann::json;

using ::credsync::testing::StatusIs;
using testing::applyPatch;
using ::testing::Contains;
using ::testing::ElementsAre;
using testing::envOf;
using testing::findContainer;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::loadReview;
using testing::namesOf;
using ::testing::Not;
using ::testing::SizeIs;
using testing::testSettings;

// A fixture's pod, the patch for it, and the pod with the patch applied.
struct Injected {
  json pod;
  PodPatch patch;
  json patched;
};

// What reviewAdmission would draw for a pod with credsync.io/credentials-uri.
constexpr char kPathSecret[] = "test-path-secret-0123456789abcdefghijklmnopqr";

Injected inject(const json& pod, const InjectionSettings& settings = testSettings()) {
  Injected out;
  out.pod = pod;
  absl::StatusOr<AnnotationDecision> decision = readAnnotations(pod, settings);
  EXPECT_TRUE(decision.ok()) << decision.status();
  if (!decision.ok()) return out;
  EXPECT_TRUE(decision->inject) << decision->skip_reason;
  if (!decision->request.uri_containers.empty()) {
    decision->request.local_api_path_secret = kPathSecret;
  }
  absl::StatusOr<PodPatch> patch = buildPodPatch(pod, decision->request, settings);
  EXPECT_TRUE(patch.ok()) << patch.status();
  if (!patch.ok()) return out;
  out.patch = *patch;
  std::optional<json> patched = applyPatch(pod, patch->operations);
  EXPECT_TRUE(patched.has_value()) << patch->operations.dump(2);
  if (patched) out.patched = *patched;
  return out;
}

Injected injectFixture(const std::string& name,
                       const InjectionSettings& settings = testSettings()) {
  return inject(loadReview(name)["request"]["object"], settings);
}

// The credsync container's environment as the sidecar sees it: its env
// entries (what ACK's webhook would add with `extra`), POD_NAME.
config::Environment containerEnvironment(const json& container,
                                         std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> variables = envOf(container);
  variables["POD_NAME"] = "pod-0";
  for (auto& [name, value] : extra) variables[name] = value;
  return [variables](const std::string& name) -> std::optional<std::string> {
    const auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

// The config the injected credsync container runs with, loaded by credsync's
// own loader: proof the sidecar accepts what the injector wrote.
absl::StatusOr<config::Config> sidecarConfig(const json& container,
                                             std::map<std::string, std::string> extra = {}) {
  return config::parseConfig(envOf(container).at(std::string(kConfigEnv)),
                             containerEnvironment(container, std::move(extra)));
}

// Verifies every fixture's patch applies, uses only add (replace only for
// ACK's annotation), and never adds below a missing parent.
TEST(PodPatchTest, EveryFixturePatchApplies) {
  for (const std::string& name : testing::fixtureNames()) {
    if (name == "already-injected") continue;
    SCOPED_TRACE(name);
    const Injected injected = injectFixture(name);
    ASSERT_TRUE(injected.patched.is_object());
    for (const json& op : injected.patch.operations) {
      EXPECT_THAT(op["op"].get<std::string>(), ::testing::AnyOf("add", "replace"));
    }
    // Nothing of the app's is removed: every original container keeps its place.
    const json& before = injected.pod["spec"]["containers"];
    for (size_t i = 0; i < before.size(); ++i) {
      EXPECT_EQ(injected.patched["spec"]["containers"][i]["name"], before[i]["name"]);
      EXPECT_EQ(injected.patched["spec"]["containers"][i]["image"], before[i]["image"]);
    }
    EXPECT_EQ(injected.patched["metadata"]["annotations"]["credsync.io/status"], "injected");
  }
}

// Verifies a plain Deployment's pod gets the native sidecar as the chart
// renders it, the file in its app container, and a config the sidecar loads.
TEST(PodPatchTest, DeploymentNative) {
  const Injected injected = injectFixture("deployment");
  const json& spec = injected.patched["spec"];
  EXPECT_THAT(namesOf(spec["initContainers"]), ElementsAre("credsync"));
  EXPECT_THAT(namesOf(spec["containers"]), ElementsAre("orders"));
  const json& sidecar = spec["initContainers"][0];
  EXPECT_EQ(sidecar["restartPolicy"], "Always");
  EXPECT_EQ(sidecar["image"], "registry.example.com/credsync:1.0.0");
  EXPECT_EQ(sidecar["imagePullPolicy"], "IfNotPresent");
  EXPECT_EQ(sidecar["command"], json::array({"/usr/local/bin/credsync"}));
  EXPECT_EQ(sidecar["args"], json::array({"run", "--config-env", "CREDSYNC_CONFIG"}));
  EXPECT_EQ(sidecar["ports"],
            json::parse(R"([{"name":"probes","containerPort":9808,"protocol":"TCP"}])"));
  EXPECT_EQ(sidecar["startupProbe"], json::parse(R"({"httpGet":{"path":"/readyz","port":"probes"},
      "periodSeconds":2,"timeoutSeconds":2,"failureThreshold":90})"));
  EXPECT_EQ(sidecar["livenessProbe"], json::parse(R"({"httpGet":{"path":"/healthz","port":"probes"},
      "periodSeconds":10,"timeoutSeconds":2,"failureThreshold":3})"));
  EXPECT_EQ(sidecar["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_EQ(sidecar["resources"], json::parse(R"({"requests":{"cpu":"10m","memory":"32Mi"},
      "limits":{"memory":"128Mi"}})"));
  EXPECT_EQ(sidecar["securityContext"], json::parse(R"({"runAsNonRoot":true,"runAsUser":65532,
      "runAsGroup":65532,"readOnlyRootFilesystem":true,"allowPrivilegeEscalation":false,
      "capabilities":{"drop":["ALL"]},"seccompProfile":{"type":"RuntimeDefault"}})"));
  EXPECT_EQ(sidecar["volumeMounts"],
            json::parse(R"([{"name":"credsync","mountPath":"/var/run/credsync"},
      {"name":"credsync-rrsa-token","mountPath":"/var/run/secrets/credsync/rrsa","readOnly":true}])"));
  const std::map<std::string, std::string> env = envOf(sidecar);
  EXPECT_EQ(env.at("ALIBABA_CLOUD_ROLE_ARN"), "acs:ram::1234567890123456:role/orders-kms-reader");
  EXPECT_EQ(env.at("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"), testSettings().oidc_provider_arn);
  EXPECT_EQ(env.at("ALIBABA_CLOUD_OIDC_TOKEN_FILE"), "/var/run/secrets/credsync/rrsa/token");
  EXPECT_EQ(env.at("POD_NAME"), "<valueFrom>");

  const json& app = spec["containers"][0];
  EXPECT_EQ(envOf(app).at("ALIBABA_CLOUD_CREDENTIALS_FILE"), "/var/run/credsync/credentials.ini");
  EXPECT_EQ(envOf(app).at("SPRING_PROFILES_ACTIVE"), "prod");
  EXPECT_EQ(app["volumeMounts"].back(),
            json::parse(R"({"name":"credsync","mountPath":"/var/run/credsync","readOnly":true})"));
  EXPECT_THAT(app["volumeMounts"], SizeIs(2));

  EXPECT_THAT(namesOf(spec["volumes"]),
              ElementsAre("kube-api-access-7xk2p", "credsync", "credsync-rrsa-token"));
  EXPECT_EQ(spec["volumes"][1]["emptyDir"],
            json::parse(R"({"medium":"Memory","sizeLimit":"4Mi"})"));
  EXPECT_EQ(
      spec["volumes"][2]["projected"]["sources"][0]["serviceAccountToken"],
      json::parse(R"({"audience":"sts.aliyuncs.com","expirationSeconds":3600,"path":"token"})"));
  EXPECT_EQ(spec["securityContext"]["fsGroup"], 65532);
  EXPECT_THAT(injected.patch.warnings, IsEmpty());

  absl::StatusOr<config::Config> loaded = sidecarConfig(sidecar);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_THAT(loaded->profiles, SizeIs(1));
  EXPECT_EQ(loaded->profiles[0].name, "default");
  EXPECT_EQ(loaded->profiles[0].secret_name, "orders/ram-user-ak");
  EXPECT_EQ(loaded->kms.region, "cn-hangzhou");
  EXPECT_EQ(loaded->output.group, 65532u);
  EXPECT_EQ(loaded->output.directory, "/var/run/credsync");
  EXPECT_EQ(loaded->control.http_address, "0.0.0.0:9808");
  EXPECT_EQ(loaded->identity.type, config::IdentityType::kOidc);
  EXPECT_EQ(loaded->identity.role_arn, "acs:ram::1234567890123456:role/orders-kms-reader");
}

// Verifies a Job's pod keeps restartPolicy Never and gets the native sidecar,
// which does not keep the Job from completing.
TEST(PodPatchTest, JobPod) {
  const Injected injected = injectFixture("job");
  const json& spec = injected.patched["spec"];
  EXPECT_EQ(spec["restartPolicy"], "Never");
  EXPECT_THAT(namesOf(spec["initContainers"]), ElementsAre("credsync"));
  EXPECT_EQ(spec["initContainers"][0]["restartPolicy"], "Always");
  absl::StatusOr<config::Config> loaded = sidecarConfig(spec["initContainers"][0]);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->kms.region, "cn-shanghai");
  ASSERT_THAT(loaded->profiles, SizeIs(1));
  EXPECT_EQ(loaded->profiles[0].name, "reports");
  EXPECT_TRUE(loaded->profiles[0].is_default);
  EXPECT_EQ(envOf(spec["containers"][0]).at("ALIBABA_CLOUD_CREDENTIALS_FILE"),
            "/var/run/credsync/credentials.ini");
}

// Verifies classic mode in a Job's pod is injected with a warning that the
// pod would never complete.
TEST(PodPatchTest, ClassicJobWarns) {
  json pod = loadReview("job")["request"]["object"];
  pod["metadata"]["annotations"]["credsync.io/mode"] = "classic";
  const Injected injected = inject(pod);
  EXPECT_THAT(namesOf(injected.patched["spec"]["containers"]), ElementsAre("report", "credsync"));
  ASSERT_THAT(injected.patch.warnings, SizeIs(1));
  EXPECT_THAT(injected.patch.warnings[0], HasSubstr("restartPolicy Never"));
}

// Verifies credsync goes before the app's init containers, and only the
// named init container gets the file.
TEST(PodPatchTest, InitContainers) {
  const Injected injected = injectFixture("init-containers");
  const json& spec = injected.patched["spec"];
  EXPECT_THAT(namesOf(spec["initContainers"]), ElementsAre("credsync", "wait-db", "migrate"));
  EXPECT_FALSE(
      envOf(*findContainer(injected.patched, "wait-db")).count("ALIBABA_CLOUD_CREDENTIALS_FILE"));
  EXPECT_THAT(namesOf((*findContainer(injected.patched, "wait-db"))["volumeMounts"]),
              Not(Contains("credsync")));
  for (const char* name : {"migrate", "catalog"}) {
    const json& container = *findContainer(injected.patched, name);
    EXPECT_EQ(envOf(container).at("ALIBABA_CLOUD_CREDENTIALS_FILE"),
              "/var/run/credsync/credentials.ini")
        << name;
    EXPECT_THAT(namesOf(container["volumeMounts"]), Contains("credsync")) << name;
  }
}

// Verifies only the chosen containers of a multi-container pod get the file,
// and the profiles, log level and resources reach the sidecar.
TEST(PodPatchTest, MultiContainerChosenOnly) {
  const Injected injected = injectFixture("multi-container");
  const json& spec = injected.patched["spec"];
  EXPECT_THAT(namesOf(spec["containers"]), ElementsAre("gateway", "worker", "envoy", "fluent-bit"));
  for (const char* name : {"gateway", "worker"}) {
    EXPECT_TRUE(
        envOf(*findContainer(injected.patched, name)).count("ALIBABA_CLOUD_CREDENTIALS_FILE"))
        << name;
  }
  for (const char* name : {"envoy", "fluent-bit"}) {
    EXPECT_EQ(*findContainer(injected.patched, name), *findContainer(injected.pod, name)) << name;
  }
  const json& sidecar = spec["initContainers"][0];
  EXPECT_EQ(sidecar["resources"], json::parse(R"({"requests":{"cpu":"10m","memory":"32Mi"},
      "limits":{"memory":"96Mi","cpu":"200m"}})"));
  absl::StatusOr<config::Config> loaded = sidecarConfig(sidecar);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_THAT(loaded->profiles, SizeIs(2));
  EXPECT_EQ(loaded->profiles[0].name, "default");  // the loader puts the default first
  EXPECT_TRUE(loaded->profiles[0].is_default);
  EXPECT_EQ(loaded->profiles[1].name, "billing");
  EXPECT_EQ(loaded->profiles[1].secret_name, "payments/billing-ak");
  EXPECT_EQ(loaded->log_level, log::Level::kDebug);
}

// Verifies classic mode for a root app: credsync-init first, the sidecar
// last without a startup probe, credsync itself never root, the app's own
// pod settings kept and fsGroup added beside them.
TEST(PodPatchTest, RootAppClassic) {
  const Injected injected = injectFixture("root-app");
  const json& spec = injected.patched["spec"];
  EXPECT_THAT(namesOf(spec["initContainers"]), ElementsAre("credsync-init"));
  EXPECT_THAT(namesOf(spec["containers"]), ElementsAre("erp", "credsync"));
  const json& init = spec["initContainers"][0];
  EXPECT_EQ(init["args"],
            json::array({"sync", "--once", "--config-env", "CREDSYNC_CONFIG", "--timeout", "1m"}));
  EXPECT_FALSE(init.contains("restartPolicy"));
  EXPECT_FALSE(init.contains("livenessProbe"));
  const json& sidecar = spec["containers"][1];
  EXPECT_FALSE(sidecar.contains("restartPolicy"));
  EXPECT_FALSE(sidecar.contains("startupProbe"));
  EXPECT_TRUE(sidecar.contains("livenessProbe"));
  EXPECT_TRUE(sidecar.contains("readinessProbe"));
  for (const json* container : {&init, &sidecar}) {
    EXPECT_EQ((*container)["securityContext"]["runAsUser"], 65532);
    EXPECT_EQ((*container)["securityContext"]["runAsNonRoot"], true);
  }
  EXPECT_EQ(spec["securityContext"],
            json::parse(R"({"runAsUser":0,"runAsGroup":0,"fsGroup":65532})"));
  EXPECT_EQ(spec["containers"][0]["securityContext"]["runAsUser"], 0);
  ASSERT_TRUE(sidecarConfig(init).ok()) << sidecarConfig(init).status();
  EXPECT_EQ(envOf(init).at(kConfigEnv), envOf(sidecar).at(kConfigEnv));
}

// Verifies a pod's own fsGroup is kept and becomes the output group.
TEST(PodPatchTest, OwnSecurityContextKept) {
  const Injected injected = injectFixture("own-security-context");
  EXPECT_EQ(injected.patched["spec"]["securityContext"], injected.pod["spec"]["securityContext"]);
  for (const json& op : injected.patch.operations) {
    EXPECT_THAT(op["path"].get<std::string>(), Not(HasSubstr("securityContext")));
  }
  const json& sidecar = injected.patched["spec"]["initContainers"][0];
  EXPECT_EQ(envOf(sidecar).at("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
            "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0ffee");
  absl::StatusOr<config::Config> loaded = sidecarConfig(sidecar);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->output.group, 2000u);
}

// Verifies names the pod already uses are not taken, the app's own
// ALIBABA_CLOUD_CREDENTIALS_FILE and mount path are kept with warnings, and
// ACK's only-containers keeps the app's names with credsync's appended.
TEST(PodPatchTest, NameCollisionsAndAckWebhook) {
  const Injected injected = injectFixture("name-collision");
  const json& spec = injected.patched["spec"];
  EXPECT_THAT(namesOf(spec["volumes"]), ElementsAre("credsync", "credsync-2", "shared",
                                                    "kube-api-access-7xk2p", "credsync-3"));
  EXPECT_THAT(namesOf(spec["initContainers"]), ElementsAre("credsync-2"));
  const json& indexer = *findContainer(injected.patched, "indexer");
  EXPECT_EQ(envOf(indexer).at("ALIBABA_CLOUD_CREDENTIALS_FILE"), "/etc/indexer/credentials.ini");
  EXPECT_EQ(
      indexer["volumeMounts"].back(),
      json::parse(R"({"name":"credsync-3","mountPath":"/var/run/credsync","readOnly":true})"));
  EXPECT_EQ(*findContainer(injected.patched, "sidecar"), *findContainer(injected.pod, "sidecar"));
  // The app's own container named credsync is an app container like any.
  EXPECT_EQ(
      envOf(*findContainer(injected.patched, "credsync")).at("ALIBABA_CLOUD_CREDENTIALS_FILE"),
      "/var/run/credsync/credentials.ini");
  ASSERT_THAT(injected.patch.warnings, SizeIs(2));
  EXPECT_THAT(injected.patch.warnings[0], HasSubstr("indexer sets ALIBABA_CLOUD_CREDENTIALS_FILE"));
  EXPECT_THAT(injected.patch.warnings[1], HasSubstr("sidecar already mounts /var/run/credsync"));

  const json& sidecar = spec["initContainers"][0];
  EXPECT_EQ(sidecar["volumeMounts"],
            json::parse(R"([{"name":"credsync-3","mountPath":"/var/run/credsync"}])"));
  EXPECT_FALSE(envOf(sidecar).count("ALIBABA_CLOUD_ROLE_ARN"));
  EXPECT_EQ(injected.patched["metadata"]["annotations"][kOnlyContainersKey], "indexer,credsync-2");
  EXPECT_EQ(injected.patched["spec"]["securityContext"], json::parse(R"({"fsGroup":65532})"));
  // ACK's webhook gives the identity through these variables.
  absl::StatusOr<config::Config> loaded =
      sidecarConfig(sidecar, {{"ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/ack"},
                              {"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/p"},
                              {"ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/var/run/secrets/ack/token"}});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
}

// Verifies the ACK route in classic mode names both credsync containers, and
// a pod without only-containers gets it added.
TEST(PodPatchTest, AckWebhookClassicNamesBothContainers) {
  json pod = loadReview("deployment")["request"]["object"];
  pod["metadata"]["annotations"] = {{"credsync.io/secret-default", "x"},
                                    {"credsync.io/rrsa", "ack-webhook"},
                                    {"credsync.io/mode", "classic"}};
  const Injected injected = inject(pod);
  EXPECT_EQ(injected.patched["metadata"]["annotations"][kOnlyContainersKey],
            "credsync-init,credsync");
  EXPECT_THAT(namesOf(injected.patched["spec"]["volumes"]), Not(Contains("credsync-rrsa-token")));
}

// Verifies the config-map route: the ConfigMap volume and mount, --config
// before --config-env, and the overlay loads over a config-map's document.
TEST(PodPatchTest, ConfigMapOverlay) {
  const Injected injected = injectFixture("config-map");
  const json& spec = injected.patched["spec"];
  EXPECT_THAT(namesOf(spec["volumes"]),
              ElementsAre("kube-api-access-7xk2p", "credsync", "credsync-config"));
  EXPECT_EQ(spec["volumes"][2]["configMap"]["name"], "backup-credsync");
  EXPECT_EQ(spec["volumes"][2]["configMap"]["optional"], false);
  const json& sidecar = spec["initContainers"][0];
  EXPECT_EQ(sidecar["args"], json::array({"run", "--config", "/etc/credsync/injected/config.yaml",
                                          "--config-env", "CREDSYNC_CONFIG"}));
  EXPECT_EQ(
      sidecar["volumeMounts"][0],
      json::parse(
          R"({"name":"credsync-config","mountPath":"/etc/credsync/injected","readOnly":true})"));
  const json document = json::parse(envOf(sidecar).at(kConfigEnv));
  EXPECT_EQ(document, json::parse(R"({"output":{"group":65532},
      "control":{"http_address":"0.0.0.0:9808"}})"));
  const std::string config_map =
      "identity:\n  type: ecs_ram_role\nkms:\n  region: cn-beijing\n"
      "profiles:\n  - name: default\n    secret_name: ops/backup-ak\n"
      "control:\n  http_address: 0.0.0.0:9999\n";
  absl::StatusOr<config::Config> loaded =
      config::parseConfigDocuments({{"/etc/credsync/injected/config.yaml", config_map},
                                    {"$CREDSYNC_CONFIG", envOf(sidecar).at(kConfigEnv)}},
                                   containerEnvironment(sidecar));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->kms.region, "cn-beijing");
  EXPECT_EQ(loaded->identity.type, config::IdentityType::kEcsRamRole);
  EXPECT_EQ(loaded->control.http_address, "0.0.0.0:9808");
  EXPECT_EQ(loaded->output.group, 65532u);
}

// Verifies a pod without volumes, init containers, securityContext or
// annotations gets each as a whole, never an add below a missing parent.
TEST(PodPatchTest, AbsentListsAreCreatedWhole) {
  json pod = {{"metadata", {{"name", "bare"}, {"labels", {{"credsync.io/inject", "true"}}}}},
              {"spec", {{"containers", json::array({{{"name", "app"}, {"image", "app:1"}}})}}}};
  const InjectionSettings settings = testSettings();
  InjectionRequest request;
  request.profiles = {{"default", "s", true}};
  request.app_containers = {"app"};
  request.role_arn = "acs:ram::1:role/r";
  request.oidc_provider_arn = settings.oidc_provider_arn;
  request.region = "cn-hangzhou";
  absl::StatusOr<PodPatch> patch = buildPodPatch(pod, request, settings);
  ASSERT_TRUE(patch.ok()) << patch.status();
  std::vector<std::string> paths;
  for (const json& op : patch->operations) paths.push_back(op["path"]);
  EXPECT_THAT(paths, ElementsAre("/spec/containers/0/env", "/spec/containers/0/volumeMounts",
                                 "/spec/initContainers", "/spec/volumes", "/spec/securityContext",
                                 "/metadata/annotations"));
  std::optional<json> patched = applyPatch(pod, patch->operations);
  ASSERT_TRUE(patched.has_value());
  EXPECT_EQ((*patched)["metadata"]["annotations"],
            json::parse(R"({"credsync.io/status":"injected"})"));
  EXPECT_EQ((*patched)["spec"]["securityContext"], json::parse(R"({"fsGroup":65532})"));
  EXPECT_THAT(namesOf((*patched)["spec"]["volumes"]),
              ElementsAre("credsync", "credsync-rrsa-token"));
}

// Verifies the settings reach the pod: port, user, group, volume size,
// token lifetime, and a port clash with an app warns.
TEST(PodPatchTest, SettingsAndPortClash) {
  InjectionSettings settings = testSettings();
  settings.http_port = 8080;
  settings.run_as_user = 1001;
  settings.run_as_group = 1002;
  settings.fs_group = 1003;
  settings.volume_size_limit = "1Mi";
  settings.token_expiration_seconds = 7200;
  settings.image_pull_policy = "Always";
  const Injected injected = injectFixture("deployment", settings);
  const json& sidecar = injected.patched["spec"]["initContainers"][0];
  EXPECT_EQ(sidecar["ports"][0]["containerPort"], 8080);
  EXPECT_EQ(sidecar["imagePullPolicy"], "Always");
  EXPECT_EQ(sidecar["securityContext"]["runAsUser"], 1001);
  EXPECT_EQ(sidecar["securityContext"]["runAsGroup"], 1002);
  EXPECT_EQ(injected.patched["spec"]["securityContext"]["fsGroup"], 1003);
  EXPECT_EQ(injected.patched["spec"]["volumes"][1]["emptyDir"]["sizeLimit"], "1Mi");
  EXPECT_EQ(injected.patched["spec"]["volumes"][2]["projected"]["sources"][0]["serviceAccountToken"]
                            ["expirationSeconds"],
            7200);
  ASSERT_THAT(injected.patch.warnings, SizeIs(1));
  EXPECT_THAT(injected.patch.warnings[0], HasSubstr("orders declares port 8080"));
  absl::StatusOr<config::Config> loaded = sidecarConfig(sidecar);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->control.http_address, "0.0.0.0:8080");
  EXPECT_EQ(loaded->output.group, 1003u);
}

// Verifies a pod whose spec credsync cannot add to is refused in one line.
TEST(PodPatchTest, UnusableSpecsAreRefused) {
  InjectionRequest request;
  request.app_containers = {"app"};
  const std::vector<std::pair<json, std::string>> cases = {
      {json{{"metadata", json::object()}}, "pod spec: "},
      {json{{"spec", {{"containers", "app"}}}}, "pod spec.containers: "},
      {json{{"spec", {{"containers", json::array()}, {"volumes", json::object()}}}},
       "pod spec.volumes: "},
      {json{{"spec", {{"containers", json::array()}, {"securityContext", {{"fsGroup", "2000"}}}}}},
       "pod spec.securityContext.fsGroup: "},
      {json{{"spec", {{"containers", json::array({{{"name", "app"}, {"env", "x"}}})}}}},
       "pod app.env: "},
  };
  for (const auto& [pod, prefix] : cases) {
    EXPECT_THAT(buildPodPatch(pod, request, testSettings()),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::StartsWith(prefix)))
        << pod.dump();
  }
}

// Verifies JSON Pointer escaping of annotation keys.
TEST(PodPatchTest, PointerEscaping) {
  EXPECT_EQ(escapePointerToken("credsync.io/status"), "credsync.io~1status");
  EXPECT_EQ(escapePointerToken("a~b/c"), "a~0b~1c");
}

// Verifies an injected pod is skipped on a second look (reinvocation).
TEST(PodPatchTest, PatchedPodsAreSkipped) {
  for (const std::string& name : testing::fixtureNames()) {
    if (name == "already-injected") continue;
    const Injected injected = injectFixture(name);
    absl::StatusOr<AnnotationDecision> again = readAnnotations(injected.patched, testSettings());
    ASSERT_TRUE(again.ok()) << name;
    EXPECT_FALSE(again->inject) << name;
  }
}

// Verifies credsync.io/credentials-uri: the listed containers get the URI
// (their profile, the pod's path secret) and ECS metadata disabled, and
// neither the file variable, the mount nor any RRSA variable; the others get
// the file; credsync gets the secret and the local_api section.
TEST(PodPatchTest, CredentialsUri) {
  const Injected injected = injectFixture("credentials-uri");
  const json& spec = injected.patched["spec"];
  const json& api = *findContainer(injected.patched, "api");
  EXPECT_EQ(api["env"], json::parse(R"([
      {"name":"ALIBABA_CLOUD_CREDENTIALS_URI",
       "value":"http://127.0.0.1:8190/test-path-secret-0123456789abcdefghijklmnopqr/v1/credentials/default"},
      {"name":"ALIBABA_CLOUD_ECS_METADATA_DISABLED","value":"true"}])"));
  EXPECT_EQ(api["volumeMounts"], (*findContainer(injected.pod, "api"))["volumeMounts"]);
  const json& exporter = *findContainer(injected.patched, "exporter");
  const std::map<std::string, std::string> exporter_env = envOf(exporter);
  EXPECT_EQ(exporter_env.at("ALIBABA_CLOUD_CREDENTIALS_URI"),
            "http://127.0.0.1:8190/test-path-secret-0123456789abcdefghijklmnopqr/v1/credentials/"
            "billing");
  EXPECT_EQ(exporter_env.at("ALIBABA_CLOUD_ECS_METADATA_DISABLED"), "true");
  EXPECT_EQ(exporter_env.at("EXPORT_BUCKET"), "reports-archive");  // its own kept, first
  EXPECT_EQ(exporter["env"][0]["name"], "EXPORT_BUCKET");
  for (const json* container : {&api, &exporter}) {
    for (const char* absent :
         {"ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_ROLE_ARN",
          "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"}) {
      EXPECT_FALSE(envOf(*container).count(absent)) << (*container)["name"] << " " << absent;
    }
  }
  const json& batch = *findContainer(injected.patched, "legacy-batch");
  EXPECT_EQ(envOf(batch).at("ALIBABA_CLOUD_CREDENTIALS_FILE"), "/var/run/credsync/credentials.ini");
  EXPECT_FALSE(envOf(batch).count("ALIBABA_CLOUD_CREDENTIALS_URI"));

  const json& sidecar = spec["initContainers"][0];
  const std::map<std::string, std::string> env = envOf(sidecar);
  EXPECT_EQ(env.at("CREDSYNC_LOCAL_API_PATH_SECRET"), kPathSecret);
  const json config = json::parse(env.at("CREDSYNC_CONFIG"));
  EXPECT_EQ(config["local_api"], json::parse(R"({"listen":"127.0.0.1:8190",
      "path_secret_env":"CREDSYNC_LOCAL_API_PATH_SECRET","refetch_within":"60s"})"));
  // The secret is only in credsync's env and the URIs, not in its config.
  EXPECT_FALSE(absl::StrContains(env.at("CREDSYNC_CONFIG"), kPathSecret));
  EXPECT_THAT(injected.patch.warnings, IsEmpty());
  EXPECT_THAT(injected.patch.summary, HasSubstr("file in legacy-batch; URI in api, exporter"));
  EXPECT_FALSE(absl::StrContains(injected.patch.summary, kPathSecret));

  // Other settings; classic mode: credsync-init carries the secret too.
  InjectionSettings settings = testSettings();
  settings.local_api_port = 18190;
  settings.local_api_refetch_within = absl::Seconds(120);
  json pod = loadReview("credentials-uri")["request"]["object"];
  pod["metadata"]["annotations"]["credsync.io/mode"] = "classic";
  const Injected classic = inject(pod, settings);
  EXPECT_THAT(envOf(*findContainer(classic.patched, "api")).at("ALIBABA_CLOUD_CREDENTIALS_URI"),
              ::testing::StartsWith("http://127.0.0.1:18190/"));
  for (const char* name : {"credsync-init", "credsync"}) {
    const std::map<std::string, std::string> classic_env =
        envOf(*findContainer(classic.patched, name));
    EXPECT_EQ(classic_env.at("CREDSYNC_LOCAL_API_PATH_SECRET"), kPathSecret) << name;
    EXPECT_EQ(json::parse(classic_env.at("CREDSYNC_CONFIG"))["local_api"]["refetch_within"],
              "120s");
  }

  // The sidecar's own loader takes the document.
  absl::StatusOr<config::Config> loaded = sidecarConfig(sidecar);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->local_api.path_secret_env, "CREDSYNC_LOCAL_API_PATH_SECRET");
  EXPECT_EQ(loaded->local_api.refetch_within, absl::Seconds(60));
}

// Verifies a pod without credsync.io/credentials-uri gets no local API.
TEST(PodPatchTest, NoLocalApiWithoutTheAnnotation) {
  for (const std::string& name : testing::fixtureNames()) {
    if (name == "already-injected" || name == "credentials-uri") continue;
    SCOPED_TRACE(name);
    const Injected injected = injectFixture(name);
    const std::map<std::string, std::string> env =
        envOf(injected.patched["spec"]["initContainers"][0]);
    EXPECT_FALSE(env.count("CREDSYNC_LOCAL_API_PATH_SECRET"));
    EXPECT_FALSE(json::parse(env.at("CREDSYNC_CONFIG")).contains("local_api"));
    EXPECT_FALSE(absl::StrContains(injected.patch.operations.dump(), "CREDENTIALS_URI"));
  }
}

// Verifies the warnings for a URI container whose own env defeats the URI
// (it comes last in every SDK's default chain) or sets it itself, and for
// an app port on the local API's.
TEST(PodPatchTest, CredentialsUriWarnings) {
  json pod = loadReview("credentials-uri")["request"]["object"];
  json& api = pod["spec"]["containers"][0];
  api["env"] = json::parse(R"([
      {"name":"ALIBABA_CLOUD_ACCESS_KEY_ID","valueFrom":{"secretKeyRef":{"name":"ak","key":"id"}}},
      {"name":"ALIBABA_CLOUD_ROLE_ARN","value":"acs:ram::1:role/r"},
      {"name":"ALIBABA_CLOUD_OIDC_TOKEN_FILE","value":"/var/run/token"},
      {"name":"ALIBABA_CLOUD_CREDENTIALS_FILE","value":"/etc/app/credentials.ini"},
      {"name":"ALIBABA_CLOUD_ECS_METADATA_DISABLED","value":"false"},
      {"name":"HTTP_PROXY","value":"http://proxy.corp:3128"}])");
  api["ports"][0]["containerPort"] = 8190;
  json& exporter = pod["spec"]["containers"][1];
  exporter["env"].push_back({{"name", "ALIBABA_CLOUD_CREDENTIALS_URI"}, {"value", "http://x/"}});
  exporter["env"].push_back({{"name", "ALIBABA_CLOUD_ECS_METADATA_DISABLED"}, {"value", "true"}});
  const Injected injected = inject(pod);
  const std::vector<std::string>& warnings = injected.patch.warnings;
  ASSERT_THAT(warnings, SizeIs(8)) << ::testing::PrintToString(warnings);
  for (size_t i = 0; i < 4; ++i) {
    const char* variables[] = {"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ROLE_ARN",
                               "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "ALIBABA_CLOUD_CREDENTIALS_FILE"};
    EXPECT_EQ(warnings[i], absl::StrCat("credsync: container api sets ", variables[i],
                                        ", which every SDK's default chain reads before "
                                        "ALIBABA_CLOUD_CREDENTIALS_URI; the URI will not be used "
                                        "while it is set"));
  }
  EXPECT_THAT(warnings[4], HasSubstr("api sets HTTP_PROXY, through which the Python SDK sends"));
  EXPECT_THAT(warnings[5], HasSubstr("api sets ALIBABA_CLOUD_ECS_METADATA_DISABLED itself, not to "
                                     "\"true\""));
  EXPECT_EQ(
      warnings[6],
      "credsync: container exporter sets ALIBABA_CLOUD_CREDENTIALS_URI itself; kept its value");
  EXPECT_EQ(warnings[7],
            "credsync: container api declares port 8190, credsync's local API port "
            "(--local-api-port)");
  // The app's own values are kept, none duplicated; the URI is still added to api.
  const std::map<std::string, std::string> api_env = envOf(*findContainer(injected.patched, "api"));
  EXPECT_EQ(api_env.at("ALIBABA_CLOUD_ECS_METADATA_DISABLED"), "false");
  EXPECT_EQ(api_env.at("ALIBABA_CLOUD_CREDENTIALS_FILE"), "/etc/app/credentials.ini");
  EXPECT_THAT(api_env.at("ALIBABA_CLOUD_CREDENTIALS_URI"), HasSubstr(kPathSecret));
  const json& patched_exporter = *findContainer(injected.patched, "exporter");
  EXPECT_EQ(envOf(patched_exporter).at("ALIBABA_CLOUD_CREDENTIALS_URI"), "http://x/");
  EXPECT_EQ(patched_exporter["env"].size(), exporter["env"].size());
}

// Verifies the ACK route leaves URI containers out of only-containers, so
// ACK's webhook gives them no RRSA variables.
TEST(PodPatchTest, CredentialsUriOnAckRoute) {
  json pod = loadReview("credentials-uri")["request"]["object"];
  json& annotations = pod["metadata"]["annotations"];
  annotations.erase("credsync.io/role-arn");
  annotations["credsync.io/rrsa"] = "ack-webhook";
  annotations["pod-identity.alibabacloud.com/only-containers"] = "legacy-batch";
  const Injected injected = inject(pod);
  EXPECT_EQ(injected.patched["metadata"]["annotations"][kOnlyContainersKey],
            "legacy-batch,credsync");
}

}  // namespace
}  // namespace credsync::injector
