#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sidecar/client/control_client.h"
#include "sidecar/common/flags.h"
#include "sidecar/config/config.h"

namespace credsync::cli {

// The exit codes of every command (the usage text lists them).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;
// `refresh` only: the profile's upstream budget is spent (retry later), and
// KMS still returns the failed key (or refuses in a way no retry fixes).
inline constexpr int kExitRateLimited = 3;
inline constexpr int kExitUnchanged = 4;

inline constexpr char kDefaultSocket[] = "/var/run/credsync/credsync.sock";

// Where a command writes: its answer to `out`, errors (one line each) and
// usage on bad input to `err`. The logger writes to stderr on its own.
struct Io {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
};

// Runs `credsync ARGS...` (without the program name) and returns its exit
// code. `env` is the process environment (config::processEnvironment() in
// main). `run` and `check --every` block SIGTERM and SIGINT and wait for
// them: call from the main thread, before any other thread exists.
int runCommandLine(std::vector<std::string> args, const config::Environment& env, Io io = {});

// The usage text: every command's, or only `command`'s when it is one.
std::string usage(const std::string& command = "");

// The exit code of `refresh` for the status of a failed Refresh.
int refreshExitCode(absl::StatusCode code);

// Where `refresh`, `probe` and `check` find the sidecar: --address (TCP,
// with the pod token from --token-file or from --config's control.token_file
// or generated token), --socket, the socket of --config, else the default
// socket. INVALID_ARGUMENT (one line naming the flag or file) on bad input.
absl::StatusOr<client::ControlTarget> resolveControlTarget(const ParsedFlags& flags,
                                                           const config::Environment& env);

// The file `check` compares with what the sidecar published: --file, else
// $ALIBABA_CLOUD_CREDENTIALS_FILE (what the app's SDK reads), else
// credentials.ini in --config's output directory, else beside the socket.
absl::StatusOr<std::string> credentialsFileToCheck(const ParsedFlags& flags,
                                                   const config::Environment& env,
                                                   const client::ControlTarget& target);

// `validate`'s one-line summary of a loaded config: the identity (none when
// no OpenAPI endpoint is used), the profiles (generic ones marked), the KMS
// instances and endpoints in the order fetches try them, the output.
std::string validateSummary(const config::Config& config);

}  // namespace credsync::cli
