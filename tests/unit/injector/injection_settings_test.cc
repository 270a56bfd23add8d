#include "sidecar/injector/injection_settings.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/status_matchers.h"

namespace credsync::injector {
namespace {

using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

absl::StatusOr<InjectionSettings> parse(std::vector<std::string> args) {
  absl::StatusOr<ParsedFlags> flags = parseFlags(args, injectionFlagSpecs());
  if (!flags.ok()) return flags.status();
  return parseInjectionSettings(*flags);
}

// Verifies the defaults the contract names, with only --image given.
TEST(InjectionSettingsTest, Defaults) {
  absl::StatusOr<InjectionSettings> settings = parse({"--image", "credsync:1"});
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->image, "credsync:1");
  EXPECT_EQ(settings->image_pull_policy, "IfNotPresent");
  EXPECT_EQ(settings->default_mode, SidecarMode::kNative);
  EXPECT_TRUE(settings->native_sidecars_available);
  EXPECT_EQ(settings->token_expiration_seconds, 3600);
  EXPECT_EQ(settings->run_as_user, 65532);
  EXPECT_EQ(settings->run_as_group, 65532);
  EXPECT_EQ(settings->fs_group, 65532);
  EXPECT_EQ(settings->cpu_request, "10m");
  EXPECT_EQ(settings->memory_request, "32Mi");
  EXPECT_EQ(settings->memory_limit, "128Mi");
  EXPECT_EQ(settings->cpu_limit, "");
  EXPECT_EQ(settings->sync_once_timeout, absl::Seconds(60));
  EXPECT_EQ(settings->http_port, 9808);
  EXPECT_EQ(settings->volume_size_limit, "4Mi");
  EXPECT_EQ(settings->local_api_port, 8190);
  EXPECT_EQ(settings->local_api_refetch_within, absl::Seconds(60));
}

// Verifies every flag is read.
TEST(InjectionSettingsTest, EveryFlag) {
  absl::StatusOr<InjectionSettings> settings =
      parse({"--image=r/credsync:2", "--image-pull-policy=Always", "--default-mode=classic",
             "--native-sidecars=false", "--kms-region=cn-beijing",
             "--oidc-provider-arn=acs:ram::123:oidc-provider/ack-rrsa-x",
             "--token-expiration-seconds=7200", "--run-as-user=1001", "--run-as-group=1002",
             "--fs-group=1003", "--cpu-request=20m", "--memory-request=16Mi", "--memory-limit=64Mi",
             "--cpu-limit=100m", "--sync-once-timeout=2m", "--sidecar-http-port=9900",
             "--volume-size-limit=8Mi", "--local-api-port=8191", "--local-api-refetch-within=2m"});
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->image_pull_policy, "Always");
  EXPECT_EQ(settings->default_mode, SidecarMode::kClassic);
  EXPECT_FALSE(settings->native_sidecars_available);
  EXPECT_EQ(settings->kms_region, "cn-beijing");
  EXPECT_EQ(settings->oidc_provider_arn, "acs:ram::123:oidc-provider/ack-rrsa-x");
  EXPECT_EQ(settings->token_expiration_seconds, 7200);
  EXPECT_EQ(settings->run_as_user, 1001);
  EXPECT_EQ(settings->run_as_group, 1002);
  EXPECT_EQ(settings->fs_group, 1003);
  EXPECT_EQ(settings->cpu_request, "20m");
  EXPECT_EQ(settings->memory_request, "16Mi");
  EXPECT_EQ(settings->memory_limit, "64Mi");
  EXPECT_EQ(settings->cpu_limit, "100m");
  EXPECT_EQ(settings->sync_once_timeout, absl::Minutes(2));
  EXPECT_EQ(settings->http_port, 9900);
  EXPECT_EQ(settings->volume_size_limit, "8Mi");
  EXPECT_EQ(settings->local_api_port, 8191);
  EXPECT_EQ(settings->local_api_refetch_within, absl::Minutes(2));
}

// Verifies auto resolves by --native-sidecars, and native without them is refused.
TEST(InjectionSettingsTest, AutoModeFollowsNativeSidecars) {
  EXPECT_EQ(parse({"--image=x", "--default-mode=auto"})->default_mode, SidecarMode::kNative);
  EXPECT_EQ(parse({"--image=x", "--native-sidecars=false"})->default_mode, SidecarMode::kClassic);
  EXPECT_THAT(parse({"--image=x", "--default-mode=native", "--native-sidecars=false"}),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("--default-mode: ")));
}

// Verifies each bad value is refused with one line naming its flag.
TEST(InjectionSettingsTest, BadValuesNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "--image: required"},
      {{"--image="}, "--image: required"},
      {{"--image=a b"}, "--image: "},
      {{"--image=x", "--image-pull-policy=sometimes"}, "--image-pull-policy: "},
      {{"--image=x", "--default-mode=sidecar"}, "--default-mode: "},
      {{"--image=x", "--native-sidecars=yes"}, "--native-sidecars: "},
      {{"--image=x", "--kms-region=CN Hangzhou"}, "--kms-region: "},
      {{"--image=x", "--oidc-provider-arn=acs:ram::123:role/x"}, "--oidc-provider-arn: "},
      {{"--image=x", "--token-expiration-seconds=599"}, "--token-expiration-seconds: "},
      {{"--image=x", "--token-expiration-seconds=86401"}, "--token-expiration-seconds: "},
      {{"--image=x", "--run-as-user=0"}, "--run-as-user: "},
      {{"--image=x", "--run-as-group=2147483648"}, "--run-as-group: "},
      {{"--image=x", "--fs-group=abc"}, "--fs-group: "},
      {{"--image=x", "--cpu-request=ten"}, "--cpu-request: "},
      {{"--image=x", "--memory-limit=-1Gi"}, "--memory-limit: "},
      {{"--image=x", "--volume-size-limit="}, "--volume-size-limit: "},
      {{"--image=x", "--sync-once-timeout=0s"}, "--sync-once-timeout: "},
      {{"--image=x", "--sync-once-timeout=1.5s"}, "--sync-once-timeout: "},
      {{"--image=x", "--sidecar-http-port=70000"}, "--sidecar-http-port: "},
      {{"--image=x", "--local-api-port=0"}, "--local-api-port: "},
      {{"--image=x", "--local-api-port=9808"}, "--local-api-port: must differ"},
      {{"--image=x", "--sidecar-http-port=8190"}, "--local-api-port: must differ"},
      {{"--image=x", "--local-api-refetch-within=9s"}, "--local-api-refetch-within: "},
      {{"--image=x", "--local-api-refetch-within=601s"}, "--local-api-refetch-within: "},
      {{"--image=x", "--local-api-refetch-within=60.5s"}, "--local-api-refetch-within: "},
      {{"--image=x", "--local-api-refetch-within=soon"}, "--local-api-refetch-within: "},
  };
  for (const auto& [args, prefix] : cases) {
    EXPECT_THAT(parse(args), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(prefix)))
        << ::testing::PrintToString(args);
  }
}

// Verifies an empty --cpu-limit (the chart's "no limit") is accepted.
TEST(InjectionSettingsTest, EmptyLimitMeansNone) {
  absl::StatusOr<InjectionSettings> settings = parse({"--image=x", "--cpu-limit="});
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->cpu_limit, "");
  EXPECT_THAT(parse({"--image=x", "--unknown=1"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown")));
}

}  // namespace
}  // namespace credsync::injector
