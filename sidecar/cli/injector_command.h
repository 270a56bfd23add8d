#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sidecar/cli/cli.h"
#include "sidecar/injector/injection_settings.h"
#include "sidecar/injector/injector_server.h"

// `credsync injector review|serve`: the mutating admission webhook's command
// line. `review` answers one AdmissionReview from a file or stdin (what the
// webhook would answer, for trying annotations out and for tests); `serve`
// runs the webhook.
namespace credsync::cli {

// Everything `credsync injector serve` was asked to do.
struct ServeInvocation {
  injector::ServeOptions options;
  injector::InjectionSettings settings;
};

// Parses serve's flags (the injection flags plus --listen, --cert-file,
// --key-file, --http-address, --cert-check-interval, --log-level).
// INVALID_ARGUMENT with one line naming the flag on bad input.
absl::StatusOr<ServeInvocation> parseServeFlags(const std::vector<std::string>& args);

// Runs a parsed `serve` and returns the exit code (injector::serveInjector
// with the real clock, in the full binary).
using ServeFunction = std::function<int(const ServeInvocation&)>;

// The usage of `credsync injector`, or of one subcommand ("review", "serve").
std::string injectorUsage(const std::string& subcommand = "");

// Runs `credsync injector ARGS...` (ARGS without "injector"). `review` reads
// --file, else `in`; prints the AdmissionReview answer to io.out and exits 0
// (a denial too: it is in the answer), 2 on bad flags or a malformed review.
// `serve` hands its parsed flags to `serve`; without one it fails (exit 1).
int runInjectorCommand(const std::vector<std::string>& args, Io io, std::FILE* in = stdin,
                       const ServeFunction& serve = nullptr);

}  // namespace credsync::cli
