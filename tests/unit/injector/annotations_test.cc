#include "sidecar/injector/annotations.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/status_matchers.h"
#include "tests/unit/injector/injector_fixtures.h"

namespace credsync::injector {
namespace {

using nlohmann::json;

using ::credsync::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::loadReview;
using ::testing::StartsWith;
using testing::testSettings;

// A pod with an app container and a migrate init container, opted in by
// label, with these annotations.
json podWith(std::map<std::string, std::string> annotations) {
  json pod = {{"metadata",
               {{"name", "app-0"},
                {"labels", {{"credsync.io/inject", "true"}}},
                {"annotations", json::object()}}},
              {"spec",
               {{"containers", json::array({{{"name", "app"}}, {{"name", "proxy"}}})},
                {"initContainers", json::array({{{"name", "migrate"}}})}}}};
  for (const auto& [key, value] : annotations) pod["metadata"]["annotations"][key] = value;
  return pod;
}

std::map<std::string, std::string> minimal() {
  return {{"credsync.io/secret-default", "app/ak"},
          {"credsync.io/role-arn", "acs:ram::123:role/app"}};
}

std::map<std::string, std::string> minimalWith(std::map<std::string, std::string> extra) {
  std::map<std::string, std::string> out = minimal();
  for (auto& [key, value] : extra) out[key] = value;
  return out;
}

// Verifies the defaults: the profile "default", every container (regular,
// then init), the injector's mode, region and resources, RRSA projected.
TEST(AnnotationsTest, MinimalRequestTakesDefaults) {
  absl::StatusOr<AnnotationDecision> decision = readAnnotations(podWith(minimal()), testSettings());
  ASSERT_TRUE(decision.ok()) << decision.status();
  ASSERT_TRUE(decision->inject);
  const InjectionRequest& request = decision->request;
  ASSERT_EQ(request.profiles.size(), 1u);
  EXPECT_EQ(request.profiles[0].name, "default");
  EXPECT_EQ(request.profiles[0].secret_name, "app/ak");
  EXPECT_TRUE(request.profiles[0].is_default);
  EXPECT_THAT(request.app_containers, ElementsAre("app", "proxy", "migrate"));
  EXPECT_EQ(request.mode, SidecarMode::kNative);
  EXPECT_EQ(request.rrsa, RrsaRoute::kProject);
  EXPECT_EQ(request.role_arn, "acs:ram::123:role/app");
  EXPECT_EQ(request.oidc_provider_arn, testSettings().oidc_provider_arn);
  EXPECT_EQ(request.region, "cn-hangzhou");
  EXPECT_EQ(request.cpu_request, "10m");
  EXPECT_EQ(request.memory_limit, "128Mi");
  EXPECT_EQ(request.cpu_limit, "");
  EXPECT_EQ(request.log_level, "");
}

// Verifies several profiles come sorted, the default chosen by annotation.
TEST(AnnotationsTest, SeveralProfilesSortedWithChosenDefault) {
  absl::StatusOr<AnnotationDecision> decision =
      readAnnotations(podWith({{"credsync.io/secret-zeta", "z"},
                               {"credsync.io/secret-alpha", "a"},
                               {"credsync.io/default-profile", "zeta"},
                               {"credsync.io/role-arn", "acs:ram::123:role/app"},
                               {"credsync.io/containers", "migrate, app"},
                               {"credsync.io/mode", "classic"},
                               {"credsync.io/region", "cn-beijing"},
                               {"credsync.io/oidc-provider-arn", "acs:ram::123:oidc-provider/p"},
                               {"credsync.io/cpu-limit", "1"},
                               {"credsync.io/log-level", "debug"}}),
                      testSettings());
  ASSERT_TRUE(decision.ok()) << decision.status();
  const InjectionRequest& request = decision->request;
  ASSERT_EQ(request.profiles.size(), 2u);
  EXPECT_EQ(request.profiles[0].name, "alpha");
  EXPECT_FALSE(request.profiles[0].is_default);
  EXPECT_EQ(request.profiles[1].name, "zeta");
  EXPECT_TRUE(request.profiles[1].is_default);
  EXPECT_THAT(request.app_containers, ElementsAre("app", "migrate"));
  EXPECT_EQ(request.mode, SidecarMode::kClassic);
  EXPECT_EQ(request.region, "cn-beijing");
  EXPECT_EQ(request.oidc_provider_arn, "acs:ram::123:oidc-provider/p");
  EXPECT_EQ(request.cpu_limit, "1");
  EXPECT_EQ(request.log_level, "debug");
}

// Verifies opt-in by label or annotation, and the skips.
TEST(AnnotationsTest, OptInAndSkips) {
  json pod = podWith(minimal());
  pod["metadata"]["labels"].erase("credsync.io/inject");
  absl::StatusOr<AnnotationDecision> decision = readAnnotations(pod, testSettings());
  ASSERT_TRUE(decision.ok());
  EXPECT_FALSE(decision->inject);
  EXPECT_THAT(decision->skip_reason, HasSubstr("not opted in"));

  pod["metadata"]["annotations"]["credsync.io/inject"] = "true";
  EXPECT_TRUE(readAnnotations(pod, testSettings())->inject);

  // Label true wins over annotation false: either opts in.
  pod["metadata"]["labels"]["credsync.io/inject"] = "true";
  pod["metadata"]["annotations"]["credsync.io/inject"] = "false";
  EXPECT_TRUE(readAnnotations(pod, testSettings())->inject);

  pod["metadata"]["annotations"]["credsync.io/status"] = "injected";
  decision = readAnnotations(pod, testSettings());
  ASSERT_TRUE(decision.ok());
  EXPECT_FALSE(decision->inject);
  EXPECT_THAT(decision->skip_reason, HasSubstr("already injected"));
}

// Verifies a pod that did not opt in is skipped even with a bad annotation.
TEST(AnnotationsTest, TyposOnPodsNotOptedInAreIgnored) {
  json pod = podWith({{"credsync.io/secrets-default", "x"}, {"credsync.io/mode", "bogus"}});
  pod["metadata"]["labels"]["credsync.io/inject"] = "false";
  absl::StatusOr<AnnotationDecision> decision = readAnnotations(pod, testSettings());
  ASSERT_TRUE(decision.ok());
  EXPECT_FALSE(decision->inject);
  // No metadata at all: skipped too.
  decision = readAnnotations(json{{"spec", json::object()}}, testSettings());
  ASSERT_TRUE(decision.ok());
  EXPECT_FALSE(decision->inject);
}

struct DenialCase {
  std::map<std::string, std::string> annotations;
  std::string message_prefix;
};

// Verifies each bad annotation is denied with one line naming it.
TEST(AnnotationsTest, EveryBadAnnotationIsDeniedByName) {
  const std::vector<DenialCase> cases = {
      {minimalWith({{"credsync.io/inject", "yes"}}), "credsync.io/inject: must be \"true\""},
      {minimalWith({{"credsync.io/secrets-default", "x"}}),
       "credsync.io/secrets-default: unknown credsync.io annotation"},
      {minimalWith({{"credsync.io/secret-My Profile", "x"}}),
       "credsync.io/secret-My Profile: profile name must match ^[A-Za-z0-9_-]{1,56}$"},
      {minimalWith({{"credsync.io/secret-" + std::string(57, 'a'), "x"}}),
       "credsync.io/secret-aaaa"},
      {minimalWith({{"credsync.io/secret-DEFAULT", "x"}}), "credsync.io/secret-DEFAULT: "},
      {minimalWith({{"credsync.io/secret-default", ""}}),
       "credsync.io/secret-default: must be a KMS secret name"},
      {minimalWith({{"credsync.io/secret-default", "a b"}}), "credsync.io/secret-default: "},
      {minimalWith({{"credsync.io/default-profile", "missing"}}),
       "credsync.io/default-profile: names no profile"},
      {minimalWith({{"credsync.io/secret-other", "o"}, {"credsync.io/default-profile", "other"}}),
       "credsync.io/default-profile: must be \"default\" when a profile is named default"},
      {{{"credsync.io/secret-a", "a"},
        {"credsync.io/secret-b", "b"},
        {"credsync.io/role-arn", "acs:ram::123:role/app"}},
       "credsync.io/default-profile: required with several profiles"},
      {{{"credsync.io/role-arn", "acs:ram::123:role/app"}},
       "credsync.io/secret-<profile>: at least one is required"},
      {minimalWith({{"credsync.io/containers", "app,web"}}),
       "credsync.io/containers: the pod has no container or init container \"web\""},
      {minimalWith({{"credsync.io/containers", "app,,proxy"}}), "credsync.io/containers: "},
      {minimalWith({{"credsync.io/containers", ""}}), "credsync.io/containers: "},
      {minimalWith({{"credsync.io/mode", "sidecar"}}),
       "credsync.io/mode: must be native or classic"},
      {minimalWith({{"credsync.io/rrsa", "irsa"}}),
       "credsync.io/rrsa: must be project, ack-webhook or none"},
      {minimalWith({{"credsync.io/role-arn", "arn:aws:iam::123:role/app"}}),
       "credsync.io/role-arn: must look like acs:ram::<account id>:role/<name>"},
      {{{"credsync.io/secret-default", "x"}}, "credsync.io/role-arn: required"},
      {minimalWith({{"credsync.io/oidc-provider-arn", "acs:ram::123:role/x"}}),
       "credsync.io/oidc-provider-arn: must look like"},
      {minimalWith({{"credsync.io/rrsa", "ack-webhook"}}),
       "credsync.io/role-arn: only with credsync.io/rrsa: project"},
      {{{"credsync.io/secret-default", "x"}, {"credsync.io/rrsa", "none"}},
       "credsync.io/rrsa: none needs credsync.io/config-map"},
      {{{"credsync.io/secret-default", "x"},
        {"credsync.io/rrsa", "ack-webhook"},
        {"credsync.io/oidc-provider-arn", "acs:ram::123:oidc-provider/p"}},
       "credsync.io/oidc-provider-arn: only with credsync.io/rrsa: project"},
      {minimalWith({{"credsync.io/region", "CN_Hangzhou"}}), "credsync.io/region: "},
      {minimalWith({{"credsync.io/config-map", "Bad_Name"}}), "credsync.io/config-map: "},
      {minimalWith({{"credsync.io/cpu-request", "ten"}}),
       "credsync.io/cpu-request: must be a Kubernetes quantity"},
      {minimalWith({{"credsync.io/memory-request", "1GB"}}), "credsync.io/memory-request: "},
      {minimalWith({{"credsync.io/memory-limit", "-1Gi"}}), "credsync.io/memory-limit: "},
      {minimalWith({{"credsync.io/cpu-limit", "x"}}), "credsync.io/cpu-limit: "},
      {minimalWith({{"credsync.io/log-level", "verbose"}}),
       "credsync.io/log-level: must be debug, info, warn or error"},
  };
  for (const DenialCase& c : cases) {
    EXPECT_THAT(readAnnotations(podWith(c.annotations), testSettings()),
                StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(c.message_prefix)))
        << ::testing::PrintToString(c.annotations);
  }
}

// Verifies what depends on the injector's own settings: no region default,
// no OIDC provider default, no native sidecars.
TEST(AnnotationsTest, DenialsFromMissingInjectorDefaults) {
  InjectionSettings settings = testSettings();
  settings.kms_region.clear();
  EXPECT_THAT(
      readAnnotations(podWith(minimal()), settings),
      StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("credsync.io/region: required")));
  settings = testSettings();
  settings.oidc_provider_arn.clear();
  EXPECT_THAT(readAnnotations(podWith(minimal()), settings),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("credsync.io/oidc-provider-arn: required")));
  settings = testSettings();
  settings.native_sidecars_available = false;
  settings.default_mode = SidecarMode::kClassic;
  EXPECT_THAT(readAnnotations(podWith(minimalWith({{"credsync.io/mode", "native"}})), settings),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("credsync.io/mode: native sidecars are not available")));
  absl::StatusOr<AnnotationDecision> decision = readAnnotations(podWith(minimal()), settings);
  ASSERT_TRUE(decision.ok());
  EXPECT_EQ(decision->request.mode, SidecarMode::kClassic);
}

// Verifies a config-map stands in for secrets, region and identity, and the
// injector's region is not laid over the config-map's.
TEST(AnnotationsTest, ConfigMapSuppliesTheRest) {
  absl::StatusOr<AnnotationDecision> decision = readAnnotations(
      podWith({{"credsync.io/config-map", "app-credsync"}, {"credsync.io/rrsa", "none"}}),
      testSettings());
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_TRUE(decision->request.profiles.empty());
  EXPECT_EQ(decision->request.config_map, "app-credsync");
  EXPECT_EQ(decision->request.region, "");
  EXPECT_EQ(decision->request.rrsa, RrsaRoute::kNone);
}

// Verifies a non-string credsync.io value and an inject label of another
// value are denied.
TEST(AnnotationsTest, OddValues) {
  json pod = podWith(minimal());
  pod["metadata"]["annotations"]["credsync.io/mode"] = 3;
  EXPECT_THAT(readAnnotations(pod, testSettings()),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("credsync.io/mode: ")));
  pod = podWith(minimal());
  pod["metadata"]["labels"]["credsync.io/inject"] = "True";
  EXPECT_THAT(readAnnotations(pod, testSettings()),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("credsync.io/inject: ")));
}

// Verifies the fixtures' annotations read as the fixtures intend.
TEST(AnnotationsTest, FixturesAreInjectableExceptTheInjectedOne) {
  for (const std::string& name : testing::fixtureNames()) {
    const json review = loadReview(name);
    ASSERT_TRUE(review.is_object()) << name;
    absl::StatusOr<AnnotationDecision> decision =
        readAnnotations(review["request"]["object"], testSettings());
    ASSERT_TRUE(decision.ok()) << name << ": " << decision.status();
    EXPECT_EQ(decision->inject, name != "already-injected") << name;
  }
}

// Verifies credsync.io/credentials-uri: the listed containers (profile
// "default" unless named) in the pod's order, and out of the file's list.
TEST(AnnotationsTest, CredentialsUriContainers) {
  absl::StatusOr<AnnotationDecision> decision =
      readAnnotations(loadReview("credentials-uri")["request"]["object"], testSettings());
  ASSERT_TRUE(decision.ok()) << decision.status();
  const InjectionRequest& request = decision->request;
  ASSERT_EQ(request.uri_containers.size(), 2u);
  EXPECT_EQ(request.uri_containers[0].name, "api");
  EXPECT_EQ(request.uri_containers[0].profile, "default");
  EXPECT_EQ(request.uri_containers[1].name, "exporter");
  EXPECT_EQ(request.uri_containers[1].profile, "billing");
  EXPECT_THAT(request.app_containers, ElementsAre("legacy-batch"));
  // The secret is drawn by reviewAdmission, not here.
  EXPECT_EQ(request.local_api_path_secret, "");

  // An init container in native mode; "default" named outright.
  decision = readAnnotations(
      podWith(minimalWith({{"credsync.io/credentials-uri", " migrate = default ,proxy"}})),
      testSettings());
  ASSERT_TRUE(decision.ok()) << decision.status();
  ASSERT_EQ(decision->request.uri_containers.size(), 2u);
  EXPECT_EQ(decision->request.uri_containers[0].name, "proxy");
  EXPECT_EQ(decision->request.uri_containers[1].name, "migrate");
  EXPECT_EQ(decision->request.uri_containers[1].profile, "default");
  EXPECT_THAT(decision->request.app_containers, ElementsAre("app"));

  // Profiles from a config-map alone cannot be checked here.
  decision = readAnnotations(podWith({{"credsync.io/config-map", "app-credsync"},
                                      {"credsync.io/role-arn", "acs:ram::123:role/app"},
                                      {"credsync.io/credentials-uri", "app=reporting"}}),
                             testSettings());
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_EQ(decision->request.uri_containers[0].profile, "reporting");

  // Without the annotation nothing changes.
  decision = readAnnotations(podWith(minimal()), testSettings());
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_TRUE(decision->request.uri_containers.empty());
}

// Verifies each wrong credsync.io/credentials-uri is denied with one line
// naming the container or profile.
TEST(AnnotationsTest, CredentialsUriDenials) {
  const std::string key = "credsync.io/credentials-uri";
  const std::vector<DenialCase> cases = {
      {minimalWith({{key, "app,web"}}),
       "credsync.io/credentials-uri: the pod has no container or init container \"web\""},
      {minimalWith({{key, "app=billing"}}),
       "credsync.io/credentials-uri: container \"app\": the pod has no profile \"billing\" (no "
       "credsync.io/secret-billing)"},
      {minimalWith({{key, "app=Bad Profile"}}),
       "credsync.io/credentials-uri: container \"app\": profile \"Bad Profile\" must match"},
      {minimalWith({{key, "app=DEFAULT"}}), "credsync.io/credentials-uri: container \"app\": "},
      {minimalWith({{key, "app="}}), "credsync.io/credentials-uri: container \"app\": profile"},
      {minimalWith({{key, "=billing"}}), "credsync.io/credentials-uri: must be a comma-separated"},
      {minimalWith({{key, ""}}), "credsync.io/credentials-uri: must be a comma-separated"},
      {minimalWith({{key, "app,,proxy"}}),
       "credsync.io/credentials-uri: must be a comma-separated"},
      {minimalWith({{key, "app,app=default"}}),
       "credsync.io/credentials-uri: container \"app\" is listed twice"},
      {minimalWith({{key, "app"}, {"credsync.io/containers", "app,proxy"}}),
       "credsync.io/credentials-uri: container \"app\" is also in credsync.io/containers"},
      {minimalWith({{key, "migrate"}, {"credsync.io/mode", "classic"}}),
       "credsync.io/credentials-uri: init container \"migrate\" cannot reach the local API in "
       "classic mode"},
      {{{"credsync.io/secret-default", "x"},
        {"credsync.io/rrsa", "ack-webhook"},
        {"pod-identity.alibabacloud.com/only-containers", "proxy, app"},
        {key, "app"}},
       "credsync.io/credentials-uri: container \"app\" is in "
       "pod-identity.alibabacloud.com/only-containers"},
  };
  for (const DenialCase& c : cases) {
    EXPECT_THAT(readAnnotations(podWith(c.annotations), testSettings()),
                StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(c.message_prefix)))
        << ::testing::PrintToString(c.annotations);
  }
  // Listed in credsync.io/containers only when that is given: by default
  // the file goes to every container the URI does not.
  EXPECT_TRUE(
      readAnnotations(podWith(minimalWith({{key, "app"}, {"credsync.io/containers", "proxy"}})),
                      testSettings())
          .ok());
  // On the ACK route, only-containers naming other containers is fine.
  EXPECT_TRUE(readAnnotations(podWith({{"credsync.io/secret-default", "x"},
                                       {"credsync.io/rrsa", "ack-webhook"},
                                       {"pod-identity.alibabacloud.com/only-containers", "proxy"},
                                       {key, "app"}}),
                              testSettings())
                  .ok());
}

}  // namespace
}  // namespace credsync::injector
