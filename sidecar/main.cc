// credsync: keeps a pod supplied with Alibaba Cloud managed RAM credentials.
// This file is only the command line, wiring and signal handling; everything
// else lives in libraries the tests link.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "sidecar/app/sidecar.h"
#include "sidecar/common/flags.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/signals.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"

namespace {

using namespace credsync;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;
// After SIGTERM, a fetch in flight gets this long to finish; the file is
// consistent at every instant, so exiting past it loses nothing.
constexpr absl::Duration kShutdownGrace = absl::Seconds(2);

constexpr char kUsage[] =
    "usage: credsync <command> [flags]\n"
    "  run       --config FILE [--output-dir DIR] [--log-level LEVEL]   the sidecar\n"
    "  sync      --once --config FILE [--timeout 60s] [--output-dir DIR] fetch, write, exit\n"
    "  validate  --config FILE                                           check a config\n"
    "  version                                                           print the version\n"
    "exit codes: 0 success, 1 failure, 2 bad input (config, flags, environment)\n";

int badInput(const std::string& message) {
  std::fprintf(stderr, "credsync: %s\n", message.c_str());
  return kExitBadInput;
}

struct Loaded {
  config::Config config;
  ParsedFlags flags;
};

// Parses the command's flags and the config they name; on bad input prints
// one line and returns nullopt with *exit_code set.
std::optional<Loaded> load(const std::vector<std::string>& args, std::vector<FlagSpec> specs,
                           int* exit_code) {
  specs.push_back({"config", true});
  specs.push_back({"output-dir", true});
  specs.push_back({"log-level", true});
  absl::StatusOr<ParsedFlags> flags = parseFlags(args, specs);
  if (!flags.ok()) {
    *exit_code = badInput(std::string(flags.status().message()));
    return std::nullopt;
  }
  if (!flags->positional.empty()) {
    *exit_code = badInput(absl::StrCat("unexpected argument '", flags->positional[0], "'"));
    return std::nullopt;
  }
  if (!flags->has("config")) {
    *exit_code = badInput("--config: required (a YAML or JSON file)");
    return std::nullopt;
  }
  config::Overrides overrides;
  if (flags->has("output-dir"))
    overrides.emplace_back("output.directory", flags->values["output-dir"]);
  if (flags->has("log-level")) overrides.emplace_back("log.level", flags->values["log-level"]);
  absl::StatusOr<config::Config> config =
      config::loadConfigFile(flags->values["config"], config::processEnvironment(), overrides);
  if (!config.ok()) {
    *exit_code = badInput(std::string(config.status().message()));
    return std::nullopt;
  }
  log::setLevel(config->log_level);
  return Loaded{*std::move(config), *std::move(flags)};
}

int validateCommand(const std::vector<std::string>& args) {
  int exit_code = kExitOk;
  auto loaded = load(args, {}, &exit_code);
  if (!loaded) return exit_code;
  const config::Config& config = loaded->config;
  std::vector<std::string> profiles;
  for (const auto& profile : config.profiles) profiles.push_back(profile.name);
  std::printf("config OK: identity %s, %zu profile(s) [%s], KMS %s, output %s\n",
              config.identity.type == config::IdentityType::kOidc ? "oidc" : "static",
              config.profiles.size(), absl::StrJoin(profiles, ", ").c_str(),
              absl::StrJoin(config.kms.endpoints, ", ").c_str(), config.output.directory.c_str());
  return kExitOk;
}

int syncCommand(const std::vector<std::string>& args) {
  int exit_code = kExitOk;
  auto loaded = load(args, {{"once", false}, {"timeout", true}}, &exit_code);
  if (!loaded) return exit_code;
  if (!loaded->flags.has("once")) return badInput("sync: --once is required");
  absl::Duration timeout = absl::Seconds(60);
  if (loaded->flags.has("timeout") &&
      (!absl::ParseDuration(loaded->flags.values["timeout"], &timeout) ||
       timeout <= absl::ZeroDuration())) {
    return badInput("--timeout: must be a positive duration such as 30s or 2m");
  }
  RealTimeSource time_source;
  auto sidecar = app::Sidecar::create(loaded->config, time_source);
  if (!sidecar.ok()) {
    log::error("cannot start", {{"error", sidecar.status()}});
    return kExitFailed;
  }
  sync::SyncEngine& engine = (*sidecar)->engine();
  // Stop early when nothing unwritten can still succeed by retrying.
  const bool written = (*sidecar)->runner().runUntil(
      [&] { return engine.allWritten() || !engine.anyRetryablePending(); }, timeout);
  if (written && engine.allWritten()) {
    log::info("sync complete", {{"generation", static_cast<long long>(engine.generation())}});
    return kExitOk;
  }
  for (const sync::ProfileStatus& status : engine.status()) {
    if (!status.written) {
      log::error("profile not written", {{"profile", status.name}, {"error", status.last_error}});
    }
  }
  return kExitFailed;
}

int runCommand(const std::vector<std::string>& args) {
  int exit_code = kExitOk;
  auto loaded = load(args, {}, &exit_code);
  if (!loaded) return exit_code;

  // Before any thread exists, so that only waitForStopSignal() sees them.
  blockStopSignals();

  RealTimeSource time_source;
  auto sidecar = app::Sidecar::create(loaded->config, time_source);
  if (!sidecar.ok()) {
    log::error("cannot start", {{"error", sidecar.status()}});
    return kExitFailed;
  }
  (*sidecar)->runner().start();
  log::info("running");
  log::info("stopping", {{"signal", waitForStopSignal()}});
  absl::Notification stopped;
  std::thread stopper([&] {
    (*sidecar)->runner().stop();
    stopped.Notify();
  });
  if (!stopped.WaitForNotificationWithTimeout(kShutdownGrace)) {
    log::warn("a fetch is still in flight; exiting without waiting for it");
    std::fflush(stderr);
    _exit(kExitOk);
  }
  stopper.join();
  log::info("stopped");
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? kExitBadInput : kExitOk;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "version" || command == "--version") {
    std::printf("credsync %s\n", CREDSYNC_VERSION);
    return kExitOk;
  }
  if (command == "run") return runCommand(args);
  if (command == "sync") return syncCommand(args);
  if (command == "validate") return validateCommand(args);
  std::fprintf(stderr, "credsync: unknown command '%s'\n%s", command.c_str(), kUsage);
  return kExitBadInput;
}
