#include "sidecar/cli/injector_command.h"

#include <stdio.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/fake_environment.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"
#include "tests/unit/cli/captured_run.h"

namespace credsync::cli {
namespace {

using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using ::credsync::testing::Result;

// Runs `credsync ARGS` (through runCommandLine when `top`, else the
// injector command directly with `input` as stdin and `serve`).
Result run(std::vector<std::string> args, const std::string& input = "",
           const ServeFunction& serve = nullptr, bool top = false) {
  // fmemopen refuses an empty buffer: an empty stdin is /dev/null.
  std::string text = input;
  FILE* in = text.empty() ? fopen("/dev/null", "r") : fmemopen(text.data(), text.size(), "r");
  const Result result = ::credsync::testing::captureRun([&](Io io) {
    return top ? runCommandLine(std::move(args), credsync::testing::fakeEnvironment(), io)
               : runInjectorCommand(args, io, in, serve);
  });
  fclose(in);
  return result;
}

std::string fixture(const std::string& name) {
  return std::string(CREDSYNC_INJECTOR_FIXTURES) + "/" + name + ".review.json";
}

// Verifies the help texts: the injector's, each subcommand's, and the
// injector line in `credsync --help`.
TEST(InjectorCommandTest, Help) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"injector", "--help"},
                                               {"injector", "review", "--help"},
                                               {"injector", "serve", "--help"},
                                               {"injector", "serve", "--bogus", "-h"}}) {
    const Result result = run(args, "", nullptr, /*top=*/true);
    EXPECT_EQ(result.code, kExitOk) << args[1];
    EXPECT_EQ(result.err, "");
    EXPECT_THAT(result.out, HasSubstr("--image IMAGE"));
  }
  EXPECT_THAT(run({"injector", "--help"}, "", nullptr, true).out,
              StartsWith("usage: credsync injector <review|serve>"));
  EXPECT_THAT(run({"injector", "review", "--help"}, "", nullptr, true).out,
              StartsWith("usage: credsync injector review"));
  EXPECT_THAT(run({"injector", "serve", "--help"}, "", nullptr, true).out,
              StartsWith("usage: credsync injector serve"));
  const Result top = run({"--help"}, "", nullptr, true);
  EXPECT_EQ(top.code, kExitOk);
  EXPECT_THAT(top.out, HasSubstr("\n  injector  review|serve"));
  const Result none = run({"injector"}, "", nullptr, true);
  EXPECT_EQ(none.code, kExitBadInput);
  const Result unknown = run({"injector", "mutate"}, "", nullptr, true);
  EXPECT_EQ(unknown.code, kExitBadInput);
  EXPECT_THAT(unknown.err, StartsWith("credsync: injector: unknown command 'mutate'\n"));
}

// Verifies review answers a fixture from --file and from stdin alike.
TEST(InjectorCommandTest, ReviewFileAndStdin) {
  const std::vector<std::string> flags = {"review",
                                          "--image",
                                          "credsync:1",
                                          "--kms-region",
                                          "cn-hangzhou",
                                          "--oidc-provider-arn",
                                          "acs:ram::1:oidc-provider/p"};
  std::vector<std::string> with_file = flags;
  with_file.insert(with_file.end(), {"--file", fixture("deployment")});
  const Result from_file = run(with_file);
  ASSERT_EQ(from_file.code, kExitOk) << from_file.err;
  const nlohmann::json answer = nlohmann::json::parse(from_file.out, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << from_file.out;
  EXPECT_EQ(answer["response"]["allowed"], true);
  EXPECT_EQ(answer["response"]["patchType"], "JSONPatch");
  EXPECT_EQ(answer["response"]["uid"], "7b1e9a2c-0d4f-4c55-9a51-5d1e3f0c2a01");

  const Result from_stdin = run(flags, credsync::testing::readFile(fixture("deployment")));
  EXPECT_EQ(from_stdin.code, kExitOk) << from_stdin.err;
  EXPECT_EQ(from_stdin.out, from_file.out);
}

// Verifies a denial is an answer (exit 0), a malformed review or bad flag
// is exit 2 with one line.
TEST(InjectorCommandTest, ReviewExitCodes) {
  // No --oidc-provider-arn: the deployment fixture's RRSA route is denied.
  const Result denied =
      run({"review", "--image=x", "--kms-region=cn-hangzhou", "--file", fixture("deployment")});
  EXPECT_EQ(denied.code, kExitOk);
  EXPECT_THAT(denied.out, HasSubstr("\"allowed\":false"));
  EXPECT_THAT(denied.out, HasSubstr("credsync.io/oidc-provider-arn: required"));

  const Result malformed = run({"review", "--image=x"}, "{\"kind\":\"AdmissionReview\"}");
  EXPECT_EQ(malformed.code, kExitBadInput);
  EXPECT_EQ(malformed.err,
            "credsync: injector: malformed AdmissionReview: apiVersion must be "
            "admission.k8s.io/v1\n");
  EXPECT_EQ(malformed.out, "");

  EXPECT_EQ(run({"review", "--file", fixture("deployment")}).err,
            "credsync: injector: --image: required (the credsync image injected into pods)\n");
  EXPECT_EQ(run({"review", "--image=x", "--file", "/nonexistent/review.json"}).code, kExitBadInput);
  EXPECT_EQ(run({"review", "--image=x", "--cpu-request=lots"}).err,
            "credsync: injector: --cpu-request: must be a Kubernetes quantity such as 10m, 0.5, "
            "32Mi or 1Gi\n");
  const Result oversized = run({"review", "--image=x"}, std::string((4 << 20) + 1, ' '));
  EXPECT_EQ(oversized.code, kExitBadInput);
  EXPECT_EQ(oversized.err, "credsync: injector: stdin: larger than 4194304 bytes\n");
  EXPECT_EQ(run({"review", "--image=x"}, "").err,
            "credsync: injector: malformed AdmissionReview: not valid JSON\n");
  EXPECT_EQ(run({"review", "--image=x", "extra"}).err,
            "credsync: injector: unexpected argument 'extra'\n");
}

// Verifies serve's flags, defaults and errors.
TEST(InjectorCommandTest, ParseServeFlags) {
  absl::StatusOr<ServeInvocation> serve = parseServeFlags(
      {"--image=credsync:1", "--cert-file=/tls/tls.crt", "--key-file=/tls/tls.key"});
  ASSERT_TRUE(serve.ok()) << serve.status();
  EXPECT_EQ(serve->options.listen_address, "0.0.0.0:8443");
  EXPECT_EQ(serve->options.http_address, "0.0.0.0:9808");
  EXPECT_EQ(serve->options.cert_check_interval, absl::Seconds(1));
  EXPECT_EQ(serve->options.log_level, "info");
  EXPECT_EQ(serve->settings.image, "credsync:1");

  serve = parseServeFlags({"--image=credsync:1", "--cert-file=/c", "--key-file=/k",
                           "--listen=127.0.0.1:0", "--http-address=[::]:9901",
                           "--cert-check-interval=250ms", "--log-level=debug",
                           "--default-mode=classic", "--kms-region=cn-beijing"});
  ASSERT_TRUE(serve.ok()) << serve.status();
  EXPECT_EQ(serve->options.listen_address, "127.0.0.1:0");
  EXPECT_EQ(serve->options.http_address, "[::]:9901");
  EXPECT_EQ(serve->options.cert_check_interval, absl::Milliseconds(250));
  EXPECT_EQ(serve->options.log_level, "debug");
  EXPECT_EQ(serve->settings.default_mode, injector::SidecarMode::kClassic);
  EXPECT_EQ(serve->settings.kms_region, "cn-beijing");

  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--cert-file=/c", "--key-file=/k"}, "--image: "},
      {{"--image=x", "--key-file=/k"}, "--cert-file: required"},
      {{"--image=x", "--cert-file=/c"}, "--key-file: required"},
      {{"--image=x", "--cert-file=/c", "--key-file="}, "--key-file: required"},
      {{"--image=x", "--cert-file=/c", "--key-file=/k", "--listen=8443"}, "--listen: "},
      {{"--image=x", "--cert-file=/c", "--key-file=/k", "--http-address=a:b"}, "--http-address: "},
      {{"--image=x", "--cert-file=/c", "--key-file=/k", "--cert-check-interval=0s"},
       "--cert-check-interval: "},
      {{"--image=x", "--cert-file=/c", "--key-file=/k", "--log-level=loud"}, "--log-level: "},
      {{"--image=x", "--cert-file=/c", "--key-file=/k", "--file=x"}, "--file: unknown flag"},
  };
  for (const auto& [args, prefix] : bad) {
    EXPECT_THAT(parseServeFlags(args),
                StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(prefix)))
        << ::testing::PrintToString(args);
  }
}

// Verifies serve hands its parsed flags to the server function, and says so
// when none is wired in.
TEST(InjectorCommandTest, ServeDispatch) {
  ServeInvocation seen;
  const Result served = run({"serve", "--image=x", "--cert-file=/c", "--key-file=/k"}, "",
                            [&](const ServeInvocation& invocation) {
                              seen = invocation;
                              return 7;
                            });
  EXPECT_EQ(served.code, 7);
  EXPECT_EQ(seen.options.cert_file, "/c");
  EXPECT_EQ(seen.settings.image, "x");
  const Result bad = run({"serve", "--image=x"}, "", [](const ServeInvocation&) { return 0; });
  EXPECT_EQ(bad.code, kExitBadInput);
  EXPECT_THAT(bad.err, StartsWith("credsync: injector: --cert-file: required"));
  EXPECT_EQ(run({"serve", "--image=x", "--cert-file=/c", "--key-file=/k"}).code, kExitFailed);
}

}  // namespace
}  // namespace credsync::cli
