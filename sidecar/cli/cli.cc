#include "sidecar/cli/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "sidecar/app/client_keys.h"
#include "sidecar/app/sidecar.h"
#include "sidecar/cli/injector_command.h"
#include "sidecar/client/control_client.h"
#include "sidecar/client/published_check.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/signals.h"
#include "sidecar/common/time_source.h"
#include "sidecar/server/pod_token.h"

namespace credsync::cli {
namespace {

// After SIGTERM, a fetch in flight gets this long to finish; the file is
// consistent at every instant, so exiting past it loses nothing.
constexpr absl::Duration kShutdownGrace = absl::Seconds(2);

struct CommandUsage {
  const char* name;
  const char* text;  // its lines of the usage, each indented by two spaces
};
constexpr CommandUsage kCommands[] = {
    {"run",
     "  run       --config FILE [--output-dir DIR] [--log-level LEVEL]   the sidecar\n"
     "            (run, sync, validate: --config-env VAR reads the config from $VAR, laid\n"
     "            over --config's when both are given)\n"},
    {"sync",
     "  sync      --once --config FILE [--timeout 60s] [--output-dir DIR] fetch, write, exit\n"},
    {"validate",
     "  validate  --config FILE                                           check a config\n"},
    {"refresh",
     "  refresh   --profile P --failed-key-id ID | --failed-version-id V [--reason TEXT] "
     "[--timeout 35s]\n"
     "            [--socket PATH | --config FILE | --address HOST:PORT --token-file F]\n"
     "            ask the running sidecar for a newer key than ID; exit 0 a newer key is\n"
     "            in the file, 1 failed (KMS unreachable, timeout), 2 bad input or unknown\n"
     "            profile, 3 rate-limited, 4 KMS still returns ID\n"},
    {"probe",
     "  probe     live|ready [--socket PATH | --config FILE] [--timeout 2s]\n"
     "            exec probe through grpc.health.v1; exit 0 when serving, 1 otherwise\n"},
    {"check",
     "  check     [--socket PATH | --config FILE] [--file PATH] [--timeout 5s] [--every 60s]\n"
     "            is credsync ready, and is what it published on disk? (GetStatus, then\n"
     "            credentials.ini, default $ALIBABA_CLOUD_CREDENTIALS_FILE, and generic\n"
     "            files); exit 0 yes, 1 no; with --every, a line each period until SIGTERM\n"},
    {"version",
     "  version                                                           print the version\n"},
    {"injector",
     "  injector  review|serve [flags]                                    the admission webhook\n"
     "            that injects credsync into pods (credsync injector --help)\n"},
};
constexpr char kExitCodes[] =
    "exit codes: 0 success, 1 failure, 2 bad input (config, flags, environment)\n";

bool isCommand(const std::string& name) {
  return std::any_of(std::begin(kCommands), std::end(kCommands),
                     [&](const CommandUsage& c) { return name == c.name; });
}

// One run of the command line: the commands, writing to `io_` and reading
// the environment through `env_`.
class CommandLine {
 public:
  CommandLine(const config::Environment& env, Io io) : env_(env), io_(io) {}

  int run(std::vector<std::string> args) {
    if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
      const bool for_command = args.size() > 1;
      std::fputs(usage(for_command ? args[1] : "").c_str(), args.empty() ? io_.err : io_.out);
      return args.empty() ? kExitBadInput : kExitOk;
    }
    const std::string command = args[0];
    args.erase(args.begin());
    // Its subcommands have usages of their own.
    if (command == "injector") {
      return runInjectorCommand(args, io_, stdin, [](const ServeInvocation& invocation) {
        RealTimeSource time_source;
        return injector::serveInjector(invocation.options, invocation.settings, time_source);
      });
    }
    // `credsync COMMAND --help` (anywhere among its flags) prints that
    // command's usage, before its flags are parsed.
    if (isCommand(command) && std::any_of(args.begin(), args.end(), [](const std::string& a) {
          return a == "--help" || a == "-h";
        })) {
      std::fputs(usage(command).c_str(), io_.out);
      return kExitOk;
    }
    if (command == "version" || command == "--version") {
      std::fprintf(io_.out, "credsync %s\n", CREDSYNC_VERSION);
      return kExitOk;
    }
    if (command == "run") return runCommand(args);
    if (command == "sync") return syncCommand(args);
    if (command == "validate") return validateCommand(args);
    if (command == "refresh") return refreshCommand(args);
    if (command == "probe") return probeCommand(args);
    if (command == "check") return checkCommand(args);
    std::fprintf(io_.err, "credsync: unknown command '%s'\n%s", command.c_str(), usage().c_str());
    return kExitBadInput;
  }

 private:
  int badInput(const std::string& message) {
    std::fprintf(io_.err, "credsync: %s\n", message.c_str());
    return kExitBadInput;
  }

  struct Loaded {
    config::Config config;
    app::ClientKeys client_keys;  // of config.kms.instances
    ParsedFlags flags;
  };

  // Parses the command's flags and the config they name; on bad input prints
  // one line and returns nullopt with *exit_code set.
  std::optional<Loaded> load(const std::vector<std::string>& args, std::vector<FlagSpec> specs,
                             int* exit_code) {
    specs.push_back({"config", true});
    specs.push_back({"config-env", true});
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
    if (!flags->has("config") && !flags->has("config-env")) {
      *exit_code = badInput("--config: required (a YAML or JSON file), or --config-env VAR");
      return std::nullopt;
    }
    for (const char* flag : {"config", "config-env"}) {
      if (flags->has(flag) && flags->values[flag].empty()) {
        *exit_code = badInput(absl::StrCat("--", flag, ": must not be empty"));
        return std::nullopt;
      }
    }
    config::Overrides overrides;
    if (flags->has("output-dir"))
      overrides.emplace_back("output.directory", flags->values["output-dir"]);
    if (flags->has("log-level")) overrides.emplace_back("log.level", flags->values["log-level"]);
    absl::StatusOr<config::Config> config = config::loadConfigSources(
        flags->values["config"], flags->values["config-env"], env_, overrides);
    if (!config.ok()) {
      *exit_code = badInput(std::string(config.status().message()));
      return std::nullopt;
    }
    // A client key that cannot be opened (missing file, wrong password) is bad
    // input like the config that names it: caught here, before anything runs.
    // The sidecar signs with these very keys: they are opened only here.
    absl::StatusOr<app::ClientKeys> client_keys = app::openClientKeys(config->kms, env_);
    if (!client_keys.ok()) {
      *exit_code = badInput(std::string(client_keys.status().message()));
      return std::nullopt;
    }
    log::setLevel(config->log_level);
    return Loaded{*std::move(config), *std::move(client_keys), *std::move(flags)};
  }

  int validateCommand(const std::vector<std::string>& args) {
    int exit_code = kExitOk;
    auto loaded = load(args, {}, &exit_code);
    if (!loaded) return exit_code;
    std::fprintf(io_.out, "%s\n", validateSummary(loaded->config).c_str());
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
    auto sidecar =
        app::Sidecar::create(loaded->config, std::move(loaded->client_keys), time_source);
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
        // No attempt finished yet (startup jitter, a slow upstream): say so
        // rather than report the OK of no error.
        log::error("profile not written",
                   {{"profile", status.name},
                    {"error", status.last_error.ok() ? absl::DeadlineExceededError(
                                                           "no fetch finished within --timeout")
                                                     : status.last_error}});
      }
    }
    return kExitFailed;
  }

  std::optional<client::ControlTarget> controlTarget(const ParsedFlags& flags, int* exit_code) {
    absl::StatusOr<client::ControlTarget> target = resolveControlTarget(flags, env_);
    if (!target.ok()) {
      *exit_code = badInput(std::string(target.status().message()));
      return std::nullopt;
    }
    return *std::move(target);
  }

  std::optional<absl::Duration> durationFlag(const ParsedFlags& flags, const std::string& name,
                                             absl::Duration fallback, int* exit_code) {
    absl::Duration value = fallback;
    if (flags.has(name) && (!absl::ParseDuration(flags.values.at(name), &value) ||
                            value <= absl::ZeroDuration() || value > absl::Hours(1))) {
      *exit_code =
          badInput(absl::StrCat("--", name, ": must be a duration such as 30s (at most 1h)"));
      return std::nullopt;
    }
    return value;
  }

  int refreshCommand(const std::vector<std::string>& args) {
    absl::StatusOr<ParsedFlags> flags = parseFlags(args, {{"profile"},
                                                          {"failed-key-id"},
                                                          {"failed-version-id"},
                                                          {"reason"},
                                                          {"timeout"},
                                                          {"socket"},
                                                          {"config"},
                                                          {"address"},
                                                          {"token-file"}});
    if (!flags.ok()) return badInput(std::string(flags.status().message()));
    if (!flags->positional.empty()) {
      return badInput(absl::StrCat("unexpected argument '", flags->positional[0], "'"));
    }
    if (!flags->has("profile") || flags->values["profile"].empty()) {
      return badInput("--profile: required (the credentials.ini profile to refresh)");
    }
    if (!flags->has("failed-key-id") && !flags->has("failed-version-id")) {
      return badInput(
          "--failed-key-id: required (the AccessKey id a cloud API rejected; for a generic "
          "profile, --failed-version-id)");
    }
    int exit_code = kExitOk;
    const std::optional<absl::Duration> timeout =
        durationFlag(*flags, "timeout", absl::Seconds(35), &exit_code);
    if (!timeout) return exit_code;
    const std::optional<client::ControlTarget> target = controlTarget(*flags, &exit_code);
    if (!target) return exit_code;

    credsync::v1::RefreshRequest request;
    request.set_profile(flags->values["profile"]);
    request.set_failed_access_key_id(flags->values["failed-key-id"]);
    request.set_failed_version_id(flags->values["failed-version-id"]);
    request.set_reason(flags->has("reason") ? flags->values["reason"] : "credsync refresh (CLI)");
    std::optional<absl::Duration> retry_after;
    RealTimeSource time_source;
    absl::StatusOr<credsync::v1::RefreshResponse> response =
        client::makeControlClient(*target, time_source)->refresh(request, *timeout, &retry_after);
    if (response.ok()) {
      std::fprintf(io_.out, "profile %s: %s %s, generation %llu (%s)\n", request.profile().c_str(),
                   response->access_key_id().empty() ? "version" : "AccessKey",
                   response->access_key_id().empty() ? response->version_id().c_str()
                                                     : response->access_key_id().c_str(),
                   static_cast<unsigned long long>(response->generation()),
                   response->outcome() == credsync::v1::RefreshResponse::OUTCOME_REFRESHED
                       ? "refreshed"
                       : "already current");
      return kExitOk;
    }
    std::fprintf(io_.err, "credsync: refresh: %s: %s\n",
                 absl::StatusCodeToString(response.status().code()).c_str(),
                 std::string(response.status().message()).c_str());
    return refreshExitCode(response.status().code());
  }

  int probeCommand(const std::vector<std::string>& args) {
    absl::StatusOr<ParsedFlags> flags = parseFlags(args, {{"socket"}, {"config"}, {"timeout"}});
    if (!flags.ok()) return badInput(std::string(flags.status().message()));
    if (flags->positional.size() != 1 ||
        (flags->positional[0] != "live" && flags->positional[0] != "ready")) {
      return badInput("probe: say which probe: credsync probe live|ready");
    }
    int exit_code = kExitOk;
    const std::optional<absl::Duration> timeout =
        durationFlag(*flags, "timeout", absl::Seconds(2), &exit_code);
    if (!timeout) return exit_code;
    const std::optional<client::ControlTarget> target = controlTarget(*flags, &exit_code);
    if (!target) return exit_code;
    const bool live = flags->positional[0] == "live";
    RealTimeSource time_source;
    absl::StatusOr<bool> serving =
        client::makeControlClient(*target, time_source)->healthy(live ? "liveness" : "", *timeout);
    if (!serving.ok()) {
      std::fprintf(io_.err, "credsync: probe %s: %s\n", flags->positional[0].c_str(),
                   std::string(serving.status().message()).c_str());
      return kExitFailed;
    }
    std::fprintf(io_.out, "%s: %s\n", flags->positional[0].c_str(),
                 *serving ? "serving" : "not serving");
    return *serving ? kExitOk : kExitFailed;
  }

  int checkCommand(const std::vector<std::string>& args) {
    absl::StatusOr<ParsedFlags> flags = parseFlags(
        args,
        {{"socket"}, {"config"}, {"address"}, {"token-file"}, {"file"}, {"timeout"}, {"every"}});
    if (!flags.ok()) return badInput(std::string(flags.status().message()));
    if (!flags->positional.empty()) {
      return badInput(absl::StrCat("unexpected argument '", flags->positional[0], "'"));
    }
    int exit_code = kExitOk;
    const std::optional<absl::Duration> timeout =
        durationFlag(*flags, "timeout", absl::Seconds(5), &exit_code);
    if (!timeout) return exit_code;
    std::optional<absl::Duration> every;
    if (flags->has("every")) {
      every = durationFlag(*flags, "every", absl::Minutes(1), &exit_code);
      if (!every) return exit_code;
    }
    const std::optional<client::ControlTarget> target = controlTarget(*flags, &exit_code);
    if (!target) return exit_code;
    absl::StatusOr<std::string> file = credentialsFileToCheck(*flags, env_, *target);
    if (!file.ok()) return badInput(std::string(file.status().message()));

    if (every) blockStopSignals();
    RealTimeSource time_source;
    std::unique_ptr<client::ControlClient> control =
        client::makeControlClient(*target, time_source);
    for (;;) {
      absl::StatusOr<credsync::v1::GetStatusResponse> status = control->status(*timeout);
      absl::StatusOr<std::string> checked =
          status.ok() ? client::checkPublished(*status, *file) : status.status();
      if (checked.ok()) {
        std::fprintf(io_.out, "check: %s\n", checked->c_str());
      } else {
        std::fprintf(io_.err, "credsync: check: %s\n",
                     std::string(checked.status().message()).c_str());
      }
      std::fflush(io_.out);
      if (!every) return checked.ok() ? kExitOk : kExitFailed;
      if (waitForStopSignalFor(*every)) return kExitOk;
    }
  }

  int runCommand(const std::vector<std::string>& args) {
    int exit_code = kExitOk;
    auto loaded = load(args, {}, &exit_code);
    if (!loaded) return exit_code;

    // Before any thread exists, so that only waitForStopSignal() sees them.
    blockStopSignals();

    RealTimeSource time_source;
    auto sidecar =
        app::Sidecar::create(loaded->config, std::move(loaded->client_keys), time_source);
    if (!sidecar.ok()) {
      log::error("cannot start", {{"error", sidecar.status()}});
      return kExitFailed;
    }
    if (absl::Status serving = (*sidecar)->startServing(); !serving.ok()) {
      log::error("cannot start", {{"error", serving}});
      return kExitFailed;
    }
    (*sidecar)->runner().start();
    log::info("running");
    log::info("stopping", {{"signal", waitForStopSignal()}});
    credsync::Notification stopped;
    std::thread stopper([&] {
      // Calls in flight get a second; Watch streams end with CANCELLED.
      (*sidecar)->stop(absl::Seconds(1));
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

  const config::Environment& env_;
  const Io io_;
};

}  // namespace

std::string usage(const std::string& only_command) {
  const bool one = isCommand(only_command);
  std::string text = "usage: credsync <command> [flags]\n";
  for (const CommandUsage& command : kCommands) {
    if (!one || only_command == command.name) text += command.text;
  }
  return text + kExitCodes;
}

int runCommandLine(std::vector<std::string> args, const config::Environment& env, Io io) {
  return CommandLine(env, io).run(std::move(args));
}

int refreshExitCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kResourceExhausted:
      return kExitRateLimited;
    case absl::StatusCode::kFailedPrecondition:
      return kExitUnchanged;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kUnauthenticated:
      return kExitBadInput;
    default:
      return kExitFailed;
  }
}

absl::StatusOr<client::ControlTarget> resolveControlTarget(const ParsedFlags& flags,
                                                           const config::Environment& env) {
  client::ControlTarget target;
  target.socket_path = kDefaultSocket;
  std::optional<config::ClientSettings> config;
  if (flags.has("config")) {
    absl::StatusOr<config::ClientSettings> loaded =
        config::loadClientSettings(flags.values.at("config"), env);
    if (!loaded.ok()) return absl::InvalidArgumentError(loaded.status().message());
    config = *std::move(loaded);
    target.socket_path = config->control.socket_path;
  }
  if (flags.has("socket")) target.socket_path = flags.values.at("socket");
  if (flags.has("address")) {
    target.tcp_address = flags.values.at("address");
    std::string token_file = flags.has("token-file") ? flags.values.at("token-file") : "";
    if (token_file.empty() && config) {
      token_file = config->control.token_file.empty()
                       ? absl::StrCat(config->output.directory, "/control-token")
                       : config->control.token_file;
    }
    if (token_file.empty()) {
      return absl::InvalidArgumentError(
          "--address: needs --token-file (or --config) for the pod token");
    }
    absl::StatusOr<SecretString> token = server::readPodToken(token_file);
    if (!token.ok()) return absl::InvalidArgumentError(token.status().message());
    target.token = *std::move(token);
  }
  return target;
}

absl::StatusOr<std::string> credentialsFileToCheck(const ParsedFlags& flags,
                                                   const config::Environment& env,
                                                   const client::ControlTarget& target) {
  std::string file;
  if (flags.has("file")) {
    file = flags.values.at("file");
    if (file.empty()) return absl::InvalidArgumentError("--file: must not be empty");
    return file;
  }
  if (std::optional<std::string> from_env = env("ALIBABA_CLOUD_CREDENTIALS_FILE");
      from_env && !from_env->empty()) {
    return *from_env;
  }
  if (flags.has("config")) {
    absl::StatusOr<config::ClientSettings> settings =
        config::loadClientSettings(flags.values.at("config"), env);
    if (!settings.ok()) return absl::InvalidArgumentError(settings.status().message());
    return absl::StrCat(settings->output.directory, "/credentials.ini");
  }
  const size_t slash = target.socket_path.rfind('/');
  return absl::StrCat(slash == std::string::npos ? "." : target.socket_path.substr(0, slash),
                      "/credentials.ini");
}

std::string validateSummary(const config::Config& config) {
  std::vector<std::string> profiles;
  for (const auto& profile : config.profiles) {
    profiles.push_back(profile.kind == config::ProfileKind::kGeneric
                           ? absl::StrCat(profile.name, " (generic)")
                           : profile.name);
  }
  // In the order fetches try them: instances, then OpenAPI endpoints.
  std::vector<std::string> kms;
  for (const auto& instance : config.kms.instances) {
    kms.push_back(absl::StrCat(instance.endpoint, " (instance)"));
  }
  kms.insert(kms.end(), config.kms.endpoints.begin(), config.kms.endpoints.end());
  // Without an OpenAPI endpoint no RAM identity is used (the sidecar runs with none).
  const char* identity =
      config.kms.endpoints.empty() ? "none" : config::identityTypeName(config.identity.type);
  // The STS endpoint only where it is called: the OIDC identity.
  const std::string sts =
      !config.kms.endpoints.empty() && config.identity.type == config::IdentityType::kOidc
          ? absl::StrCat(", STS ", config.identity.sts_endpoint)
          : "";
  return absl::StrCat("config OK: identity ", identity, ", ", config.profiles.size(),
                      " profile(s) [", absl::StrJoin(profiles, ", "), "], KMS ",
                      absl::StrJoin(kms, ", "), sts, ", output ", config.output.directory);
}

}  // namespace credsync::cli
