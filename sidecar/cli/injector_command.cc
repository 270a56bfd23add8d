#include "sidecar/cli/injector_command.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "sidecar/common/files.h"
#include "sidecar/common/flags.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/name_rules.h"
#include "sidecar/injector/admission.h"

namespace credsync::cli {
namespace {

// The API server sends at most this much; the webhook refuses more (413).
constexpr size_t kMaxReviewBytes = 4 << 20;

constexpr char kInjectionFlagsUsage[] =
    "  injection flags (what is injected unless a pod's credsync.io/* annotations say otherwise):\n"
    "    --image IMAGE                 the credsync image (required)\n"
    "    --image-pull-policy P         Always|IfNotPresent|Never (IfNotPresent)\n"
    "    --default-mode M              auto|native|classic (auto: native iff --native-sidecars)\n"
    "    --native-sidecars BOOL        the cluster runs Kubernetes 1.29+ (true)\n"
    "    --kms-region REGION           kms.region of pods without credsync.io/region\n"
    "    --oidc-provider-arn ARN       the cluster's RRSA OIDC provider\n"
    "    --token-expiration-seconds N  the projected RRSA token's lifetime, 600..86400 (3600)\n"
    "    --run-as-user N, --run-as-group N   credsync's uid and gid (65532)\n"
    "    --fs-group N                  the pod fsGroup added when a pod has none (65532)\n"
    "    --cpu-request Q, --memory-request Q, --memory-limit Q, --cpu-limit Q\n"
    "                                  credsync's resources (10m, 32Mi, 128Mi, none)\n"
    "    --sync-once-timeout D         classic mode's credsync-init timeout (60s)\n"
    "    --sidecar-http-port N         credsync's probe and metrics port (9808)\n"
    "    --volume-size-limit Q         the in-memory volume's size limit (4Mi)\n"
    "    --local-api-port N            credsync's local API port on 127.0.0.1 in pods with\n"
    "                                  credsync.io/credentials-uri; not the probe port (8190)\n"
    "    --local-api-refetch-within D  local_api.refetch_within: SDKs re-fetch within this\n"
    "                                  after a change, whole seconds 10s..600s (60s)\n";

constexpr char kReviewUsage[] =
    "usage: credsync injector review [injection flags] [--file REVIEW.json]\n"
    "  answers one admission.k8s.io/v1 AdmissionReview (from --file, else stdin) as the\n"
    "  webhook would, printing the answer on stdout; exit 0 answered (a denial too: allowed\n"
    "  is false in the answer), 2 bad flags or a malformed review\n";

constexpr char kServeUsage[] =
    "usage: credsync injector serve [injection flags] --cert-file F --key-file F [flags]\n"
    "  runs the mutating admission webhook (POST /mutate over HTTPS) until SIGTERM\n"
    "    --listen ADDR                 the HTTPS address (0.0.0.0:8443)\n"
    "    --cert-file F, --key-file F   the serving certificate chain and key (PEM), re-read\n"
    "                                  when they change\n"
    "    --http-address ADDR           /healthz, /readyz and /metrics over HTTP (0.0.0.0:9808)\n"
    "    --cert-check-interval D       how often the certificate files are checked (1s)\n"
    "    --log-level L                 debug|info|warn|error (info)\n"
    "  exit 0 stopped by a signal, 1 cannot start, 2 bad flags\n";

constexpr char kInjectorUsage[] =
    "usage: credsync injector <review|serve> [flags]\n"
    "  review   answer one AdmissionReview from a file or stdin (credsync injector review "
    "--help)\n"
    "  serve    run the mutating admission webhook (credsync injector serve --help)\n";

int badInput(const Io& io, absl::string_view message) {
  std::fprintf(io.err, "credsync: injector: %s\n", std::string(message).c_str());
  return kExitBadInput;
}

bool wantsHelp(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(),
                     [](const std::string& a) { return a == "--help" || a == "-h"; });
}

absl::StatusOr<ParsedFlags> parseWith(const std::vector<std::string>& args,
                                      std::vector<FlagSpec> extra) {
  std::vector<FlagSpec> specs = injector::injectionFlagSpecs();
  specs.insert(specs.end(), extra.begin(), extra.end());
  absl::StatusOr<ParsedFlags> flags = parseFlags(args, specs);
  if (!flags.ok()) return flags;
  if (!flags->positional.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", flags->positional[0], "'"));
  }
  return flags;
}

// The review's bytes: --file, else all of `in`, at most kMaxReviewBytes.
absl::StatusOr<std::string> readReview(const ParsedFlags& flags, std::FILE* in) {
  if (flags.has("file")) {
    if (flags.values.at("file").empty()) {
      return absl::InvalidArgumentError("--file: must not be empty");
    }
    return readSmallFile(flags.values.at("file"), kMaxReviewBytes, "--file");
  }
  std::string text;
  char buffer[65536];
  for (;;) {
    const size_t n = std::fread(buffer, 1, sizeof(buffer), in);
    text.append(buffer, n);
    if (text.size() > kMaxReviewBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("stdin: larger than ", kMaxReviewBytes, " bytes"));
    }
    if (n < sizeof(buffer)) break;
  }
  if (std::ferror(in)) return absl::InvalidArgumentError("stdin: read error");
  return text;
}

int reviewCommand(const std::vector<std::string>& args, const Io& io, std::FILE* in) {
  absl::StatusOr<ParsedFlags> flags = parseWith(args, {{"file"}});
  if (!flags.ok()) return badInput(io, flags.status().message());
  absl::StatusOr<injector::InjectionSettings> settings = injector::parseInjectionSettings(*flags);
  if (!settings.ok()) return badInput(io, settings.status().message());
  absl::StatusOr<std::string> body = readReview(*flags, in);
  if (!body.ok()) return badInput(io, body.status().message());
  const injector::AdmissionAnswer answer = injector::reviewAdmission(*body, *settings);
  if (answer.result == injector::AdmissionResult::kMalformed) {
    return badInput(io, absl::StripTrailingAsciiWhitespace(answer.body));
  }
  std::fprintf(io.out, "%s\n", answer.body.c_str());
  return kExitOk;
}

}  // namespace

std::string injectorUsage(const std::string& subcommand) {
  if (subcommand == "review") return absl::StrCat(kReviewUsage, kInjectionFlagsUsage);
  if (subcommand == "serve") return absl::StrCat(kServeUsage, kInjectionFlagsUsage);
  return absl::StrCat(kInjectorUsage, kInjectionFlagsUsage);
}

absl::StatusOr<ServeInvocation> parseServeFlags(const std::vector<std::string>& args) {
  absl::StatusOr<ParsedFlags> flags = parseWith(args, {{"listen"},
                                                       {"cert-file"},
                                                       {"key-file"},
                                                       {"http-address"},
                                                       {"cert-check-interval"},
                                                       {"log-level"}});
  if (!flags.ok()) return flags.status();
  absl::StatusOr<injector::InjectionSettings> settings = injector::parseInjectionSettings(*flags);
  if (!settings.ok()) return settings.status();
  ServeInvocation invocation;
  invocation.settings = *std::move(settings);
  injector::ServeOptions& options = invocation.options;
  for (const auto& [flag, out] :
       {std::pair<const char*, std::string*>{"listen", &options.listen_address},
        {"http-address", &options.http_address}}) {
    if (!flags->has(flag)) continue;
    const std::string& value = flags->values.at(flag);
    if (!isListenAddress(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": must be host:port, such as 0.0.0.0:8443"));
    }
    *out = value;
  }
  for (const auto& [flag, out] :
       {std::pair<const char*, std::string*>{"cert-file", &options.cert_file},
        {"key-file", &options.key_file}}) {
    if (!flags->has(flag) || flags->values.at(flag).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, ": required (PEM ",
          flag == std::string("cert-file") ? "certificate chain" : "private key", ")"));
    }
    *out = flags->values.at(flag);
  }
  if (flags->has("cert-check-interval")) {
    absl::Duration interval;
    if (!absl::ParseDuration(flags->values.at("cert-check-interval"), &interval) ||
        interval < absl::Milliseconds(100) || interval > absl::Hours(1)) {
      return absl::InvalidArgumentError(
          "--cert-check-interval: must be a duration from 100ms to 1h, such as 1s");
    }
    options.cert_check_interval = interval;
  }
  if (flags->has("log-level")) {
    if (!log::parseLevel(flags->values.at("log-level")).ok()) {
      return absl::InvalidArgumentError("--log-level: must be debug, info, warn or error");
    }
    options.log_level = flags->values.at("log-level");
  }
  return invocation;
}

int runInjectorCommand(const std::vector<std::string>& args, Io io, std::FILE* in,
                       const ServeFunction& serve) {
  if (args.empty()) {
    std::fputs(injectorUsage().c_str(), io.err);
    return kExitBadInput;
  }
  const std::string& subcommand = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (subcommand == "--help" || subcommand == "-h" || subcommand == "help") {
    std::fputs(injectorUsage(rest.empty() ? "" : rest[0]).c_str(), io.out);
    return kExitOk;
  }
  if (subcommand != "review" && subcommand != "serve") {
    std::fprintf(io.err, "credsync: injector: unknown command '%s'\n%s", subcommand.c_str(),
                 injectorUsage().c_str());
    return kExitBadInput;
  }
  if (wantsHelp(rest)) {
    std::fputs(injectorUsage(subcommand).c_str(), io.out);
    return kExitOk;
  }
  if (subcommand == "review") return reviewCommand(rest, io, in);
  absl::StatusOr<ServeInvocation> invocation = parseServeFlags(rest);
  if (!invocation.ok()) return badInput(io, invocation.status().message());
  if (!serve) {
    std::fprintf(io.err,
                 "credsync: injector serve: the webhook server is not part of this build\n");
    return kExitFailed;
  }
  return serve(*invocation);
}

}  // namespace credsync::cli
