#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sidecar/config/raw_config.h"

// Checks and error messages that more than one part of the loader uses.
namespace credsync::config::loading {

// Keys come from untrusted text and are echoed in errors; keep the message
// one printable line of bounded length.
std::string printable(absl::string_view text);

// Where a value came from, for an error: " (line 3)", " (from ALIBABA_CLOUD_ROLE_ARN)",
// " (from a flag)"; `line` is the file line to name.
std::string origin(const RawValue& raw, int line);

// INVALID_ARGUMENT "<key>: <problem>", optionally naming where `raw` came from.
absl::Status invalid(absl::string_view key, absl::string_view problem);
absl::Status invalid(absl::string_view key, absl::string_view problem, const RawValue& raw);

// A region ID such as cn-hangzhou.
bool isRegion(absl::string_view region);

// The credentials.ini renderer's rule, so a name that would make every
// publish fail is refused here, where the user can see which key is wrong.
bool isProfileName(absl::string_view name);

bool hasControlOrSpace(absl::string_view text);

// "host[:port]" or "https://host[:port]" -> "https://host[:port]" (lowercase).
// Plain http is accepted only for loopback, where the emulator may listen.
absl::StatusOr<std::string> normaliseEndpoint(absl::string_view text);

// "true" / "false", any case. YAML 1.1's yes/no/on/off are refused because
// JSON and YAML 1.2 readers of the same file would disagree about them.
std::optional<bool> parseBool(absl::string_view text);

}  // namespace credsync::config::loading
