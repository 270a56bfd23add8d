#include "sidecar/config/config.h"

#include <signal.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/fake_environment.h"
#include "tests/common/status_matchers.h"

namespace credsync::config {
namespace {

using ::credsync::testing::fakeEnvironment;
using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

using EnvMap = std::map<std::string, std::string>;

constexpr char kRoleArn[] = "acs:ram::1234567890:role/app-reader";
constexpr char kProviderArn[] = "acs:ram::1234567890:oidc-provider/ack-rrsa-c1";
constexpr char kTokenFile[] = "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token";
constexpr char kProfiles[] = "profiles:\n  - {name: app, secret_name: acs/ram/user/app}\n";

// What ACK's pod identity webhook (>= 0.4) injects, plus the pod name.
EnvMap rrsaEnvironment() {
  return {
      {"ALIBABA_CLOUD_ROLE_ARN", kRoleArn},
      {"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", kProviderArn},
      {"ALIBABA_CLOUD_OIDC_TOKEN_FILE", kTokenFile},
      {"ALIBABA_CLOUD_STS_ENDPOINT", "sts-vpc.cn-hangzhou.aliyuncs.com"},
      {"ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"},
      {"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"},
      {"POD_NAME", "app-7d4b9c-x2x9q"},
  };
}

// The three variables every RRSA setup has, and a KMS region.
EnvMap minimalEnvironment() {
  return {
      {"ALIBABA_CLOUD_ROLE_ARN", kRoleArn},
      {"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", kProviderArn},
      {"ALIBABA_CLOUD_OIDC_TOKEN_FILE", kTokenFile},
      {"ALIBABA_CLOUD_REGION_ID", "cn-hangzhou"},
  };
}

// Renders {"identity.role_arn": "x", ...} as YAML sections; values are
// inserted verbatim so a case can quote, or write a list, as it needs.
// `profiles` is appended unless the map sets "profiles" itself.
std::string renderYaml(const std::map<std::string, std::string>& dotted) {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> sections;
  std::string out;
  for (const auto& [key, value] : dotted) {
    if (key == "profiles") continue;
    const size_t dot = key.find('.');
    sections[key.substr(0, dot)].emplace_back(key.substr(dot + 1), value);
  }
  for (const auto& [section, entries] : sections) {
    out += section + ":\n";
    for (const auto& [name, value] : entries) out += "  " + name + ": " + value + "\n";
  }
  const auto profiles = dotted.find("profiles");
  out += profiles == dotted.end() ? std::string(kProfiles) : "profiles: " + profiles->second + "\n";
  return out;
}

constexpr char kFullYaml[] = R"(# Every key, none at its default.
identity:
  type: oidc
  role_arn: acs:ram::1234567890:role/app-reader
  oidc_provider_arn: acs:ram::1234567890:oidc-provider/ack-rrsa-c1
  oidc_token_file: /var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token
  role_session_name: my-pod
  session_duration: 2h
  policy: '{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:GetSecretValue","Resource":"*"}]}'
  sts_endpoint: sts-vpc.cn-shanghai.aliyuncs.com
  sts_region: cn-shanghai
  vpc_endpoint: true
kms:
  region: cn-shanghai
  endpoints:
    - kms-vpc.cn-shanghai.aliyuncs.com
    - https://KMS.cn-shanghai.aliyuncs.com:8443/
  vpc_endpoint: true
  signature: hmac-sha1
  circuit_failure_threshold: 5
  circuit_open_for: 10s
  circuit_max_open_for: 2m
tls:
  ca_file: /etc/credsync/ca.pem
  insecure_skip_verify: true
http:
  connect_timeout: 3s
  request_timeout: 15s
profiles:
  - name: app
    secret_name: acs/ram/user/app
    version_stage: ACSCurrent
    required: true
  - name: backup
    secret_name: acs/ram/user/backup
    version_stage: ACSPrevious
    default: true
    required: false
output:
  directory: /var/run/creds
  file_mode: "0400"
  group: 1000
refresh:
  interval: 30m
  jitter: 0.2
  rotation_delay: 10m
  rotation_jitter: 2m
  startup_jitter: 15s
  retry_initial_backoff: 1s
  retry_max_backoff: 1m
log:
  level: debug
)";

constexpr char kFullJson[] = R"({
  "identity": {
    "type": "oidc",
    "role_arn": "acs:ram::1234567890:role/app-reader",
    "oidc_provider_arn": "acs:ram::1234567890:oidc-provider/ack-rrsa-c1",
    "oidc_token_file": "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token",
    "role_session_name": "my-pod",
    "session_duration": "2h",
    "policy": "{\"Version\":\"1\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:GetSecretValue\",\"Resource\":\"*\"}]}",
    "sts_endpoint": "sts-vpc.cn-shanghai.aliyuncs.com",
    "sts_region": "cn-shanghai",
    "vpc_endpoint": true
  },
  "kms": {
    "region": "cn-shanghai",
    "endpoints": ["kms-vpc.cn-shanghai.aliyuncs.com", "https://KMS.cn-shanghai.aliyuncs.com:8443/"],
    "vpc_endpoint": true,
    "signature": "hmac-sha1",
    "circuit_failure_threshold": 5, "circuit_open_for": "10s", "circuit_max_open_for": "2m"
  },
  "tls": {"ca_file": "/etc/credsync/ca.pem", "insecure_skip_verify": true},
  "http": {"connect_timeout": "3s", "request_timeout": "15s"},
  "profiles": [
    {"name": "app", "secret_name": "acs/ram/user/app", "version_stage": "ACSCurrent",
     "required": true},
    {"name": "backup", "secret_name": "acs/ram/user/backup", "version_stage": "ACSPrevious",
     "default": true, "required": false}
  ],
  "output": {"directory": "/var/run/creds", "file_mode": "0400", "group": 1000},
  "refresh": {
    "interval": "30m", "jitter": 0.2, "rotation_delay": "10m", "rotation_jitter": "2m",
    "startup_jitter": "15s", "retry_initial_backoff": "1s", "retry_max_backoff": "1m"
  },
  "log": {"level": "debug"}
})";

void expectFullConfig(const Config& config) {
  const IdentityConfig& identity = config.identity;
  EXPECT_EQ(identity.type, IdentityType::kOidc);
  EXPECT_EQ(identity.role_arn, kRoleArn);
  EXPECT_EQ(identity.oidc_provider_arn, kProviderArn);
  EXPECT_EQ(identity.oidc_token_file, kTokenFile);
  EXPECT_EQ(identity.role_session_name, "my-pod");
  EXPECT_EQ(identity.session_duration, absl::Hours(2));
  EXPECT_EQ(identity.policy,
            R"({"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:GetSecretValue",)"
            R"("Resource":"*"}]})");
  // An explicit endpoint wins over a region given at the same level.
  EXPECT_EQ(identity.sts_endpoint, "https://sts-vpc.cn-shanghai.aliyuncs.com");
  EXPECT_EQ(config.kms.region, "cn-shanghai");
  EXPECT_THAT(config.kms.endpoints, ElementsAre("https://kms-vpc.cn-shanghai.aliyuncs.com",
                                                "https://kms.cn-shanghai.aliyuncs.com:8443"));
  EXPECT_EQ(config.kms.signature, KmsSignature::kHmacSha1);
  EXPECT_EQ(config.kms.circuit_failure_threshold, 5);
  EXPECT_EQ(config.kms.circuit_open_for, absl::Seconds(10));
  EXPECT_EQ(config.kms.circuit_max_open_for, absl::Minutes(2));
  EXPECT_EQ(config.tls.ca_file, "/etc/credsync/ca.pem");
  EXPECT_FALSE(config.tls.verify);
  EXPECT_EQ(config.http.connect_timeout, absl::Seconds(3));
  EXPECT_EQ(config.http.request_timeout, absl::Seconds(15));
  ASSERT_EQ(config.profiles.size(), 2u);
  // The default profile comes first.
  EXPECT_EQ(config.profiles[0].name, "backup");
  EXPECT_EQ(config.profiles[0].secret_name, "acs/ram/user/backup");
  EXPECT_EQ(config.profiles[0].version_stage, "ACSPrevious");
  EXPECT_TRUE(config.profiles[0].is_default);
  EXPECT_FALSE(config.profiles[0].required);
  EXPECT_EQ(config.profiles[1].name, "app");
  EXPECT_EQ(config.profiles[1].secret_name, "acs/ram/user/app");
  EXPECT_EQ(config.profiles[1].version_stage, "ACSCurrent");
  EXPECT_FALSE(config.profiles[1].is_default);
  EXPECT_TRUE(config.profiles[1].required);
  EXPECT_EQ(config.output.directory, "/var/run/creds");
  EXPECT_EQ(config.output.file_mode, 0400u);
  EXPECT_EQ(config.output.group, std::optional<gid_t>(1000));
  EXPECT_EQ(config.refresh.interval, absl::Minutes(30));
  EXPECT_DOUBLE_EQ(config.refresh.jitter, 0.2);
  EXPECT_EQ(config.refresh.rotation_delay, absl::Minutes(10));
  EXPECT_EQ(config.refresh.rotation_jitter, absl::Minutes(2));
  EXPECT_EQ(config.refresh.startup_jitter, absl::Seconds(15));
  EXPECT_EQ(config.refresh.retry_initial_backoff, absl::Seconds(1));
  EXPECT_EQ(config.refresh.retry_max_backoff, absl::Minutes(1));
  EXPECT_EQ(config.log_level, log::Level::kDebug);
}

// Verifies that a YAML file setting every key is read into every field.
TEST(ConfigTest, FullYaml) {
  const auto config = parseConfig(kFullYaml, fakeEnvironment({}));
  ASSERT_THAT(config, IsOk());
  expectFullConfig(*config);
}

// Verifies that the same configuration written as JSON reads identically.
TEST(ConfigTest, FullJson) {
  const auto config = parseConfig(kFullJson, fakeEnvironment({}));
  ASSERT_THAT(config, IsOk());
  expectFullConfig(*config);
}

// Verifies that the file wins over a full RRSA environment for every key it sets.
TEST(ConfigTest, FullYamlIgnoresEnvironment) {
  EnvMap env = rrsaEnvironment();
  env["ALIBABA_CLOUD_ROLE_ARN"] = "acs:ram::999:role/other";
  env["ALIBABA_CLOUD_REGION_ID"] = "eu-central-1";
  const auto config = parseConfig(kFullYaml, fakeEnvironment(env));
  ASSERT_THAT(config, IsOk());
  expectFullConfig(*config);
}

// Verifies every default with the smallest valid input.
TEST(ConfigTest, Defaults) {
  const auto config = parseConfig(kProfiles, fakeEnvironment(minimalEnvironment()));
  ASSERT_THAT(config, IsOk());
  const Config defaults;
  EXPECT_EQ(config->identity.type, IdentityType::kOidc);
  EXPECT_EQ(config->identity.role_session_name, "credsync");
  EXPECT_EQ(config->identity.session_duration, absl::Hours(1));
  EXPECT_EQ(config->identity.policy, "");
  // No STS setting: STS follows the KMS region (ALIBABA_CLOUD_REGION_ID).
  EXPECT_EQ(config->identity.sts_endpoint, "https://sts.cn-hangzhou.aliyuncs.com");
  EXPECT_TRUE(config->identity.static_access_key_id.empty());
  EXPECT_TRUE(config->identity.static_access_key_secret.empty());
  EXPECT_EQ(config->kms.region, "cn-hangzhou");
  EXPECT_THAT(config->kms.endpoints, ElementsAre("https://kms.cn-hangzhou.aliyuncs.com"));
  EXPECT_EQ(config->kms.signature, KmsSignature::kAcs3);
  EXPECT_EQ(config->kms.circuit_failure_threshold, 3);
  EXPECT_EQ(config->kms.circuit_open_for, absl::Seconds(30));
  EXPECT_EQ(config->kms.circuit_max_open_for, absl::Minutes(5));
  EXPECT_EQ(config->tls.ca_file, "");
  EXPECT_TRUE(config->tls.verify);
  EXPECT_EQ(config->http.connect_timeout, absl::Seconds(5));
  EXPECT_EQ(config->http.request_timeout, absl::Seconds(10));
  ASSERT_EQ(config->profiles.size(), 1u);
  EXPECT_EQ(config->profiles[0].name, "app");
  EXPECT_EQ(config->profiles[0].version_stage, "ACSCurrent");
  EXPECT_TRUE(config->profiles[0].is_default);
  EXPECT_TRUE(config->profiles[0].required);
  EXPECT_EQ(config->output.directory, "/var/run/credsync");
  EXPECT_EQ(config->output.file_mode, 0440u);
  EXPECT_EQ(config->output.group, std::nullopt);
  EXPECT_EQ(config->refresh.interval, absl::Hours(1));
  EXPECT_DOUBLE_EQ(config->refresh.jitter, 0.1);
  EXPECT_EQ(config->refresh.rotation_delay, absl::Minutes(5));
  EXPECT_EQ(config->refresh.rotation_jitter, absl::Minutes(5));
  EXPECT_EQ(config->refresh.startup_jitter, absl::ZeroDuration());
  EXPECT_EQ(config->refresh.retry_initial_backoff, absl::Seconds(2));
  EXPECT_EQ(config->refresh.retry_max_backoff, absl::Seconds(10));
  EXPECT_EQ(config->log_level, log::Level::kInfo);
  // The header's defaults and the loader's agree.
  EXPECT_EQ(config->refresh.interval, defaults.refresh.interval);
  EXPECT_EQ(config->output.file_mode, defaults.output.file_mode);
}

// Verifies an RRSA pod needs nothing in the file but its profiles: the
// webhook's variables supply the identity and the STS endpoint.
TEST(ConfigTest, EnvironmentOnlyRrsa) {
  EnvMap env = rrsaEnvironment();
  env["ALIBABA_CLOUD_REGION_ID"] = "cn-hangzhou";
  const auto config = parseConfig(kProfiles, fakeEnvironment(env));
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->identity.type, IdentityType::kOidc);
  EXPECT_EQ(config->identity.role_arn, kRoleArn);
  EXPECT_EQ(config->identity.oidc_provider_arn, kProviderArn);
  EXPECT_EQ(config->identity.oidc_token_file, kTokenFile);
  EXPECT_EQ(config->identity.role_session_name, "credsync-app-7d4b9c-x2x9q");
  EXPECT_EQ(config->identity.sts_endpoint, "https://sts-vpc.cn-hangzhou.aliyuncs.com");
  EXPECT_THAT(config->kms.endpoints, ElementsAre("https://kms-vpc.cn-hangzhou.aliyuncs.com"));
}

// Verifies that empty text is an empty document: only the missing profiles are reported.
TEST(ConfigTest, EmptyDocument) {
  for (const char* text : {"", "\n", "# comment only\n", "---\n", "{}"}) {
    EXPECT_THAT(parseConfig(text, fakeEnvironment(minimalEnvironment())),
                StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("profiles: ")))
        << text;
  }
}

struct PrecedenceCase {
  std::string key;
  std::string env_name;  // empty: the key has no environment variable
  std::string env_value;
  std::string file_value;
  std::string override_value;
  // What the key resolves to, read back from the Config.
  std::string (*read)(const Config&);
  std::optional<std::string> want_default;  // nullopt: required, no default
  std::string want_env;
  std::string want_file;
  std::string want_override;
};

std::string stsEndpoint(const Config& c) { return c.identity.sts_endpoint; }
std::string kmsFirstEndpoint(const Config& c) { return c.kms.endpoints.at(0); }

std::vector<PrecedenceCase> precedenceCases() {
  return {
      {"identity.role_arn", "ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/env", "acs:ram::1:role/file",
       "acs:ram::1:role/flag", [](const Config& c) { return c.identity.role_arn; }, std::nullopt,
       "acs:ram::1:role/env", "acs:ram::1:role/file", "acs:ram::1:role/flag"},
      {"identity.oidc_provider_arn", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
       "acs:ram::1:oidc-provider/env", "acs:ram::1:oidc-provider/file",
       "acs:ram::1:oidc-provider/flag",
       [](const Config& c) { return c.identity.oidc_provider_arn; }, std::nullopt,
       "acs:ram::1:oidc-provider/env", "acs:ram::1:oidc-provider/file",
       "acs:ram::1:oidc-provider/flag"},
      {"identity.oidc_token_file", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/env/token", "/file/token",
       "/flag/token", [](const Config& c) { return c.identity.oidc_token_file; }, std::nullopt,
       "/env/token", "/file/token", "/flag/token"},
      {"identity.role_session_name", "ALIBABA_CLOUD_ROLE_SESSION_NAME", "env-session",
       "file-session", "flag-session", [](const Config& c) { return c.identity.role_session_name; },
       std::string("credsync-pod-1"), "env-session", "file-session", "flag-session"},
      {"identity.sts_endpoint", "ALIBABA_CLOUD_STS_ENDPOINT", "sts.env.example.com",
       "sts.file.example.com", "sts.flag.example.com", stsEndpoint,
       std::string("https://sts.cn-hangzhou.aliyuncs.com"), "https://sts.env.example.com",
       "https://sts.file.example.com", "https://sts.flag.example.com"},
      {"identity.sts_region", "ALIBABA_CLOUD_STS_REGION", "cn-beijing", "cn-shanghai",
       "ap-southeast-1", stsEndpoint, std::string("https://sts.cn-hangzhou.aliyuncs.com"),
       "https://sts.cn-beijing.aliyuncs.com", "https://sts.cn-shanghai.aliyuncs.com",
       "https://sts.ap-southeast-1.aliyuncs.com"},
      {"kms.region", "ALIBABA_CLOUD_REGION_ID", "cn-beijing", "cn-shanghai", "ap-southeast-1",
       kmsFirstEndpoint, std::nullopt, "https://kms.cn-beijing.aliyuncs.com",
       "https://kms.cn-shanghai.aliyuncs.com", "https://kms.ap-southeast-1.aliyuncs.com"},
      // The VPC switch, with a region fixed in the file: env true, file false, flag true.
      {"kms.vpc_endpoint", "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "TRUE", "false", "true",
       kmsFirstEndpoint, std::string("https://kms.cn-hangzhou.aliyuncs.com"),
       "https://kms-vpc.cn-hangzhou.aliyuncs.com", "https://kms.cn-hangzhou.aliyuncs.com",
       "https://kms-vpc.cn-hangzhou.aliyuncs.com"},
      {"identity.vpc_endpoint", "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true", "false", "true",
       stsEndpoint, std::string("https://sts.cn-hangzhou.aliyuncs.com"),
       "https://sts-vpc.cn-hangzhou.aliyuncs.com", "https://sts.cn-hangzhou.aliyuncs.com",
       "https://sts-vpc.cn-hangzhou.aliyuncs.com"},
      // Keys without a variable: default < file < flag.
      {"identity.session_duration", "", "", "2h", "45m",
       [](const Config& c) { return absl::FormatDuration(c.identity.session_duration); },
       std::string("1h"), "", "2h", "45m"},
      {"identity.policy", "", "", "'{\"Statement\":[]}'", "{}",
       [](const Config& c) { return c.identity.policy; }, std::string(""), "", "{\"Statement\":[]}",
       "{}"},
      {"identity.type", "", "", "oidc", "static",
       [](const Config& c) {
         return std::string(c.identity.type == IdentityType::kOidc ? "oidc" : "static");
       },
       std::string("oidc"), "", "oidc", "static"},
      {"identity.role_name", "ALIBABA_CLOUD_ECS_METADATA", "env-role", "file-role", "flag-role",
       [](const Config& c) { return c.identity.ecs_role_name; }, std::string(""), "env-role",
       "file-role", "flag-role"},
      {"identity.metadata_endpoint", "", "", "http://127.0.0.1:8080", "169.254.0.1",
       [](const Config& c) { return c.identity.ecs_metadata_endpoint; },
       std::string("http://100.100.100.200"), "", "http://127.0.0.1:8080", "http://169.254.0.1"},
      {"identity.imdsv1_fallback", "", "", "false", "true",
       [](const Config& c) { return std::string(c.identity.ecs_imdsv1_fallback ? "on" : "off"); },
       std::string("on"), "", "off", "on"},
      {"identity.metadata_token_ttl", "", "", "1h", "5m",
       [](const Config& c) { return absl::FormatDuration(c.identity.ecs_metadata_token_ttl); },
       std::string("6h"), "", "1h", "5m"},
      {"kms.endpoints", "", "", "[a.example.com, b.example.com]", "c.example.com,d.example.com",
       [](const Config& c) { return absl::StrJoin(c.kms.endpoints, " "); },
       std::string("https://kms.cn-hangzhou.aliyuncs.com"), "",
       "https://a.example.com https://b.example.com",
       "https://c.example.com https://d.example.com"},
      {"kms.signature", "", "", "hmac-sha1", "acs3",
       [](const Config& c) {
         return std::string(c.kms.signature == KmsSignature::kAcs3 ? "acs3" : "hmac-sha1");
       },
       std::string("acs3"), "", "hmac-sha1", "acs3"},
      {"tls.ca_file", "", "", "/file/ca.pem", "/flag/ca.pem",
       [](const Config& c) { return c.tls.ca_file; }, std::string(""), "", "/file/ca.pem",
       "/flag/ca.pem"},
      {"tls.insecure_skip_verify", "", "", "true", "false",
       [](const Config& c) { return std::string(c.tls.verify ? "verify" : "skip"); },
       std::string("verify"), "", "skip", "verify"},
      {"http.connect_timeout", "", "", "1s", "2s",
       [](const Config& c) { return absl::FormatDuration(c.http.connect_timeout); },
       std::string("5s"), "", "1s", "2s"},
      {"http.request_timeout", "", "", "20s", "30s",
       [](const Config& c) { return absl::FormatDuration(c.http.request_timeout); },
       std::string("10s"), "", "20s", "30s"},
      {"output.directory", "", "", "/file/out", "/flag/out",
       [](const Config& c) { return c.output.directory; }, std::string("/var/run/credsync"), "",
       "/file/out", "/flag/out"},
      {"output.file_mode", "", "", "\"0400\"", "444",
       [](const Config& c) { return absl::StrCat(c.output.file_mode); }, std::string("288"), "",
       "256", "292"},
      {"output.group", "", "", "1000", "2000",
       [](const Config& c) {
         return c.output.group.has_value() ? absl::StrCat(*c.output.group) : std::string("none");
       },
       std::string("none"), "", "1000", "2000"},
      {"refresh.interval", "", "", "30m", "2h",
       [](const Config& c) { return absl::FormatDuration(c.refresh.interval); }, std::string("1h"),
       "", "30m", "2h"},
      {"refresh.jitter", "", "", "0.25", "0",
       [](const Config& c) { return absl::StrCat(c.refresh.jitter); }, std::string("0.1"), "",
       "0.25", "0"},
      {"refresh.rotation_delay", "", "", "1m", "2m",
       [](const Config& c) { return absl::FormatDuration(c.refresh.rotation_delay); },
       std::string("5m"), "", "1m", "2m"},
      {"refresh.rotation_jitter", "", "", "30s", "0s",
       [](const Config& c) { return absl::FormatDuration(c.refresh.rotation_jitter); },
       std::string("5m"), "", "30s", "0"},
      {"refresh.startup_jitter", "", "", "10s", "20s",
       [](const Config& c) { return absl::FormatDuration(c.refresh.startup_jitter); },
       std::string("0"), "", "10s", "20s"},
      {"refresh.retry_initial_backoff", "", "", "1s", "500ms",
       [](const Config& c) { return absl::FormatDuration(c.refresh.retry_initial_backoff); },
       std::string("2s"), "", "1s", "500ms"},
      {"refresh.retry_max_backoff", "", "", "1m", "5m",
       [](const Config& c) { return absl::FormatDuration(c.refresh.retry_max_backoff); },
       std::string("10s"), "", "1m", "5m"},
      {"refresh.on_demand_burst", "", "", "3", "7",
       [](const Config& c) { return absl::StrCat(c.refresh.on_demand_burst); }, std::string("5"),
       "", "3", "7"},
      {"refresh.on_demand_refill", "", "", "1m", "30s",
       [](const Config& c) { return absl::FormatDuration(c.refresh.on_demand_refill); },
       std::string("10m"), "", "1m", "30s"},
      {"control.socket", "", "", "/run/a.sock", "/run/b.sock",
       [](const Config& c) { return c.control.socket_path; },
       std::string("/var/run/credsync/credsync.sock"), "", "/run/a.sock", "/run/b.sock"},
      {"control.socket_mode", "", "", "\"0600\"", "0640",
       [](const Config& c) { return absl::StrCat(absl::Dec(c.control.socket_mode)); },
       std::string("432"), "", "384", "416"},
      {"control.tcp_address", "", "", "127.0.0.1:9901", "[::1]:0",
       [](const Config& c) { return c.control.tcp_address; }, std::string(""), "", "127.0.0.1:9901",
       "[::1]:0"},
      {"control.token_file", "", "", "/etc/token/a", "/etc/token/b",
       [](const Config& c) { return c.control.token_file; }, std::string(""), "", "/etc/token/a",
       "/etc/token/b"},
      {"control.http_address", "", "", "127.0.0.1:8080", "0.0.0.0:0",
       [](const Config& c) { return c.control.http_address; }, std::string("0.0.0.0:9808"), "",
       "127.0.0.1:8080", "0.0.0.0:0"},
      {"control.refresh_timeout", "", "", "10s", "1m",
       [](const Config& c) { return absl::FormatDuration(c.control.refresh_timeout); },
       std::string("30s"), "", "10s", "1m"},
      {"log.level", "", "", "warn", "error",
       [](const Config& c) { return std::string(log::levelName(c.log_level)); },
       std::string("info"), "", "warn", "error"},
  };
}

// Verifies override > file > environment > default for every key (static
// identity's keys excepted: they come only from the environment).
TEST(ConfigTest, PrecedenceForEveryKey) {
  for (const PrecedenceCase& c : precedenceCases()) {
    SCOPED_TRACE(c.key);
    // The base: a valid RRSA identity and KMS region, none of it the key under test.
    EnvMap env = {
        {"ALIBABA_CLOUD_ROLE_ARN", kRoleArn},
        {"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", kProviderArn},
        {"ALIBABA_CLOUD_OIDC_TOKEN_FILE", kTokenFile},
        {"ALIBABA_CLOUD_REGION_ID", "cn-hangzhou"},
        {"POD_NAME", "pod-1"},
    };
    std::map<std::string, std::string> file;
    if (c.key == "identity.vpc_endpoint") file["identity.sts_region"] = "cn-hangzhou";
    if (c.key == "kms.vpc_endpoint") file["kms.region"] = "cn-hangzhou";
    if (c.key == "identity.type") {
      env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = "LTAIexample";
      env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "example-secret";
    }
    if (!c.env_name.empty()) env.erase(c.env_name);

    const auto run = [&](const Overrides& overrides) {
      return parseConfig(renderYaml(file), fakeEnvironment(env), overrides);
    };
    if (c.want_default.has_value()) {
      const auto config = run({});
      ASSERT_THAT(config, IsOk());
      EXPECT_EQ(c.read(*config), *c.want_default) << "default";
    } else {
      // Required: without it the config is refused, naming the key (or,
      // for kms.region, the endpoints it would produce).
      const std::string named =
          c.key == "kms.region" ? "kms.endpoints: set" : c.key + ": must be set";
      EXPECT_THAT(run({}), StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(named)));
    }
    if (!c.env_name.empty()) {
      env[c.env_name] = c.env_value;
      const auto config = run({});
      ASSERT_THAT(config, IsOk());
      EXPECT_EQ(c.read(*config), c.want_env) << "environment";
    }
    file[c.key] = c.file_value;
    {
      const auto config = run({});
      ASSERT_THAT(config, IsOk());
      EXPECT_EQ(c.read(*config), c.want_file) << "file";
    }
    {
      const auto config = run({{c.key, c.override_value}});
      ASSERT_THAT(config, IsOk());
      EXPECT_EQ(c.read(*config), c.want_override) << "override";
    }
  }
}

// Verifies that a YAML null leaves the key to the environment while an
// empty string hides the environment's value.
TEST(ConfigTest, NullFallsThroughEmptyStringShadows) {
  EnvMap env = minimalEnvironment();
  env["ALIBABA_CLOUD_STS_ENDPOINT"] = "sts.env.example.com";
  const std::string null_value = std::string("identity:\n  sts_endpoint: ~\n") + kProfiles;
  const auto from_env = parseConfig(null_value, fakeEnvironment(env));
  ASSERT_THAT(from_env, IsOk());
  EXPECT_EQ(from_env->identity.sts_endpoint, "https://sts.env.example.com");

  const std::string empty_value = std::string("identity:\n  sts_endpoint: \"\"\n") + kProfiles;
  const auto shadowed = parseConfig(empty_value, fakeEnvironment(env));
  ASSERT_THAT(shadowed, IsOk());
  // Shadowed, so unset: STS follows the KMS region, as with nothing set.
  EXPECT_EQ(shadowed->identity.sts_endpoint, "https://sts.cn-hangzhou.aliyuncs.com");

  // The same through a flag.
  const auto flag = parseConfig(kProfiles, fakeEnvironment(env), {{"identity.sts_endpoint", ""}});
  ASSERT_THAT(flag, IsOk());
  EXPECT_EQ(flag->identity.sts_endpoint, "https://sts.cn-hangzhou.aliyuncs.com");
}

struct EndpointCase {
  std::string name;
  EnvMap env;
  std::map<std::string, std::string> file;
  Overrides overrides;
  std::string want;
};

// No region anywhere: kms.region "" hides ALIBABA_CLOUD_REGION_ID, and an
// endpoint stands in for KMS.
const std::map<std::string, std::string> kNoRegion = {
    {"kms.region", "\"\""}, {"kms.endpoints", "[kms.cn-hangzhou.aliyuncs.com]"}};

// Verifies STS endpoint selection, mirroring credentials-go's
// providers/oidc_test.go (TestNewOIDCCredentialsProvider) plus the ACK
// webhook's ALIBABA_CLOUD_STS_ENDPOINT and credsync's source precedence.
TEST(ConfigTest, StsEndpointSelection) {
  const std::vector<EndpointCase> cases = {
      // oidc_test.go: "sts endpoint: default", with no region anywhere
      // (kms.region "" hides ALIBABA_CLOUD_REGION_ID).
      {"default", {}, kNoRegion, {}, "https://sts.aliyuncs.com"},
      // credsync's rule: no STS setting, so STS follows KMS's region and
      // VPC choice (a VPC-only cluster cannot reach the central endpoint).
      {"follows the kms region", {}, {}, {}, "https://sts.cn-hangzhou.aliyuncs.com"},
      {"follows kms vpc",
       {},
       {{"kms.region", "cn-shenzhen"}, {"kms.vpc_endpoint", "true"}},
       {},
       "https://sts-vpc.cn-shenzhen.aliyuncs.com"},
      {"follows the vpc env with the region env",
       {{"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"}},
       {},
       {},
       "https://sts-vpc.cn-hangzhou.aliyuncs.com"},
      {"identity vpc false beats kms vpc",
       {},
       {{"kms.region", "cn-shenzhen"},
        {"kms.vpc_endpoint", "true"},
        {"identity.vpc_endpoint", "false"}},
       {},
       "https://sts.cn-shenzhen.aliyuncs.com"},
      {"sts region beats kms region",
       {},
       {{"kms.region", "cn-shenzhen"}, {"identity.sts_region", "cn-beijing"}},
       {},
       "https://sts.cn-beijing.aliyuncs.com"},
      {"any explicit sts endpoint beats the kms region",
       {{"ALIBABA_CLOUD_STS_ENDPOINT", "sts-vpc.cn-hangzhou.aliyuncs.com"}},
       {{"kms.region", "cn-shenzhen"}},
       {},
       "https://sts-vpc.cn-hangzhou.aliyuncs.com"},
      {"kms endpoints alone say no region",
       {},
       {{"kms.region", "\"\""}, {"kms.endpoints", "[kms.cn-beijing.aliyuncs.com]"}},
       {},
       "https://sts.aliyuncs.com"},
      // "with sts endpoint env": region and VPC from the environment.
      {"env region and vpc",
       {{"ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"},
        {"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"}},
       {},
       {},
       "https://sts-vpc.cn-hangzhou.aliyuncs.com"},
      // "with sts endpoint": an explicit endpoint beats the region.
      {"explicit endpoint",
       {{"ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"},
        {"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"}},
       {{"identity.sts_endpoint", "sts.cn-shanghai.aliyuncs.com"}},
       {},
       "https://sts.cn-shanghai.aliyuncs.com"},
      // "with sts regionId" and WithEnableVpc(true).
      {"region and vpc option",
       {},
       {{"identity.sts_region", "cn-beijing"}, {"identity.vpc_endpoint", "true"}},
       {},
       "https://sts-vpc.cn-beijing.aliyuncs.com"},
      // ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=false with WithStsRegionId.
      {"region with vpc env false",
       {{"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "false"}},
       {{"identity.sts_region", "cn-hangzhou"}},
       {},
       "https://sts.cn-hangzhou.aliyuncs.com"},
      {"vpc env is case-insensitive",
       {{"ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"},
        {"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "True"}},
       {},
       {},
       "https://sts-vpc.cn-hangzhou.aliyuncs.com"},
      {"vpc env other than true is false",
       {{"ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"}, {"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "1"}},
       {},
       {},
       "https://sts.cn-hangzhou.aliyuncs.com"},
      // The SDKs ignore the VPC switch without a region.
      {"vpc without region",
       {{"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"}},
       kNoRegion,
       {},
       "https://sts.aliyuncs.com"},
      // ACK webhook >= 0.4 injects all three; the endpoint wins.
      {"webhook injection",
       {{"ALIBABA_CLOUD_STS_ENDPOINT", "sts-vpc.cn-hangzhou.aliyuncs.com"},
        {"ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"},
        {"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"}},
       {},
       {},
       "https://sts-vpc.cn-hangzhou.aliyuncs.com"},
      // A region in the file outranks an endpoint from the environment.
      {"file region beats env endpoint",
       {{"ALIBABA_CLOUD_STS_ENDPOINT", "sts-vpc.cn-hangzhou.aliyuncs.com"},
        {"ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"}},
       {{"identity.sts_region", "cn-shanghai"}},
       {},
       "https://sts.cn-shanghai.aliyuncs.com"},
      // Turning VPC off in the file moves away from the injected VPC endpoint.
      {"file vpc false beats env endpoint",
       {{"ALIBABA_CLOUD_STS_ENDPOINT", "sts-vpc.cn-hangzhou.aliyuncs.com"},
        {"ALIBABA_CLOUD_STS_REGION", "cn-hangzhou"},
        {"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"}},
       {{"identity.vpc_endpoint", "false"}},
       {},
       "https://sts.cn-hangzhou.aliyuncs.com"},
      {"flag endpoint beats file region",
       {},
       {{"identity.sts_region", "cn-shanghai"}},
       {{"identity.sts_endpoint", "https://127.0.0.1:9443"}},
       "https://127.0.0.1:9443"},
      {"scheme, port and trailing slash",
       {},
       {{"identity.sts_endpoint", "HTTPS://STS.Example.com:8443/"}},
       {},
       "https://sts.example.com:8443"},
      {"plain http on loopback",
       {{"ALIBABA_CLOUD_STS_ENDPOINT", "http://127.0.0.1:8080"}},
       {},
       {},
       "http://127.0.0.1:8080"},
      {"plain http on localhost",
       {},
       {},
       {{"identity.sts_endpoint", "http://localhost:9000"}},
       "http://localhost:9000"},
      {"plain http on ipv6 loopback",
       {},
       {},
       {{"identity.sts_endpoint", "http://[::1]:9000"}},
       "http://[::1]:9000"},
  };
  for (const EndpointCase& c : cases) {
    SCOPED_TRACE(c.name);
    EnvMap env = minimalEnvironment();
    env.insert(c.env.begin(), c.env.end());
    const auto config = parseConfig(renderYaml(c.file), fakeEnvironment(env), c.overrides);
    ASSERT_THAT(config, IsOk());
    EXPECT_EQ(config->identity.sts_endpoint, c.want);
  }
}

struct KmsCase {
  std::string name;
  EnvMap env;
  std::map<std::string, std::string> file;
  Overrides overrides;
  std::vector<std::string> want;
};

// Verifies KMS endpoints: an explicit list in order, else the shared
// gateway of the region, public or VPC.
TEST(ConfigTest, KmsEndpointSelection) {
  const std::vector<KmsCase> cases = {
      {"region from env",
       {{"ALIBABA_CLOUD_REGION_ID", "cn-hangzhou"}},
       {},
       {},
       {"https://kms.cn-hangzhou.aliyuncs.com"}},
      {"region from file",
       {},
       {{"kms.region", "ap-southeast-1"}},
       {},
       {"https://kms.ap-southeast-1.aliyuncs.com"}},
      {"vpc from file",
       {},
       {{"kms.region", "cn-beijing"}, {"kms.vpc_endpoint", "true"}},
       {},
       {"https://kms-vpc.cn-beijing.aliyuncs.com"}},
      {"vpc from env",
       {{"ALIBABA_CLOUD_REGION_ID", "cn-beijing"}, {"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true"}},
       {},
       {},
       {"https://kms-vpc.cn-beijing.aliyuncs.com"}},
      {"explicit list in order",
       {{"ALIBABA_CLOUD_REGION_ID", "cn-hangzhou"}},
       {{"kms.endpoints",
         "[kst-hzz65f176a0ogplgq.cryptoservice.kms.aliyuncs.com, 'https://kms.cn-hangzhou."
         "aliyuncs.com']"}},
       {},
       {"https://kst-hzz65f176a0ogplgq.cryptoservice.kms.aliyuncs.com",
        "https://kms.cn-hangzhou.aliyuncs.com"}},
      {"flag list",
       {},
       {},
       {{"kms.endpoints", " a.example.com , https://b.example.com:444, ,http://127.0.0.1:8080 "}},
       {"https://a.example.com", "https://b.example.com:444", "http://127.0.0.1:8080"}},
      {"flag region beats file list",
       {},
       {{"kms.endpoints", "[a.example.com]"}},
       {{"kms.region", "cn-shanghai"}},
       {"https://kms.cn-shanghai.aliyuncs.com"}},
      {"empty list falls back to region",
       {},
       {{"kms.endpoints", "[]"}, {"kms.region", "cn-shanghai"}},
       {},
       {"https://kms.cn-shanghai.aliyuncs.com"}},
      // The official clients' region list: an endpoint wins, then vpc.
      {"cache_client_region_id in order, beating ALIBABA_CLOUD_REGION_ID",
       {{"ALIBABA_CLOUD_REGION_ID", "cn-beijing"},
        {"cache_client_region_id",
         R"([{"regionId":"cn-hangzhou"},{"regionId":"cn-shanghai","vpc":true},)"
         R"({"regionId":"cn-hangzhou","endpoint":"kst-hzz1.cryptoservice.kms.aliyuncs.com"},)"
         R"({"regionId":"cn-beijing","vpc":"TRUE"},{"regionId":"cn-qingdao","vpc":"false"}])"}},
       {},
       {},
       {"https://kms.cn-hangzhou.aliyuncs.com", "https://kms-vpc.cn-shanghai.aliyuncs.com",
        "https://kst-hzz1.cryptoservice.kms.aliyuncs.com",
        "https://kms-vpc.cn-beijing.aliyuncs.com", "https://kms.cn-qingdao.aliyuncs.com"}},
      {"an empty file list lets cache_client_region_id apply",
       {{"cache_client_region_id", R"([{"regionId":"cn-shanghai"}])"}},
       {{"kms.endpoints", "[]"}},
       {},
       {"https://kms.cn-shanghai.aliyuncs.com"}},
      {"a file list beats cache_client_region_id",
       {{"cache_client_region_id", R"([{"regionId":"cn-shanghai"}])"}},
       {{"kms.endpoints", "[a.example.com]"}},
       {},
       {"https://a.example.com"}},
      {"a file region beats cache_client_region_id",
       {{"cache_client_region_id", R"([{"regionId":"cn-shanghai"}])"}},
       {{"kms.region", "cn-beijing"}},
       {},
       {"https://kms.cn-beijing.aliyuncs.com"}},
      {"a flag list beats cache_client_region_id",
       {{"cache_client_region_id", "not even JSON"}},
       {},
       {{"kms.endpoints", "b.example.com"}},
       {"https://b.example.com"}},
  };
  for (const KmsCase& c : cases) {
    SCOPED_TRACE(c.name);
    EnvMap env = {{"ALIBABA_CLOUD_ROLE_ARN", kRoleArn},
                  {"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", kProviderArn},
                  {"ALIBABA_CLOUD_OIDC_TOKEN_FILE", kTokenFile}};
    env.insert(c.env.begin(), c.env.end());
    const auto config = parseConfig(renderYaml(c.file), fakeEnvironment(env), c.overrides);
    ASSERT_THAT(config, IsOk());
    EXPECT_EQ(config->kms.endpoints, c.want);
  }
}

// Verifies the exact error when nothing names a KMS endpoint.
TEST(ConfigTest, KmsEndpointsRequired) {
  EnvMap env = minimalEnvironment();
  env.erase("ALIBABA_CLOUD_REGION_ID");
  EXPECT_THAT(parseConfig(kProfiles, fakeEnvironment(env)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "kms.endpoints: set kms.endpoints or kms.region (or "
                       "ALIBABA_CLOUD_REGION_ID), or kms.instances"));
}

// Verifies each way cache_client_region_id can be wrong is one line naming
// the entry and the variable.
TEST(ConfigTest, CacheClientRegionIdErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json [", "cache_client_region_id: must be a JSON array of objects"},
      {R"({"regionId":"cn-hangzhou"})", "cache_client_region_id: must be a JSON array of objects"},
      {"[]", "cache_client_region_id: lists no region"},
      {R"(["cn-hangzhou"])", "cache_client_region_id[0]: must be an object"},
      {R"([{"regionId":"cn-hangzhou"},{"vpc":true}])",
       "cache_client_region_id[1].regionId: must be set when endpoint is not"},
      {R"([{"regionId":"Hangzhou!"}])",
       "cache_client_region_id[0].regionId: must be a region ID such as cn-hangzhou"},
      {R"([{"regionId":"cn-hangzhou","caFilePath":"/ca.pem"}])",
       "cache_client_region_id[0].caFilePath: not supported by credsync"},
      {R"([{"regionId":"cn-hangzhou","regionId":"cn-beijing"}])",
       "cache_client_region_id[0].regionId: duplicate key"},
      {R"([{"regionId":["cn-hangzhou"]}])", "cache_client_region_id[0].regionId: must be a scalar"},
      {R"([{"endpoint":"bad host/x"}])", "kms.endpoints[0]: "},
  };
  for (const auto& [value, prefix] : cases) {
    SCOPED_TRACE(value);
    EnvMap env = minimalEnvironment();
    env["cache_client_region_id"] = value;
    const auto config = parseConfig(kProfiles, fakeEnvironment(env));
    EXPECT_THAT(config,
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(StartsWith(prefix), HasSubstr("(from cache_client_region_id)"),
                               Not(HasSubstr("\n")))));
  }
}

struct InvalidCase {
  std::string key;    // the dotted key; the message must start with `prefix`
  std::string value;  // written verbatim into the YAML
  std::string prefix;
  bool also_as_flag = true;  // the flag path runs the same validation
};

// The table of invalid values lives in tests/config/invalid_cases.json, so
// that the end-to-end test of the real binary (tests/e2e/node/
// bad_input.test.mjs) runs exactly the same cases.
nlohmann::json invalidCasesFile() {
  std::ifstream in(CREDSYNC_INVALID_CASES_FILE);
  EXPECT_TRUE(in.good()) << "cannot read " << CREDSYNC_INVALID_CASES_FILE;
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

std::vector<InvalidCase> invalidCases() {
  const nlohmann::json file = invalidCasesFile();
  std::vector<InvalidCase> cases;
  if (!file.is_object() || !file.contains("keys")) {
    ADD_FAILURE() << CREDSYNC_INVALID_CASES_FILE << " has no \"keys\" table";
    return cases;
  }
  for (const nlohmann::json& entry : file["keys"]) {
    cases.push_back({entry.at("key").get<std::string>(), entry.at("value").get<std::string>(),
                     entry.at("prefix").get<std::string>(), entry.value("also_as_flag", true)});
  }
  return cases;
}

// Verifies that an invalid value for every key is INVALID_ARGUMENT, one line,
// starting with the key's path; and the same through a flag override.
TEST(ConfigTest, InvalidValueForEveryKey) {
  const std::vector<InvalidCase> cases = invalidCases();
  EXPECT_GE(cases.size(), 90u);
  for (const InvalidCase& c : cases) {
    SCOPED_TRACE(c.key + " = " + c.value);
    std::map<std::string, std::string> file;
    std::string text;
    if (c.key.find('.') == std::string::npos && c.key != "profiles") {
      text = c.key + ": " + c.value + "\n" + kProfiles;
    } else {
      file[c.key] = c.value;
      text = renderYaml(file);
    }
    const auto result = parseConfig(text, fakeEnvironment(minimalEnvironment()));
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(c.prefix)));
    EXPECT_THAT(std::string(result.status().message()), Not(HasSubstr("\n")));
    if (!c.also_as_flag) continue;
    // The flag carries the unquoted text.
    std::string flag_value = c.value;
    if (flag_value.size() >= 2 && flag_value.front() == '"' && flag_value.back() == '"') {
      flag_value = flag_value.substr(1, flag_value.size() - 2);
    }
    if (c.key == "kms.endpoints") flag_value = "kms.example.com,http://10.0.0.1";
    EXPECT_THAT(
        parseConfig(kProfiles, fakeEnvironment(minimalEnvironment()), {{c.key, flag_value}}),
        StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(c.prefix)))
        << "as a flag";
  }
}

// Verifies every bad environment of the shared table: one line naming the
// key and the variable it came from, never echoing a static secret.
TEST(ConfigTest, InvalidEnvironment) {
  const nlohmann::json file = invalidCasesFile();
  ASSERT_TRUE(file.contains("environment") && file.contains("base_environment"));
  EXPECT_GE(file["environment"].size(), 10u);
  for (const nlohmann::json& c : file["environment"]) {
    SCOPED_TRACE(c.dump());
    EnvMap env = file["base_environment"].get<EnvMap>();
    const nlohmann::json set = c.value("set", nlohmann::json::object());
    for (const auto& [name, value] : set.items()) env[name] = value.get<std::string>();
    const nlohmann::json unset = c.value("unset", nlohmann::json::array());
    for (const auto& name : unset) env.erase(name.get<std::string>());
    const auto result =
        parseConfig(c.value("file", std::string()) + kProfiles, fakeEnvironment(env));
    ASSERT_FALSE(result.ok());
    const std::string message(result.status().message());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    if (c.contains("message")) {
      EXPECT_EQ(message, c["message"].get<std::string>());
    } else {
      EXPECT_THAT(message, StartsWith(c.at("prefix").get<std::string>()));
      EXPECT_THAT(message, HasSubstr(c.at("contains").get<std::string>()));
    }
    EXPECT_THAT(message, Not(HasSubstr("\n")));
    for (const char* secret : {"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"}) {
      if (env.count(secret) > 0) {
        EXPECT_THAT(message, Not(HasSubstr(env[secret])));
      }
    }
  }
}

// Verifies that a value from the file, the environment or a flag is traced
// to where it came from.
TEST(ConfigTest, ErrorsSayWhereTheValueCameFrom) {
  EXPECT_THAT(parseConfig(std::string("log:\n  level: loud\n") + kProfiles,
                          fakeEnvironment(minimalEnvironment())),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(line 2)")));
  EnvMap env = minimalEnvironment();
  env["ALIBABA_CLOUD_ROLE_ARN"] = "not-an-arn";
  EXPECT_THAT(parseConfig(kProfiles, fakeEnvironment(env)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "identity.role_arn: must look like acs:ram::<account id>:role/<role "
                       "name> (from ALIBABA_CLOUD_ROLE_ARN)"));
  EXPECT_THAT(
      parseConfig(kProfiles, fakeEnvironment(minimalEnvironment()), {{"log.level", "loud"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("(from a flag)")));
}

// Verifies that each RRSA field is required for oidc, naming its variable.
TEST(ConfigTest, OidcNeedsItsThreeFields) {
  for (const auto& [key, env_name] : std::vector<std::pair<std::string, std::string>>{
           {"identity.role_arn", "ALIBABA_CLOUD_ROLE_ARN"},
           {"identity.oidc_provider_arn", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"},
           {"identity.oidc_token_file", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"}}) {
    EnvMap env = minimalEnvironment();
    env.erase(env_name);
    EXPECT_THAT(parseConfig(kProfiles, fakeEnvironment(env)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         absl::StrCat(key, ": must be set for identity.type oidc (or set ",
                                      env_name, ")")));
  }
}

// Verifies unknown keys at every level are errors that name the key.
TEST(ConfigTest, UnknownKeys) {
  const auto env = fakeEnvironment(minimalEnvironment());
  EXPECT_THAT(parseConfig(std::string("identiy:\n  role_arn: x\n") + kProfiles, env),
              StatusIs(absl::StatusCode::kInvalidArgument, "identiy: unknown key (line 1)"));
  EXPECT_THAT(
      parseConfig(std::string("identity:\n  rol_arn: x\n") + kProfiles, env),
      StatusIs(absl::StatusCode::kInvalidArgument, "identity.rol_arn: unknown key (line 2)"));
  EXPECT_THAT(
      parseConfig(std::string("kms:\n  endpoint: [a]\n") + kProfiles, env),
      StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("kms.endpoint: unknown key")));
  EXPECT_THAT(parseConfig(std::string("{\"output\": {\"mode\": \"0440\"}}"), env),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("output.mode: unknown key")));
  EXPECT_THAT(
      parseConfig(kProfiles, env, {{"output.dir", "/x"}}),
      StatusIs(absl::StatusCode::kInvalidArgument, "output.dir: unknown key (from a flag)"));
  EXPECT_THAT(parseConfig(kProfiles, env, {{"identity", "x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("identity: unknown key")));
  // Control characters in an echoed key are neutralised.
  EXPECT_THAT(parseConfig(kProfiles, env, {{"bad\nkey", "x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "bad?key: unknown key (from a flag)"));
}

// Verifies that profiles cannot be changed by flags.
TEST(ConfigTest, ProfilesAreNotOverridable) {
  const auto env = fakeEnvironment(minimalEnvironment());
  for (const char* key : {"profiles", "profiles[0].name", "profiles.secret_name"}) {
    EXPECT_THAT(parseConfig(kProfiles, env, {{key, "x"}}),
                StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("profiles: cannot be")))
        << key;
  }
}

// Verifies duplicate keys and several documents are refused.
TEST(ConfigTest, DuplicateKeysAndDocuments) {
  const auto env = fakeEnvironment(minimalEnvironment());
  EXPECT_THAT(parseConfig(std::string("log:\n  level: info\n  level: debug\n") + kProfiles, env),
              StatusIs(absl::StatusCode::kInvalidArgument, "log.level: duplicate key (line 3)"));
  EXPECT_THAT(parseConfig(std::string("log: {}\nlog: {}\n") + kProfiles, env),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("log: duplicate key")));
  EXPECT_THAT(
      parseConfig(std::string(kProfiles) + "---\n" + kProfiles, env),
      StatusIs(absl::StatusCode::kInvalidArgument, "config: must hold exactly one YAML document"));
  EXPECT_THAT(parseConfig("just a string", env),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("config: the document")));
  EXPECT_THAT(parseConfig("? [a, b]\n: c\n", env),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("config: keys must be")));
}

// Verifies that malformed YAML and JSON name the line of the problem.
TEST(ConfigTest, MalformedInputNamesTheLine) {
  const auto env = fakeEnvironment(minimalEnvironment());
  EXPECT_THAT(parseConfig("log:\n  level: info\n  bad: [unclosed\nprofiles: []\n", env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("config: YAML syntax error at line ")));
  EXPECT_THAT(parseConfig("log: {level: info\nprofiles: []\n", env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("config: YAML syntax error at line 2")));
  EXPECT_THAT(parseConfig("identity:\n  role_arn: x\n    type: oidc\n", env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("config: YAML syntax error at line 3")));
  // yaml-cpp 0.7's LoadAll loops forever on these (jbeder/yaml-cpp#1040).
  for (const char* text : {",", ", ", "\n,\n", "log: {}\n...\n,\n"}) {
    EXPECT_THAT(parseConfig(text, env),
                StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("config: ")))
        << text;
  }
  EXPECT_THAT(parseConfig(",", env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "config: YAML syntax error at line 1, column 1: unexpected character"));
  EXPECT_THAT(parseConfig("{\n  \"log\": {\"level\": \"info\"}\n  \"kms\": {}\n}\n", env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("config: YAML syntax error at line 3")));
}

// Verifies the default session name: "credsync-" + the pod name with
// characters STS refuses replaced, at most 64 characters.
TEST(ConfigTest, DefaultSessionName) {
  struct Case {
    EnvMap env;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{{"POD_NAME", "web-0"}, {"HOSTNAME", "host-1"}}, "credsync-web-0"},
      {{{"HOSTNAME", "host-1"}}, "credsync-host-1"},
      {{}, "credsync"},
      {{{"POD_NAME", ""}, {"HOSTNAME", "host-1"}}, "credsync-host-1"},
      {{{"POD_NAME", "a b/c:d\xce\xb2"}}, "credsync-a-b-c-d--"},
      {{{"POD_NAME", std::string(80, 'p')}}, "credsync-" + std::string(55, 'p')},
  };
  for (const Case& c : cases) {
    EnvMap env = minimalEnvironment();
    env.insert(c.env.begin(), c.env.end());
    const auto config = parseConfig(kProfiles, fakeEnvironment(env));
    ASSERT_THAT(config, IsOk());
    EXPECT_EQ(config->identity.role_session_name, c.want);
    EXPECT_LE(config->identity.role_session_name.size(), 64u);
  }
}

// Verifies which profile is the default and that it is listed first.
TEST(ConfigTest, DefaultProfileChoice) {
  const auto env = fakeEnvironment(minimalEnvironment());
  const auto names = [&](const std::string& profiles) {
    const auto config = parseConfig("profiles: " + profiles + "\n", env);
    EXPECT_THAT(config, IsOk());
    std::vector<std::string> out;
    if (!config.ok()) return out;
    int defaults = 0;
    for (const ProfileConfig& profile : config->profiles) {
      out.push_back(profile.name);
      defaults += profile.is_default ? 1 : 0;
    }
    EXPECT_EQ(defaults, 1);
    EXPECT_TRUE(config->profiles.front().is_default);
    return out;
  };
  EXPECT_THAT(names("[{name: a, secret_name: s}, {name: b, secret_name: t}]"),
              ElementsAre("a", "b"));
  EXPECT_THAT(names("[{name: a, secret_name: s}, {name: b, secret_name: t, default: true}, "
                    "{name: c, secret_name: u}]"),
              ElementsAre("b", "a", "c"));
  // Without a marked default, the profile named "default" is the one.
  EXPECT_THAT(names("[{name: a, secret_name: s}, {name: default, secret_name: t}]"),
              ElementsAre("default", "a"));
}

// Verifies generic profiles: kind, format, file and file_prefix with their
// defaults; they never become the default profile, and a config of generic
// profiles only has no default.
TEST(ConfigTest, GenericProfiles) {
  const auto env = fakeEnvironment(minimalEnvironment());
  const auto config = parseConfig(R"(profiles:
  - {name: api, secret_name: api/key, kind: generic}
  - {name: app, secret_name: acs/ram/user/app}
  - {name: db, secret_name: db/main, kind: generic, format: json_keys, required: false}
  - {name: tls, secret_name: tls/key, kind: generic, format: raw, file: tls.key}
  - {name: cache, secret_name: cache/main, kind: generic, format: json_keys, file_prefix: redis-}
  - {name: batch, secret_name: acs/ram/user/batch, kind: ram_credentials}
)",
                                  env);
  ASSERT_THAT(config, IsOk());
  std::map<std::string, ProfileConfig> by_name;
  for (const ProfileConfig& profile : config->profiles) by_name[profile.name] = profile;
  EXPECT_EQ(config->profiles.front().name, "app");
  EXPECT_TRUE(by_name["app"].is_default);
  EXPECT_EQ(by_name["app"].kind, ProfileKind::kRamCredentials);
  EXPECT_EQ(by_name["batch"].kind, ProfileKind::kRamCredentials);
  EXPECT_EQ(by_name["api"].kind, ProfileKind::kGeneric);
  EXPECT_EQ(by_name["api"].format, GenericFormat::kRaw);
  EXPECT_EQ(by_name["api"].file, "api");
  EXPECT_FALSE(by_name["api"].is_default);
  EXPECT_EQ(by_name["db"].format, GenericFormat::kJsonKeys);
  EXPECT_EQ(by_name["db"].file_prefix, "db.");
  EXPECT_FALSE(by_name["db"].required);
  EXPECT_EQ(by_name["tls"].file, "tls.key");
  EXPECT_EQ(by_name["cache"].file_prefix, "redis-");

  const auto generic_only = parseConfig(
      "profiles: [{name: db, secret_name: db/main, kind: generic, format: json_keys}]\n", env);
  ASSERT_THAT(generic_only, IsOk());
  ASSERT_EQ(generic_only->profiles.size(), 1u);
  EXPECT_FALSE(generic_only->profiles[0].is_default);
  EXPECT_STREQ(profileKindName(ProfileKind::kGeneric), "generic");
  EXPECT_STREQ(genericFormatName(GenericFormat::kJsonKeys), "json_keys");
}

// Verifies the socket is a reserved name only when it lives in the output
// directory.
TEST(ConfigTest, GenericFileMayMatchASocketElsewhere) {
  const auto env = fakeEnvironment(minimalEnvironment());
  EXPECT_THAT(
      parseConfig("control: {socket: /run/other/credsync.sock}\n"
                  "profiles: [{name: a, secret_name: s, kind: generic, file: credsync.sock}]\n",
                  env),
      IsOk());
  EXPECT_THAT(parseConfig("control: {socket: /var/run/credsync/api.sock}\n"
                          "profiles: [{name: a, secret_name: s, kind: generic, file: api.sock}]\n",
                          env),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("profiles[0].file: this file could replace api.sock")));
}

// Verifies an ecs_ram_role identity needs no RRSA variables, defaults to the
// SDKs' settings (100.100.100.200, fallback allowed, 6 h token, discovered
// role), and honours ALIBABA_CLOUD_ECS_METADATA and ALIBABA_CLOUD_IMDSV1_DISABLED.
TEST(ConfigTest, EcsRamRoleIdentity) {
  const EnvMap env = {{"ALIBABA_CLOUD_REGION_ID", "cn-hangzhou"}};
  const std::string text = std::string("identity:\n  type: ecs_ram_role\n") + kProfiles;
  const auto config = parseConfig(text, fakeEnvironment(env));
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->identity.type, IdentityType::kEcsRamRole);
  EXPECT_STREQ(identityTypeName(config->identity.type), "ecs_ram_role");
  EXPECT_EQ(config->identity.ecs_metadata_endpoint, "http://100.100.100.200");
  EXPECT_EQ(config->identity.ecs_role_name, "");
  EXPECT_TRUE(config->identity.ecs_imdsv1_fallback);
  EXPECT_EQ(config->identity.ecs_metadata_token_ttl, absl::Hours(6));

  EnvMap sdk_env = env;
  sdk_env["ALIBABA_CLOUD_ECS_METADATA"] = "node-role";
  sdk_env["ALIBABA_CLOUD_IMDSV1_DISABLED"] = "True";
  const auto hardened = parseConfig(
      std::string("identity:\n  type: ecs_ram_role\n  imdsv1_fallback: true\n") + kProfiles,
      fakeEnvironment(sdk_env));
  ASSERT_THAT(hardened, IsOk());
  EXPECT_EQ(hardened->identity.ecs_role_name, "node-role");
  // The variable forces the hardened mode over the file, as in the SDKs.
  EXPECT_FALSE(hardened->identity.ecs_imdsv1_fallback);

  sdk_env["ALIBABA_CLOUD_IMDSV1_DISABLED"] = "false";
  const auto allowed = parseConfig(text, fakeEnvironment(sdk_env));
  ASSERT_THAT(allowed, IsOk());
  EXPECT_TRUE(allowed->identity.ecs_imdsv1_fallback);
}

// Verifies a static identity reads its AccessKey from the environment only.
TEST(ConfigTest, StaticIdentity) {
  const EnvMap env = {{"ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tExample"},
                      {"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cr3t-Value-123"},
                      {"ALIBABA_CLOUD_SECURITY_TOKEN", "t0ken-Value-456"},
                      {"ALIBABA_CLOUD_REGION_ID", "cn-hangzhou"}};
  const auto config =
      parseConfig(std::string("identity:\n  type: static\n") + kProfiles, fakeEnvironment(env));
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->identity.type, IdentityType::kStatic);
  EXPECT_EQ(config->identity.static_access_key_id, "LTAI5tExample");
  EXPECT_EQ(config->identity.static_access_key_secret.reveal(), "s3cr3t-Value-123");
  EXPECT_EQ(config->identity.static_security_token.reveal(), "t0ken-Value-456");

  // An oidc identity never picks the AccessKey up.
  const auto oidc = parseConfig(kProfiles, fakeEnvironment([&] {
                                  EnvMap all = env;
                                  const EnvMap rrsa = minimalEnvironment();
                                  all.insert(rrsa.begin(), rrsa.end());
                                  return all;
                                }()));
  ASSERT_THAT(oidc, IsOk());
  EXPECT_TRUE(oidc->identity.static_access_key_secret.empty());
  EXPECT_TRUE(oidc->identity.static_security_token.empty());
}

// Verifies that no error message ever contains a static identity's secret
// or token, whatever else is wrong.
TEST(ConfigTest, StaticSecretsNeverInErrors) {
  const std::string secret = "s3cr3t-Value-123";
  const std::string token = "t0ken-Value-456";
  const std::string static_file = std::string("identity:\n  type: static\n") + kProfiles;
  struct Case {
    EnvMap env;
    std::string text;
    Overrides overrides;
  };
  const std::vector<Case> cases = {
      // No key id: the pair is incomplete.
      {{{"ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret}, {"ALIBABA_CLOUD_SECURITY_TOKEN", token}},
       static_file,
       {}},
      // No secret.
      {{{"ALIBABA_CLOUD_ACCESS_KEY_ID", secret}}, static_file, {}},
      // Complete, but another key is wrong.
      {{{"ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tExample"},
        {"ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret},
        {"ALIBABA_CLOUD_SECURITY_TOKEN", token}},
       static_file,
       {{"log.level", "loud"}}},
      {{{"ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tExample"},
        {"ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret},
        {"ALIBABA_CLOUD_SECURITY_TOKEN", token}},
       std::string("identity:\n  type: static\n"),
       {}},
  };
  for (const Case& c : cases) {
    EnvMap env = c.env;
    env["ALIBABA_CLOUD_REGION_ID"] = "cn-hangzhou";
    const auto result = parseConfig(c.text, fakeEnvironment(env), c.overrides);
    ASSERT_FALSE(result.ok());
    EXPECT_THAT(std::string(result.status().message()), Not(HasSubstr(secret)));
    EXPECT_THAT(std::string(result.status().message()), Not(HasSubstr(token)));
    EXPECT_THAT(result.status().ToString(), Not(HasSubstr(secret)));
  }
  EnvMap incomplete = {{"ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret},
                       {"ALIBABA_CLOUD_REGION_ID", "cn-hangzhou"}};
  EXPECT_THAT(parseConfig(static_file, fakeEnvironment(incomplete)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "identity.type: static needs ALIBABA_CLOUD_ACCESS_KEY_ID and "
                       "ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment"));
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "/config_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
    dir_ = dir_template;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::string dir_;
};

// Verifies that loadConfigFile reads and parses a file, applying overrides.
TEST_F(ConfigFileTest, LoadsFile) {
  const std::string path = write("credsync.yaml", kFullYaml);
  const auto config = loadConfigFile(path, fakeEnvironment({}));
  ASSERT_THAT(config, IsOk());
  expectFullConfig(*config);
  const auto overridden = loadConfigFile(path, fakeEnvironment({}), {{"log.level", "error"}});
  ASSERT_THAT(overridden, IsOk());
  EXPECT_EQ(overridden->log_level, log::Level::kError);
}

// Verifies that a client (`credsync refresh`, `probe`) reads the socket and
// token settings from the sidecar's config without the identity environment
// the sidecar needs, and still gets one-line errors for what it does read.
TEST_F(ConfigFileTest, ClientSettingsNeedNoIdentity) {
  const std::string path = write("client.yaml",
                                 "output:\n  directory: /run/out\ncontrol:\n"
                                 "  tcp_address: 127.0.0.1:9901\n" +
                                     std::string(kProfiles));
  const auto settings = loadClientSettings(path, fakeEnvironment({}));
  ASSERT_THAT(settings, IsOk());
  EXPECT_EQ(settings->control.socket_path, "/run/out/credsync.sock");
  EXPECT_EQ(settings->control.tcp_address, "127.0.0.1:9901");
  EXPECT_EQ(settings->output.directory, "/run/out");
  EXPECT_THAT(loadConfigFile(path, fakeEnvironment({})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("identity.role_arn")));

  const std::string bad = write("bad.yaml", "control:\n  socket: relative\n");
  EXPECT_THAT(loadClientSettings(bad, fakeEnvironment({})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("control.socket")));
  EXPECT_THAT(loadClientSettings(dir_ + "/absent.yaml", fakeEnvironment({})),
              StatusIs(absl::StatusCode::kNotFound));
}

// Verifies that a missing file is NOT_FOUND naming the path.
TEST_F(ConfigFileTest, MissingFileNamesPath) {
  const std::string path = dir_ + "/absent/credsync.yaml";
  EXPECT_THAT(loadConfigFile(path, fakeEnvironment({})),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
}

// Verifies that a directory or an oversized file is refused, naming the path.
TEST_F(ConfigFileTest, RefusesDirectoryAndHugeFile) {
  EXPECT_THAT(loadConfigFile(dir_, fakeEnvironment({})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(dir_)));
  const std::string huge = write("huge.yaml", "# " + std::string(2 << 20, 'x') + "\n");
  EXPECT_THAT(loadConfigFile(huge, fakeEnvironment({})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("larger than 1 MiB")));
}

// Verifies that processEnvironment reads the real process environment.
TEST(ConfigTest, ProcessEnvironment) {
  ASSERT_EQ(setenv("CREDSYNC_CONFIG_TEST_VAR", "value", 1), 0);
  const Environment env = processEnvironment();
  EXPECT_EQ(env("CREDSYNC_CONFIG_TEST_VAR"), std::optional<std::string>("value"));
  EXPECT_EQ(env("CREDSYNC_CONFIG_TEST_UNSET_VAR"), std::nullopt);
  unsetenv("CREDSYNC_CONFIG_TEST_VAR");
}

constexpr char kInstancesYaml[] = R"(kms:
  instances:
    - endpoint: KST-HZZ65F176A0OGPLGQ.cryptoservice.kms.aliyuncs.com
      region_id: cn-hangzhou
      client_key_file: /keys/clientKey_KAAP.json
      password_file: /keys/clientKey_Password.txt
      ca_file: /keys/PrivateKmsCA_kst-hzz.pem
    - endpoint: https://kst-second.cryptoservice.kms.aliyuncs.com:8443/
      region_id: cn-shanghai
      client_key_file: /keys/second.json
      password_env: SECOND_CLIENT_KEY_PASSWORD
      insecure_skip_verify: true
)";

// Verifies kms.instances is read and normalised, and that with only
// instances neither a KMS region/endpoint nor an identity is required: an
// ALIBABA_CLOUD_REGION_ID in the environment does not add the shared gateway.
TEST(ConfigInstancesTest, InstancesOnlyNeedNoIdentity) {
  for (const EnvMap& env : {EnvMap{}, EnvMap{{"ALIBABA_CLOUD_REGION_ID", "cn-hangzhou"}}}) {
    const auto config = parseConfig(std::string(kInstancesYaml) + kProfiles, fakeEnvironment(env));
    ASSERT_THAT(config, IsOk());
    EXPECT_TRUE(config->kms.endpoints.empty());
    ASSERT_EQ(config->kms.instances.size(), 2u);
    const KmsInstanceConfig& first = config->kms.instances[0];
    EXPECT_EQ(first.endpoint, "https://kst-hzz65f176a0ogplgq.cryptoservice.kms.aliyuncs.com");
    EXPECT_EQ(first.region_id, "cn-hangzhou");
    EXPECT_EQ(first.client_key_file, "/keys/clientKey_KAAP.json");
    EXPECT_EQ(first.password_file, "/keys/clientKey_Password.txt");
    EXPECT_EQ(first.password_env, "");
    EXPECT_EQ(first.ca_file, "/keys/PrivateKmsCA_kst-hzz.pem");
    EXPECT_TRUE(first.verify);
    const KmsInstanceConfig& second = config->kms.instances[1];
    EXPECT_EQ(second.endpoint, "https://kst-second.cryptoservice.kms.aliyuncs.com:8443");
    EXPECT_EQ(second.password_env, "SECOND_CLIENT_KEY_PASSWORD");
    EXPECT_FALSE(second.verify);
  }
}

// Verifies that a region set in the file adds the shared gateway next to
// the instances, and then the identity is required again.
TEST(ConfigInstancesTest, FileRegionAddsSharedGatewayAndNeedsIdentity) {
  const std::string text =
      std::string(kInstancesYaml) + "  region: cn-hangzhou\n" + std::string(kProfiles);
  const auto config = parseConfig(text, fakeEnvironment(minimalEnvironment()));
  ASSERT_THAT(config, IsOk());
  EXPECT_THAT(config->kms.endpoints, ElementsAre("https://kms.cn-hangzhou.aliyuncs.com"));
  EXPECT_EQ(config->kms.instances.size(), 2u);
  EXPECT_THAT(parseConfig(text, fakeEnvironment({})),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("identity.role_arn")));
}

constexpr char kOfficialEnv[] =
    R"([{"regionId":"cn-hangzhou","endpoint":"kst-hzz.cryptoservice.kms.aliyuncs.com",)"
    R"("clientKeyFile":"/keys/ck.json","passwordFromEnvVariable":"CK_PASSWORD",)"
    R"("caFilePath":"/keys/ca.pem","ignoreSslCerts":false}])";

// Verifies the official cache_client_dkms_config_info variable is used when
// the file has no kms.instances, with its documented field names.
TEST(ConfigInstancesTest, OfficialEnvironmentVariable) {
  const auto config =
      parseConfig(kProfiles, fakeEnvironment({{"cache_client_dkms_config_info", kOfficialEnv}}));
  ASSERT_THAT(config, IsOk());
  EXPECT_TRUE(config->kms.endpoints.empty());
  ASSERT_EQ(config->kms.instances.size(), 1u);
  const KmsInstanceConfig& instance = config->kms.instances[0];
  EXPECT_EQ(instance.endpoint, "https://kst-hzz.cryptoservice.kms.aliyuncs.com");
  EXPECT_EQ(instance.region_id, "cn-hangzhou");
  EXPECT_EQ(instance.client_key_file, "/keys/ck.json");
  EXPECT_EQ(instance.password_env, "CK_PASSWORD");
  EXPECT_EQ(instance.ca_file, "/keys/ca.pem");
  EXPECT_TRUE(instance.verify);
}

// Verifies the file's kms.instances (even an empty list) wins over the
// variable, which is then not even parsed.
TEST(ConfigInstancesTest, FileBeatsEnvironmentVariable) {
  const auto config =
      parseConfig(std::string(kInstancesYaml) + kProfiles,
                  fakeEnvironment({{"cache_client_dkms_config_info", "not json ["}}));
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->kms.instances.size(), 2u);
  const auto empty = parseConfig(std::string("kms:\n  instances: []\n") + kProfiles,
                                 fakeEnvironment({{"cache_client_dkms_config_info", kOfficialEnv},
                                                  {"ALIBABA_CLOUD_REGION_ID", "cn-hangzhou"},
                                                  {"ALIBABA_CLOUD_ROLE_ARN", kRoleArn},
                                                  {"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", kProviderArn},
                                                  {"ALIBABA_CLOUD_OIDC_TOKEN_FILE", kTokenFile}}));
  ASSERT_THAT(empty, IsOk());
  EXPECT_TRUE(
      empty->kms.instances.empty());  // A YAML null leaves the key unset: the variable applies.
  const auto null = parseConfig(std::string("kms:\n  instances:\n") + kProfiles,
                                fakeEnvironment({{"cache_client_dkms_config_info", kOfficialEnv}}));
  ASSERT_THAT(null, IsOk());
  EXPECT_EQ(null->kms.instances.size(), 1u);
}

// Verifies kms.instances cannot come from a flag.
TEST(ConfigInstancesTest, NotAFlag) {
  EXPECT_THAT(parseConfig(kProfiles, fakeEnvironment(minimalEnvironment()),
                          {{"kms.instances", "kst-1.example.com"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("kms.instances: cannot be overridden by a flag")));
}

// Verifies both kinds of hook with every key, the defaults (name hooks[i],
// SIGHUP, 30s, any profile), and signal names in every accepted form.
TEST(ConfigTest, Hooks) {
  const std::string text = std::string(
                               "profiles:\n"
                               "  - {name: app, secret_name: acs/ram/user/app}\n"
                               "  - {name: reporting, secret_name: acs/ram/user/reporting}\n") +
                           "hooks:\n"
                           "  - name: reload-nginx\n"
                           "    signal: {signal: SIGUSR1, process: nginx}\n"
                           "    profiles: [app]\n"
                           "  - signal: {pid_file: /var/run/app/app.pid}\n"
                           "  - name: notify\n"
                           "    command: [/bin/sh, -c, 'echo \"$CREDSYNC_GENERATION\"']\n"
                           "    timeout: 5s\n"
                           "  - {command: [notify-app], timeout: ~, profiles: [reporting, app]}\n";
  const auto config = parseConfig(text, fakeEnvironment(minimalEnvironment()));
  ASSERT_THAT(config, IsOk());
  ASSERT_EQ(config->hooks.size(), 4u);
  const HookConfig& reload = config->hooks[0];
  EXPECT_EQ(reload.name, "reload-nginx");
  EXPECT_EQ(reload.kind, HookConfig::Kind::kSignal);
  EXPECT_EQ(reload.signal, SIGUSR1);
  EXPECT_EQ(reload.process, "nginx");
  EXPECT_THAT(reload.profiles, ElementsAre("app"));
  const HookConfig& pid_file = config->hooks[1];
  EXPECT_EQ(pid_file.name, "hooks[1]");
  EXPECT_EQ(pid_file.signal, SIGHUP);
  EXPECT_EQ(pid_file.pid_file, "/var/run/app/app.pid");
  EXPECT_TRUE(pid_file.profiles.empty());
  const HookConfig& notify = config->hooks[2];
  EXPECT_EQ(notify.kind, HookConfig::Kind::kCommand);
  EXPECT_THAT(notify.command, ElementsAre("/bin/sh", "-c", "echo \"$CREDSYNC_GENERATION\""));
  EXPECT_EQ(notify.timeout, absl::Seconds(5));
  EXPECT_EQ(config->hooks[3].timeout, absl::Seconds(30));
  EXPECT_THAT(config->hooks[3].profiles, ElementsAre("reporting", "app"));

  for (const auto& [name, number] : std::vector<std::pair<std::string, int>>{{"SIGHUP", SIGHUP},
                                                                             {"hup", SIGHUP},
                                                                             {"SigTerm", SIGTERM},
                                                                             {"USR2", SIGUSR2},
                                                                             {"10", 10},
                                                                             {"'31'", 31}}) {
    SCOPED_TRACE(name);
    const auto parsed = parseConfig(
        std::string(kProfiles) + "hooks: [{signal: {signal: " + name + ", process: app}}]\n",
        fakeEnvironment(minimalEnvironment()));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_EQ(parsed->hooks[0].signal, number);
  }
  // No hooks is the default; an empty list or a null is the same.
  for (const char* none : {"", "hooks: []\n", "hooks:\n"}) {
    const auto parsed =
        parseConfig(std::string(kProfiles) + none, fakeEnvironment(minimalEnvironment()));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_TRUE(parsed->hooks.empty());
  }
}

}  // namespace
}  // namespace credsync::config
