#include "sidecar/config/service_sections.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "sidecar/common/name_rules.h"
#include "sidecar/config/value_checks.h"

namespace credsync::config::loading {
namespace {

// "host:port" with a numeric port (0 picks one); IPv6 hosts in brackets.
absl::Status readListenAddress(const RawConfig& raw_config, absl::string_view key,
                               std::string& out) {
  const RawValue* raw = raw_config.find(key);
  if (raw == nullptr) return absl::OkStatus();
  const std::string text(absl::StripAsciiWhitespace(raw->text));
  if (text.empty()) {
    out.clear();
    return absl::OkStatus();
  }
  if (!isListenAddress(text)) {
    return invalid(key, "must be host:port, such as 127.0.0.1:9901 (port 0 picks one)", *raw);
  }
  out = text;
  return absl::OkStatus();
}

}  // namespace

absl::Status readOutput(const RawConfig& raw_config, OutputConfig& output) {
  if (const RawValue* raw = raw_config.find("output.directory")) {
    if (!absl::StartsWith(raw->text, "/") || absl::StrContains(raw->text, '\0')) {
      return invalid("output.directory", "must be an absolute path", *raw);
    }
    output.directory = raw->text;
  }
  if (const RawValue* raw = raw_config.find("output.file_mode")) {
    absl::string_view text = absl::StripAsciiWhitespace(raw->text);
    const bool octal_digits = (text.size() == 3 || text.size() == 4) &&
                              absl::c_all_of(text, [](char c) { return c >= '0' && c <= '7'; });
    if (!octal_digits) {
      return invalid("output.file_mode", "must be an octal mode such as \"0440\"", *raw);
    }
    const uint32_t mode =
        static_cast<uint32_t>(std::strtoul(std::string(text).c_str(), nullptr, 8));
    // The file holds an AccessKey: nobody executes it and only its owner
    // (credsync) may change it; reading is what group/other are for.
    if (mode & 07000) {
      return invalid("output.file_mode", "must not set setuid, setgid or sticky bits", *raw);
    }
    if (mode & ~0644u) {
      return invalid("output.file_mode",
                     "must not grant execute, or write to group or others (at most 0644)", *raw);
    }
    if ((mode & 0444u) == 0) return invalid("output.file_mode", "must grant read to someone", *raw);
    output.file_mode = mode;
  }
  if (const RawValue* raw = raw_config.find("output.group")) {
    const absl::string_view text = absl::StripAsciiWhitespace(raw->text);
    uint32_t gid = 0;
    if (text.empty()) {
      output.group.reset();
    } else if (!absl::c_all_of(text, absl::ascii_isdigit) || !absl::SimpleAtoi(text, &gid) ||
               gid == std::numeric_limits<uint32_t>::max()) {
      // (gid_t)-1 means "leave unchanged" to chown, so it cannot be a group.
      return invalid("output.group", "must be a numeric group ID", *raw);
    } else {
      output.group = static_cast<gid_t>(gid);
    }
  }
  return absl::OkStatus();
}

absl::Status readRefresh(const RawConfig& raw_config, RefreshConfig& refresh) {
  struct DurationKey {
    const char* key;
    absl::Duration min;
    absl::Duration* out;
  };
  const DurationKey durations[] = {
      // Seconds are allowed for tests and demos; production keeps the 1h default.
      {"refresh.interval", absl::Seconds(1), &refresh.interval},
      {"refresh.rotation_delay", absl::ZeroDuration(), &refresh.rotation_delay},
      {"refresh.rotation_jitter", absl::ZeroDuration(), &refresh.rotation_jitter},
      {"refresh.startup_jitter", absl::ZeroDuration(), &refresh.startup_jitter},
      {"refresh.retry_initial_backoff", absl::Milliseconds(1), &refresh.retry_initial_backoff},
      {"refresh.retry_max_backoff", absl::Milliseconds(1), &refresh.retry_max_backoff},
      {"refresh.throttled_max_backoff", absl::Milliseconds(1), &refresh.throttled_max_backoff},
      {"refresh.on_demand_refill", absl::Milliseconds(1), &refresh.on_demand_refill},
  };
  for (const DurationKey& duration : durations) {
    if (absl::Status status = raw_config.readDuration(duration.key, duration.min, *duration.out);
        !status.ok()) {
      return status;
    }
  }
  if (const RawValue* raw = raw_config.find("refresh.jitter")) {
    double jitter = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(raw->text), &jitter) ||
        !std::isfinite(jitter) || jitter < 0 || jitter > 0.5) {
      return invalid("refresh.jitter", "must be a number from 0 to 0.5", *raw);
    }
    refresh.jitter = jitter;
  }
  if (const RawValue* raw = raw_config.find("refresh.on_demand_burst")) {
    int burst = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(raw->text), &burst) || burst < 1 ||
        burst > 1000) {
      return invalid("refresh.on_demand_burst", "must be a whole number from 1 to 1000", *raw);
    }
    refresh.on_demand_burst = burst;
  }
  if (refresh.retry_max_backoff < refresh.retry_initial_backoff) {
    const RawValue* raw = raw_config.find("refresh.retry_max_backoff");
    if (raw == nullptr) raw = raw_config.find("refresh.retry_initial_backoff");
    return invalid("refresh.retry_max_backoff",
                   "must not be less than refresh.retry_initial_backoff", *raw);
  }
  if (refresh.throttled_max_backoff < refresh.retry_initial_backoff) {
    const RawValue* raw = raw_config.find("refresh.throttled_max_backoff");
    if (raw == nullptr) raw = raw_config.find("refresh.retry_initial_backoff");
    return invalid("refresh.throttled_max_backoff",
                   "must not be less than refresh.retry_initial_backoff", *raw);
  }
  return absl::OkStatus();
}

absl::Status readControl(const RawConfig& raw_config, const OutputConfig& output,
                         ControlConfig& control) {
  control.socket_path = absl::StrCat(output.directory, "/credsync.sock");
  if (const RawValue* raw = raw_config.find("control.socket")) {
    if (!raw->text.empty()) {
      if (!absl::StartsWith(raw->text, "/") || hasControlOrSpace(raw->text)) {
        return invalid("control.socket", "must be an absolute path", *raw);
      }
      control.socket_path = raw->text;
    }
  }
  // sockaddr_un holds 108 bytes including the terminating NUL.
  if (control.socket_path.size() > 107) {
    const RawValue* raw = raw_config.find("control.socket");
    const std::string problem =
        "must be at most 107 bytes (a Unix socket path limit); set a shorter path";
    return raw != nullptr
               ? invalid("control.socket", problem, *raw)
               : invalid("control.socket", absl::StrCat(problem, " (the default is under ",
                                                        "output.directory, which is too long)"));
  }
  if (const RawValue* raw = raw_config.find("control.socket_mode")) {
    absl::string_view text = absl::StripAsciiWhitespace(raw->text);
    const bool octal_digits = (text.size() == 3 || text.size() == 4) &&
                              absl::c_all_of(text, [](char c) { return c >= '0' && c <= '7'; });
    const uint32_t mode =
        octal_digits ? static_cast<uint32_t>(std::strtoul(std::string(text).c_str(), nullptr, 8))
                     : 0;
    // Connecting needs write permission; nobody executes a socket, and
    // "others" would let any container user trigger refreshes.
    if (!octal_digits || (mode & ~0660u) != 0 || (mode & 0200u) == 0) {
      return invalid("control.socket_mode",
                     "must be an octal mode granting the owner write, at most 0660", *raw);
    }
    control.socket_mode = mode;
  }
  if (absl::Status status =
          readListenAddress(raw_config, "control.tcp_address", control.tcp_address);
      !status.ok()) {
    return status;
  }
  if (const RawValue* raw = raw_config.find("control.token_file")) {
    if (!raw->text.empty() && (!absl::StartsWith(raw->text, "/") || hasControlOrSpace(raw->text))) {
      return invalid("control.token_file", "must be an absolute path", *raw);
    }
    control.token_file = raw->text;
  }
  if (absl::Status status =
          readListenAddress(raw_config, "control.http_address", control.http_address);
      !status.ok()) {
    return status;
  }
  return raw_config.readDuration("control.refresh_timeout", absl::Milliseconds(100),
                                 control.refresh_timeout);
}

namespace {

// An absolute file path, or an environment variable name: what a *_file or
// *_env key may hold.
absl::Status readSourcePath(const RawConfig& raw_config, absl::string_view key, std::string& out) {
  const RawValue* raw = raw_config.find(key);
  if (raw == nullptr || raw->text.empty()) return absl::OkStatus();
  if (!absl::StartsWith(raw->text, "/") || hasControlOrSpace(raw->text)) {
    return invalid(key, "must be an absolute path", *raw);
  }
  out = raw->text;
  return absl::OkStatus();
}

absl::Status readVariableName(const RawConfig& raw_config, absl::string_view key,
                              std::string& out) {
  const RawValue* raw = raw_config.find(key);
  if (raw == nullptr || raw->text.empty()) return absl::OkStatus();
  const bool valid = !absl::ascii_isdigit(static_cast<unsigned char>(raw->text[0])) &&
                     absl::c_all_of(raw->text, [](char c) {
                       return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
                     });
  if (!valid)
    return invalid(key, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", *raw);
  out = raw->text;
  return absl::OkStatus();
}

}  // namespace

absl::Status readLocalApi(const RawConfig& raw_config, LocalApiConfig& local_api) {
  if (absl::Status status = readListenAddress(raw_config, "local_api.listen", local_api.listen);
      !status.ok()) {
    return status;
  }
  if (!local_api.listen.empty() && !isLoopbackHost(authorityHost(local_api.listen))) {
    // The listener hands out keys to whoever asks with the path secret: only
    // the pod's own containers may be able to ask.
    return invalid("local_api.listen",
                   "must be a loopback address (127.0.0.0/8, [::1] or localhost), such as "
                   "127.0.0.1:8190",
                   *raw_config.find("local_api.listen"));
  }
  for (const auto& [key, out] :
       {std::pair<absl::string_view, std::string*>{"local_api.path_secret_file",
                                                   &local_api.path_secret_file},
        {"local_api.kms_agent_token_file", &local_api.kms_agent_token_file}}) {
    if (absl::Status status = readSourcePath(raw_config, key, *out); !status.ok()) return status;
  }
  for (const auto& [key, out] :
       {std::pair<absl::string_view, std::string*>{"local_api.path_secret_env",
                                                   &local_api.path_secret_env},
        {"local_api.kms_agent_token_env", &local_api.kms_agent_token_env}}) {
    if (absl::Status status = readVariableName(raw_config, key, *out); !status.ok()) return status;
  }
  if (absl::Status status = raw_config.readDuration("local_api.refetch_within", absl::Seconds(10),
                                                    local_api.refetch_within);
      !status.ok()) {
    return status;
  }
  if (local_api.refetch_within > absl::Minutes(10)) {
    return invalid("local_api.refetch_within",
                   "must be at most 10m (SDKs would keep a replaced key that long)",
                   *raw_config.find("local_api.refetch_within"));
  }
  if (!local_api.path_secret_file.empty() && !local_api.path_secret_env.empty()) {
    return invalid("local_api.path_secret_env",
                   "set local_api.path_secret_file or local_api.path_secret_env, not both");
  }
  if (!local_api.kms_agent_token_file.empty() && !local_api.kms_agent_token_env.empty()) {
    return invalid("local_api.kms_agent_token_env",
                   "set local_api.kms_agent_token_file or local_api.kms_agent_token_env, not both");
  }
  const bool any_other = !local_api.path_secret_file.empty() ||
                         !local_api.path_secret_env.empty() || local_api.kmsAgentEnabled() ||
                         raw_config.find("local_api.refetch_within") != nullptr;
  if (local_api.listen.empty()) {
    if (any_other) {
      return invalid("local_api.listen",
                     "must be set (such as 127.0.0.1:8190) when other local_api keys are");
    }
    return absl::OkStatus();
  }
  if (local_api.path_secret_file.empty() && local_api.path_secret_env.empty()) {
    return invalid("local_api.path_secret_file",
                   "set local_api.path_secret_file or local_api.path_secret_env: the listener "
                   "needs its path secret");
  }
  return absl::OkStatus();
}

}  // namespace credsync::config::loading
