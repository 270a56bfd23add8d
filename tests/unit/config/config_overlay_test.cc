#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/config/config.h"
#include "tests/common/fake_environment.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

namespace credsync::config {
namespace {

using ::credsync::testing::fakeEnvironment;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::SizeIs;

// Identity from the environment, as in an RRSA pod.
std::map<std::string, std::string> rrsaEnvironment() {
  return {{"ALIBABA_CLOUD_ROLE_ARN", "acs:ram::123:role/app"},
          {"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::123:oidc-provider/p"},
          {"ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/var/run/token"},
          {"POD_NAME", "app-0"}};
}

constexpr char kBase[] = R"(kms:
  region: cn-beijing
  endpoints: [https://kms.one.example, https://kms.two.example]
profiles:
  - name: default
    secret_name: base/ak
  - name: extra
    secret_name: base/extra
output:
  group: 1000
  file_mode: "0400"
refresh:
  interval: 30m
hooks:
  - name: reload
    signal:
      process: nginx
)";

// Verifies each key the overlay sets replaces the base's, and the rest is kept.
TEST(ConfigOverlayTest, KeysReplaceAndOthersStay) {
  absl::StatusOr<Config> config = parseConfigDocuments(
      {{"base.yaml", kBase},
       {"$CREDSYNC_CONFIG", R"({"output":{"group":2000},"log":{"level":"debug"}})"}},
      fakeEnvironment(rrsaEnvironment()));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->output.group, 2000u);
  EXPECT_EQ(config->output.file_mode, 0400u);  // the base's, not overlaid
  EXPECT_EQ(config->log_level, log::Level::kDebug);
  EXPECT_EQ(config->refresh.interval, absl::Minutes(30));
  EXPECT_EQ(config->kms.region, "cn-beijing");
  EXPECT_THAT(config->profiles, SizeIs(2));
  EXPECT_THAT(config->hooks, SizeIs(1));
}

// Verifies the lists are replaced whole, never merged item by item.
TEST(ConfigOverlayTest, ListsAreReplacedWhole) {
  absl::StatusOr<Config> config =
      parseConfigDocuments({{"base.yaml", kBase},
                            {"$CREDSYNC_CONFIG",
                             R"({"profiles":[{"name":"only","secret_name":"env/ak"}],
            "kms":{"endpoints":["https://kms.three.example"]},"hooks":[]})"}},
                           fakeEnvironment(rrsaEnvironment()));
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_THAT(config->profiles, SizeIs(1));
  EXPECT_EQ(config->profiles[0].name, "only");
  EXPECT_TRUE(config->profiles[0].is_default);
  EXPECT_THAT(config->kms.endpoints, ElementsAre("https://kms.three.example"));
  EXPECT_THAT(config->hooks, SizeIs(0));
}

// Verifies kms.instances is replaced whole too (here by an empty list).
TEST(ConfigOverlayTest, InstancesReplacedWhole) {
  const std::string with_instances = R"(kms:
  region: cn-beijing
  instances:
    - endpoint: kst-1.cryptoservice.kms.aliyuncs.com
      client_key_file: /keys/ck.json
      password_file: /keys/pw
profiles:
  - name: default
    secret_name: base/ak
)";
  absl::StatusOr<Config> config =
      parseConfigDocuments({{"base.yaml", with_instances}, {"$C", R"({"kms":{"instances":[]}})"}},
                           fakeEnvironment(rrsaEnvironment()));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->kms.instances, SizeIs(0));
  EXPECT_THAT(config->kms.endpoints, ElementsAre("https://kms.cn-beijing.aliyuncs.com"));
}

// Verifies errors name the document: a syntax error, a bad key, and a bad
// value in a list the overlay set; a base error names the file.
TEST(ConfigOverlayTest, ErrorsNameTheSource) {
  const auto env = fakeEnvironment(rrsaEnvironment());
  EXPECT_THAT(parseConfigDocuments({{"base.yaml", kBase}, {"$CREDSYNC_CONFIG", "{"}}, env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::StartsWith("$CREDSYNC_CONFIG: config: YAML syntax error")));
  EXPECT_THAT(parseConfigDocuments(
                  {{"base.yaml", kBase}, {"$CREDSYNC_CONFIG", R"({"output":{"colour":1}})"}}, env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::StartsWith("$CREDSYNC_CONFIG: output.colour: unknown key")));
  EXPECT_THAT(parseConfigDocuments(
                  {{"base.yaml", kBase},
                   {"$CREDSYNC_CONFIG", R"({"profiles":[{"name":"a","secret_name":""}]})"}},
                  env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::StartsWith(
                           "$CREDSYNC_CONFIG: profiles[0].secret_name: must not be empty")));
  EXPECT_THAT(parseConfigDocuments({{"base.yaml",
                                     "refresh:\n  interval: soon\nprofiles:\n  - {name: a, "
                                     "secret_name: s}\nkms: {region: cn-beijing}\n"},
                                    {"$CREDSYNC_CONFIG", R"({"log":{"level":"info"}})"}},
                                   env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::StartsWith("base.yaml: refresh.interval: ")));
  // A value the overlay set, checked after merging, names the overlay.
  EXPECT_THAT(
      parseConfigDocuments(
          {{"base.yaml", kBase}, {"$CREDSYNC_CONFIG", R"({"output":{"group":"staff"}})"}}, env),
      StatusIs(absl::StatusCode::kInvalidArgument,
               ::testing::StartsWith("$CREDSYNC_CONFIG: output.group: ")));
}

// Verifies loadConfigSources: the variable alone, file plus variable, an
// unset variable, and a lone file keeping its messages unprefixed.
TEST(ConfigOverlayTest, LoadConfigSources) {
  TempDir dir("config_overlay");
  const std::string path = dir.path() + "/config.yaml";
  credsync::testing::writeFile(path, kBase);
  std::map<std::string, std::string> variables = rrsaEnvironment();
  variables["CREDSYNC_CONFIG"] =
      R"({"profiles":[{"name":"default","secret_name":"env/ak"}],"kms":{"region":"cn-shanghai"}})";
  const auto env = fakeEnvironment(variables);

  absl::StatusOr<Config> alone = loadConfigSources("", "CREDSYNC_CONFIG", env);
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->kms.region, "cn-shanghai");
  EXPECT_EQ(alone->profiles[0].secret_name, "env/ak");

  absl::StatusOr<Config> both = loadConfigSources(path, "CREDSYNC_CONFIG", env);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->kms.region, "cn-shanghai");
  EXPECT_THAT(both->kms.endpoints, SizeIs(2));  // the file's endpoints stay
  EXPECT_THAT(both->profiles, SizeIs(1));
  EXPECT_EQ(both->output.group, 1000u);

  EXPECT_THAT(
      loadConfigSources(path, "UNSET_VAR", env),
      StatusIs(absl::StatusCode::kInvalidArgument, ::testing::StartsWith("$UNSET_VAR: not set")));
  EXPECT_THAT(loadConfigSources("", "", env), StatusIs(absl::StatusCode::kInvalidArgument));

  credsync::testing::writeFile(
      path,
      "kms: {region: cn-beijing}\nprofiles: [{name: a, secret_name: s}]\nlog:\n  level: loud\n");
  EXPECT_THAT(loadConfigSources(path, "", env),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::StartsWith("log.level: ")));
  EXPECT_THAT(
      loadConfigSources(path, "CREDSYNC_CONFIG", env),
      StatusIs(absl::StatusCode::kInvalidArgument, ::testing::StartsWith(path + ": log.level: ")));
}

// Verifies parseConfig of one document is unchanged by the layering.
TEST(ConfigOverlayTest, SingleDocumentAsBefore) {
  const auto env = fakeEnvironment(rrsaEnvironment());
  absl::StatusOr<Config> one = parseConfig(kBase, env);
  absl::StatusOr<Config> layered = parseConfigDocuments({{"", kBase}}, env);
  ASSERT_TRUE(one.ok() && layered.ok());
  EXPECT_EQ(one->profiles.size(), layered->profiles.size());
  EXPECT_EQ(one->kms.endpoints, layered->kms.endpoints);
  EXPECT_EQ(one->output.group, layered->output.group);
}

}  // namespace
}  // namespace credsync::config
