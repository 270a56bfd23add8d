#include "sidecar/config/hooks_section.h"

#include <signal.h>

#include <map>
#include <optional>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "sidecar/config/document_reader.h"
#include "sidecar/config/value_checks.h"

namespace credsync::config::loading {
namespace {

// "SIGHUP", "hup", or a number 1-31: the standard signals, by the names
// kill -l prints.
std::optional<int> parseSignal(absl::string_view text) {
  int number = 0;
  if (absl::SimpleAtoi(text, &number)) {
    if (number >= 1 && number <= 31) return number;
    return std::nullopt;
  }
  std::string name = absl::AsciiStrToUpper(text);
  absl::string_view bare = name;
  absl::ConsumePrefix(&bare, "SIG");
  for (int signal = 1; signal <= 31; ++signal) {
    const char* abbreviation = sigabbrev_np(signal);
    if (abbreviation != nullptr && bare == abbreviation) return signal;
  }
  return std::nullopt;
}

// A list of plain strings (hooks[].command, hooks[].profiles).
absl::Status readStringList(const std::string& path, const YAML::Node& node,
                            std::vector<std::string>& out, std::vector<int>* lines) {
  if (!node.IsSequence()) {
    return invalid(path, absl::StrCat("must be a list (line ", node.Mark().line + 1, ")"));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    const int line = item.Mark().line + 1;
    if (!item.IsScalar()) {
      return invalid(absl::StrCat(path, "[", i, "]"),
                     absl::StrCat("must be a string (line ", line, ")"));
    }
    if (absl::StrContains(item.Scalar(), '\0')) {
      return invalid(absl::StrCat(path, "[", i, "]"),
                     absl::StrCat("must not contain NUL (line ", line, ")"));
    }
    out.push_back(item.Scalar());
    if (lines != nullptr) lines->push_back(line);
  }
  return absl::OkStatus();
}

absl::Status readHook(const std::string& path, const YAML::Node& node,
                      std::vector<RawHook>& hooks) {
  const int hook_line = node.Mark().line + 1;
  if (!node.IsMap()) {
    return invalid(path, absl::StrCat("must be a mapping (line ", hook_line, ")"));
  }
  RawHook hook;
  HookConfig& config = hook.config;
  config.name = path;
  bool has_signal = false;
  bool has_command = false;
  bool has_timeout = false;
  const auto scalar = [](const std::string& full, const YAML::Node& value,
                         std::string& out) -> absl::Status {
    RawValue raw;
    if (absl::Status status = readScalar(full, value, raw); !status.ok()) return status;
    out = std::move(raw.text);
    return absl::OkStatus();
  };
  absl::Status status = forEachEntry(
      path, node,
      [&](const std::string& name, const std::string& full, int line,
          const YAML::Node& value) -> absl::Status {
        const std::string where = absl::StrCat(" (line ", value.Mark().line + 1, ")");
        if (value.IsNull()) {
          if (name == "name" || name == "signal" || name == "command" || name == "timeout" ||
              name == "profiles") {
            return absl::OkStatus();
          }
        }
        if (name == "name") {
          std::string text;
          if (absl::Status s = scalar(full, value, text); !s.ok()) return s;
          if (!isProfileName(text)) {
            return invalid(full,
                           absl::StrCat("must be 1 to 64 characters of A-Z a-z 0-9 _ -", where));
          }
          config.name = text;
          return absl::OkStatus();
        }
        if (name == "signal") {
          has_signal = true;
          config.kind = HookConfig::Kind::kSignal;
          if (!value.IsMap()) return invalid(full, absl::StrCat("must be a mapping", where));
          return forEachEntry(
              full, value,
              [&](const std::string& key, const std::string& key_path, int key_line,
                  const YAML::Node& item) -> absl::Status {
                const std::string item_where = absl::StrCat(" (line ", item.Mark().line + 1, ")");
                std::string text;
                if (key != "signal" && key != "process" && key != "pid_file") {
                  return invalid(key_path, absl::StrCat("unknown key (line ", key_line, ")"));
                }
                if (item.IsNull()) return absl::OkStatus();
                if (absl::Status s = scalar(key_path, item, text); !s.ok()) return s;
                if (key == "signal") {
                  const std::optional<int> signal = parseSignal(absl::StripAsciiWhitespace(text));
                  if (!signal.has_value()) {
                    return invalid(key_path, absl::StrCat("must be a signal name such as SIGHUP or "
                                                          "SIGUSR1, or a number from 1 to 31",
                                                          item_where));
                  }
                  config.signal = *signal;
                } else if (key == "process") {
                  // /proc/<pid>/comm holds at most 15 bytes; a longer name
                  // can still match the base name of argv[0].
                  if (text.empty() || text.size() > 255 || hasControlOrSpace(text) ||
                      absl::StrContains(text, '/')) {
                    return invalid(key_path,
                                   absl::StrCat("must be a process name (1 to 255 characters, "
                                                "no spaces or '/')",
                                                item_where));
                  }
                  config.process = text;
                } else {
                  if (!absl::StartsWith(text, "/") || hasControlOrSpace(text)) {
                    return invalid(key_path, absl::StrCat("must be an absolute path", item_where));
                  }
                  config.pid_file = text;
                }
                return absl::OkStatus();
              });
        }
        if (name == "command") {
          has_command = true;
          config.kind = HookConfig::Kind::kCommand;
          if (absl::Status s = readStringList(full, value, config.command, nullptr); !s.ok()) {
            return s;
          }
          if (config.command.empty() || config.command.front().empty()) {
            return invalid(full, absl::StrCat("must name a program: [program, args...]", where));
          }
          if (config.command.size() > 256) {
            return invalid(full, absl::StrCat("must have at most 256 arguments", where));
          }
          return absl::OkStatus();
        }
        if (name == "timeout") {
          has_timeout = true;
          std::string text;
          if (absl::Status s = scalar(full, value, text); !s.ok()) return s;
          absl::Duration timeout;
          if (!absl::ParseDuration(absl::StripAsciiWhitespace(text), &timeout) ||
              timeout < absl::Milliseconds(100) || timeout > absl::Hours(1)) {
            return invalid(full,
                           absl::StrCat("must be a duration from 100ms to 1h, such as 30s", where));
          }
          config.timeout = timeout;
          return absl::OkStatus();
        }
        if (name == "profiles") {
          return readStringList(full, value, config.profiles, &hook.profile_lines);
        }
        return invalid(full, absl::StrCat("unknown key (line ", line, ")"));
      });
  if (!status.ok()) return status;
  if (has_signal == has_command) {
    return invalid(
        path, absl::StrCat("must have exactly one of signal or command (line ", hook_line, ")"));
  }
  if (has_signal && config.process.empty() == config.pid_file.empty()) {
    return invalid(
        absl::StrCat(path, ".signal"),
        absl::StrCat("must have exactly one of process or pid_file (line ", hook_line, ")"));
  }
  if (has_signal && has_timeout) {
    return invalid(absl::StrCat(path, ".timeout"),
                   absl::StrCat("applies to command hooks only (line ", hook_line, ")"));
  }
  hooks.push_back(std::move(hook));
  return absl::OkStatus();
}

}  // namespace

absl::Status readHooks(const YAML::Node& node, std::vector<RawHook>& hooks) {
  if (node.IsNull()) return absl::OkStatus();
  if (!node.IsSequence()) {
    return invalid("hooks", absl::StrCat("must be a list (line ", node.Mark().line + 1, ")"));
  }
  // Each hook runs on one thread after every change; dozens would be a mistake.
  constexpr size_t kMaxHooks = 16;
  if (node.size() > kMaxHooks) {
    return invalid("hooks",
                   absl::StrCat("at most ", kMaxHooks, " hooks (line ", node.Mark().line + 1, ")"));
  }
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string path = absl::StrCat("hooks[", i, "]");
    if (absl::Status status = readHook(path, node[i], hooks); !status.ok()) return status;
    const std::string& name = hooks.back().config.name;
    if (const auto [it, inserted] = names.emplace(name, i); !inserted) {
      return invalid(absl::StrCat(path, ".name"),
                     absl::StrCat("same name as hooks[", it->second, "] (line ",
                                  node[i].Mark().line + 1, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status readHookList(const RawConfig& raw_config, const std::vector<ProfileConfig>& profiles,
                          std::vector<HookConfig>& hooks) {
  for (size_t i = 0; i < raw_config.hooks.size(); ++i) {
    const RawHook& raw = raw_config.hooks[i];
    for (size_t j = 0; j < raw.config.profiles.size(); ++j) {
      const std::string& name = raw.config.profiles[j];
      if (absl::c_none_of(profiles, [&](const ProfileConfig& p) { return p.name == name; })) {
        return invalid(
            absl::StrCat("hooks[", i, "].profiles[", j, "]"),
            absl::StrCat("names no configured profile (line ", raw.profile_lines[j], ")"));
      }
    }
    hooks.push_back(raw.config);
  }
  return absl::OkStatus();
}

}  // namespace credsync::config::loading
