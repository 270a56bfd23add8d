#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sidecar/config/config.h"
#include "sidecar/config/raw_config.h"

// The sections about credsync's own service: where it writes (output), when
// it fetches (refresh), and how apps reach it (control, local_api).
namespace credsync::config::loading {

absl::Status readOutput(const RawConfig& raw_config, OutputConfig& output);
absl::Status readRefresh(const RawConfig& raw_config, RefreshConfig& refresh);
// The socket defaults to one in `output`'s directory.
absl::Status readControl(const RawConfig& raw_config, const OutputConfig& output,
                         ControlConfig& control);
// The loopback listener: a loopback address, exactly one source of the path
// secret when it is on, refetch_within in [10s, 10m], at most one token source.
absl::Status readLocalApi(const RawConfig& raw_config, LocalApiConfig& local_api);

}  // namespace credsync::config::loading
