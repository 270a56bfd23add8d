#include "sidecar/cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fake_environment.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"
#include "tests/common/test_config.h"
#include "tests/unit/cli/captured_run.h"

namespace credsync::cli {
namespace {

using ::credsync::testing::writeFile;

using ::credsync::testing::fakeEnvironment;

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using ::testing::AllOf;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

using ::credsync::testing::Result;

Result runCli(std::vector<std::string> args, const config::Environment& env = fakeEnvironment()) {
  return ::credsync::testing::captureRun(
      [&](Io io) { return runCommandLine(std::move(args), env, io); });
}

ParsedFlags flags(std::map<std::string, std::string> values) {
  ParsedFlags parsed;
  parsed.values = std::move(values);
  return parsed;
}

const std::vector<std::string> kCommands = {"run",   "sync",  "validate", "refresh",
                                            "probe", "check", "version"};

// Verifies `usage(command)` holds that command's lines only, and the full
// usage every command's, each with the exit codes.
TEST(CliTest, UsageOfOneCommandOrAll) {
  const std::string all = usage();
  for (const std::string& command : kCommands) {
    EXPECT_THAT(all, HasSubstr("\n  " + command + " "));
    const std::string one = usage(command);
    EXPECT_THAT(one, StartsWith("usage: credsync <command> [flags]\n  " + command + " "));
    EXPECT_THAT(one, HasSubstr("exit codes: 0 success"));
    for (const std::string& other : kCommands) {
      if (other != command) {
        EXPECT_THAT(one, Not(HasSubstr("\n  " + other + " "))) << command;
      }
    }
  }
  EXPECT_EQ(usage("frobnicate"), all);
}

// Verifies --help anywhere among a command's flags prints its usage on
// stdout and exits 0, before the flags are parsed; no arguments is bad input.
TEST(CliTest, HelpOnEveryCommand) {
  for (const std::string& command : kCommands) {
    for (const std::vector<std::string>& args : {std::vector<std::string>{command, "--help"},
                                                 {command, "--bogus", "-h"},
                                                 {"help", command}}) {
      const Result result = runCli(args);
      EXPECT_EQ(result.code, kExitOk) << args[0] << " " << args[1];
      EXPECT_EQ(result.out, usage(command));
      EXPECT_EQ(result.err, "");
    }
  }
  const Result none = runCli({});
  EXPECT_EQ(none.code, kExitBadInput);
  EXPECT_EQ(none.err, usage());
  const Result unknown = runCli({"frobnicate", "--help"});
  EXPECT_EQ(unknown.code, kExitBadInput);
  EXPECT_THAT(unknown.err, StartsWith("credsync: unknown command 'frobnicate'\nusage:"));
}

// Verifies `version` prints the version and bad flags are one line, exit 2.
TEST(CliTest, VersionAndBadFlags) {
  const Result version = runCli({"version"});
  EXPECT_EQ(version.code, kExitOk);
  EXPECT_THAT(version.out, StartsWith("credsync "));
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"validate"},
            "credsync: --config: required (a YAML or JSON file), or --config-env VAR\n"},
           {{"sync", "--once", "--config", "/nonexistent.yaml"},
            "credsync: config file /nonexistent.yaml: No such file or directory\n"},
           {{"probe"}, "credsync: probe: say which probe: credsync probe live|ready\n"},
           {{"refresh"},
            "credsync: --profile: required (the credentials.ini profile to refresh)\n"},
           {{"check", "--every", "2h"},
            "credsync: --every: must be a duration such as 30s (at most 1h)\n"},
           {{"check", "--address", "127.0.0.1:1"},
            "credsync: --address: needs --token-file (or --config) for the pod token\n"},
       }) {
    const Result result = runCli(args);
    EXPECT_EQ(result.code, kExitBadInput) << args[0];
    EXPECT_EQ(result.err, message);
    EXPECT_EQ(result.out, "");
  }
}

// Verifies `validate` prints the summary of a config file and exits 0.
TEST(CliTest, ValidatePrintsTheSummary) {
  TempDir dir("cli_validate");
  writeFile(dir.file("config.yaml"),
            "kms:\n  endpoints: [kms.cn-hangzhou.aliyuncs.com]\nprofiles:\n"
            "  - name: default\n    secret_name: acs/ram/user/app\n");
  const Result result =
      runCli({"validate", "--config", dir.file("config.yaml")},
             fakeEnvironment({{"ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"},
                              {"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/p"},
                              {"ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/t"}}));
  EXPECT_EQ(result.code, kExitOk) << result.err;
  EXPECT_THAT(result.out, StartsWith("config OK: identity oidc, 1 profile(s) [default], KMS "));
}

// Verifies a KMS instance's client key that does not open (a wrong
// password) is bad input like the config naming it: exit 2 and one line
// naming the instance, before anything runs.
TEST(CliTest, BadClientKeyIsOneLineOfBadInput) {
  TempDir dir("cli_client_key");
  writeFile(dir.file("config.yaml"),
            absl::StrCat("kms:\n  instances:\n"
                         "    - endpoint: kst-1.cryptoservice.kms.aliyuncs.com\n"
                         "      region_id: cn-hangzhou\n"
                         "      client_key_file: ",
                         CREDSYNC_ALIBABA_TESTDATA, "/java_sdk_client_key.json\n",
                         "      password_env: CK_PASSWORD\n",
                         "profiles:\n  - {name: app, secret_name: acs/ram/user/app}\n"));
  for (const char* command : {"validate", "sync"}) {
    std::vector<std::string> args = {command, "--config", dir.file("config.yaml")};
    if (std::string(command) == "sync") args.push_back("--once");
    const Result result = runCli(args, fakeEnvironment({{"CK_PASSWORD", "4321"}}));
    EXPECT_EQ(result.code, kExitBadInput) << command;
    EXPECT_THAT(result.err,
                AllOf(StartsWith("credsync: KMS instance "
                                 "https://kst-1.cryptoservice.kms.aliyuncs.com: client key "),
                      HasSubstr("wrong password"), EndsWith("\n")))
        << command;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << command;
  }
}

// Verifies the summary names generic profiles, lists instances before
// endpoints, and says identity none without an OpenAPI endpoint.
TEST(CliTest, ValidateSummaryOrderAndIdentity) {
  config::Config config = testing::configWithProfiles(
      {testing::profile("default", "a"),
       testing::genericProfile("db", "b", config::GenericFormat::kRaw, "db.txt")});
  config::KmsInstanceConfig instance;
  instance.endpoint = "kst-hzz1.cryptoservice.kms.aliyuncs.com";
  config.kms.instances = {instance};
  config.kms.endpoints = {"kms.cn-hangzhou.aliyuncs.com"};
  config.identity.sts_endpoint = "https://sts-vpc.cn-hangzhou.aliyuncs.com";
  config.output.directory = "/var/run/credsync";
  EXPECT_EQ(validateSummary(config),
            "config OK: identity oidc, 2 profile(s) [default, db (generic)], KMS "
            "kst-hzz1.cryptoservice.kms.aliyuncs.com (instance), kms.cn-hangzhou.aliyuncs.com, "
            "STS https://sts-vpc.cn-hangzhou.aliyuncs.com, output /var/run/credsync");
  // Another identity calls no STS endpoint of credsync's choosing.
  config.identity.type = config::IdentityType::kEcsRamRole;
  EXPECT_THAT(validateSummary(config), Not(HasSubstr("STS")));
  config.identity.type = config::IdentityType::kOidc;
  config.kms.endpoints.clear();
  EXPECT_THAT(validateSummary(config), StartsWith("config OK: identity none, "));
}

// Verifies each Refresh failure maps to its documented exit code.
TEST(CliTest, RefreshExitCodes) {
  EXPECT_EQ(refreshExitCode(absl::StatusCode::kOk), kExitOk);
  EXPECT_EQ(refreshExitCode(absl::StatusCode::kResourceExhausted), kExitRateLimited);
  EXPECT_EQ(refreshExitCode(absl::StatusCode::kFailedPrecondition), kExitUnchanged);
  EXPECT_EQ(refreshExitCode(absl::StatusCode::kInvalidArgument), kExitBadInput);
  EXPECT_EQ(refreshExitCode(absl::StatusCode::kNotFound), kExitBadInput);
  EXPECT_EQ(refreshExitCode(absl::StatusCode::kUnauthenticated), kExitBadInput);
  EXPECT_EQ(refreshExitCode(absl::StatusCode::kUnavailable), kExitFailed);
  EXPECT_EQ(refreshExitCode(absl::StatusCode::kDeadlineExceeded), kExitFailed);
}

// Verifies where the control API is found: the default socket, --socket,
// the config's socket, and TCP with the pod token from a file.
TEST(CliTest, ControlTargetResolution) {
  TempDir dir("cli_target");
  absl::StatusOr<client::ControlTarget> target = resolveControlTarget(flags({}), fakeEnvironment());
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->socket_path, kDefaultSocket);
  EXPECT_EQ(target->tcp_address, "");

  target = resolveControlTarget(flags({{"socket", "/s.sock"}}), fakeEnvironment());
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->socket_path, "/s.sock");

  writeFile(dir.file("config.yaml"),
            "kms:\n  region: cn-hangzhou\nprofiles:\n  - name: default\n    secret_name: s\n"
            "output:\n  directory: " +
                dir.path() + "\ncontrol:\n  socket: /run/x.sock\n");
  target = resolveControlTarget(flags({{"config", dir.file("config.yaml")}}), fakeEnvironment());
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->socket_path, "/run/x.sock");

  // --address takes the token from --token-file, or from the config's
  // generated file in its output directory.
  writeFile(dir.file("control-token"), "0123456789abcdef0123456789abcdef\n");
  target = resolveControlTarget(
      flags({{"address", "127.0.0.1:9901"}, {"config", dir.file("config.yaml")}}),
      fakeEnvironment());
  ASSERT_THAT(target, IsOk());
  EXPECT_EQ(target->tcp_address, "127.0.0.1:9901");
  EXPECT_EQ(target->token.reveal(), "0123456789abcdef0123456789abcdef");
  target = resolveControlTarget(
      flags({{"address", "127.0.0.1:9901"}, {"token-file", dir.file("control-token")}}),
      fakeEnvironment());
  ASSERT_THAT(target, IsOk());

  EXPECT_THAT(resolveControlTarget(flags({{"address", "127.0.0.1:9901"}}), fakeEnvironment()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--address: needs")));
  writeFile(dir.file("short-token"), "short\n");
  EXPECT_THAT(resolveControlTarget(
                  flags({{"address", "127.0.0.1:9901"}, {"token-file", dir.file("short-token")}}),
                  fakeEnvironment()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 16")));
  EXPECT_THAT(
      resolveControlTarget(flags({{"config", dir.file("missing.yaml")}}), fakeEnvironment()),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing.yaml")));
}

// Verifies which file `check` reads: --file, the SDKs' variable, the
// config's output directory, else beside the socket.
TEST(CliTest, CredentialsFileToCheck) {
  TempDir dir("cli_file");
  client::ControlTarget target;
  target.socket_path = "/var/run/credsync/credsync.sock";
  EXPECT_EQ(credentialsFileToCheck(flags({}), fakeEnvironment(), target).value(),
            "/var/run/credsync/credentials.ini");
  EXPECT_EQ(
      credentialsFileToCheck(
          flags({}), fakeEnvironment({{"ALIBABA_CLOUD_CREDENTIALS_FILE", "/app/c.ini"}}), target)
          .value(),
      "/app/c.ini");
  EXPECT_EQ(credentialsFileToCheck(
                flags({{"file", "/f.ini"}}),
                fakeEnvironment({{"ALIBABA_CLOUD_CREDENTIALS_FILE", "/app/c.ini"}}), target)
                .value(),
            "/f.ini");
  writeFile(dir.file("config.yaml"),
            "kms:\n  region: cn-hangzhou\nprofiles:\n  - name: default\n    secret_name: s\n"
            "output:\n  directory: /out\n");
  EXPECT_EQ(credentialsFileToCheck(flags({{"config", dir.file("config.yaml")}}), fakeEnvironment(),
                                   target)
                .value(),
            "/out/credentials.ini");
  EXPECT_THAT(credentialsFileToCheck(flags({{"file", ""}}), fakeEnvironment(), target),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--file: must not be empty")));
}

// Verifies `check` against nothing listening fails with one line, exit 1.
TEST(CliTest, CheckWithoutASidecarFails) {
  TempDir dir("cli_check");
  const Result result = runCli({"check", "--socket", dir.file("absent.sock"), "--timeout", "1s"});
  EXPECT_EQ(result.code, kExitFailed);
  EXPECT_THAT(result.err, AllOf(StartsWith("credsync: check: "), Not(HasSubstr("\n\n"))));
  EXPECT_EQ(result.out, "");
}

}  // namespace
}  // namespace credsync::cli
