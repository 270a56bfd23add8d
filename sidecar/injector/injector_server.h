#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sidecar/common/time_source.h"
#include "sidecar/injector/injection_settings.h"

// `credsync injector serve`: the admission webhook over HTTPS plus the
// plain-HTTP probe and metrics port, until SIGTERM/SIGINT.
namespace credsync::injector {

struct ServeOptions {
  std::string listen_address = "0.0.0.0:8443";  // --listen: POST /mutate over HTTPS
  std::string cert_file;                        // --cert-file (PEM chain), required
  std::string key_file;                         // --key-file (PEM key), required
  std::string http_address = "0.0.0.0:9808";    // --http-address: /healthz /readyz /metrics
  // How often the certificate files are checked for a change.
  absl::Duration cert_check_interval = absl::Seconds(1);  // --cert-check-interval
  std::string log_level = "info";                         // --log-level
};

// Serves until a termination signal; returns the process exit code (0 on a
// clean stop; 1 when it cannot start, after one line on stderr naming what
// is wrong: an unreadable or mismatched certificate, a port in use).
// Call from the main thread before any other thread exists (it blocks
// SIGTERM and SIGINT to wait for them).
int serveInjector(const ServeOptions& options, const InjectionSettings& settings,
                  const TimeSource& time_source);

}  // namespace credsync::injector
