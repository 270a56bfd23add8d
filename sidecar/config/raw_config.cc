#include "sidecar/config/raw_config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sidecar/config/value_checks.h"

namespace credsync::config::loading {
namespace {

// A generous ceiling on every duration, so later time arithmetic (deadlines,
// jitter, nanosecond conversions) cannot overflow on a typo such as "9999999h".
const absl::Duration kMaxDuration = absl::Hours(24 * 30);

}  // namespace

const KeySpec* findKey(absl::string_view key) {
  for (const KeySpec& spec : kKeys) {
    if (key == spec.key) return &spec;
  }
  return nullptr;
}

std::optional<std::string> RawConfig::envValue(const char* name) const {
  std::optional<std::string> value = env_ ? env_(name) : std::nullopt;
  // The SDKs treat an empty variable as unset; so do we.
  if (value.has_value() && value->empty()) return std::nullopt;
  return value;
}

const RawValue* RawConfig::find(absl::string_view key) const {
  const auto it = values.find(key);
  return it == values.end() || !it->second.isSet() ? nullptr : &it->second;
}

absl::Status RawConfig::readString(absl::string_view key, std::string& out) const {
  const RawValue* raw = find(key);
  if (raw == nullptr) return absl::OkStatus();
  if (absl::StrContains(raw->text, '\0')) return invalid(key, "must not contain NUL", *raw);
  out = raw->text;
  return absl::OkStatus();
}

absl::Status RawConfig::readBool(absl::string_view key, bool& out) const {
  const RawValue* raw = find(key);
  if (raw == nullptr) return absl::OkStatus();
  const std::optional<bool> value = parseBool(raw->text);
  if (!value.has_value()) return invalid(key, "must be true or false", *raw);
  out = *value;
  return absl::OkStatus();
}

absl::Status RawConfig::readDuration(absl::string_view key, absl::Duration min,
                                     absl::Duration& out) const {
  const RawValue* raw = find(key);
  if (raw == nullptr) return absl::OkStatus();
  absl::Duration value;
  const std::string text(absl::StripAsciiWhitespace(raw->text));
  // absl accepts a bare "0"; every other value needs a unit, so "3600" is
  // refused rather than guessed to be seconds.
  if (!absl::ParseDuration(text, &value) || value == absl::InfiniteDuration() ||
      value == -absl::InfiniteDuration()) {
    return invalid(key, "must be a duration such as 30s, 5m or 1h30m", *raw);
  }
  if (value < min) {
    return invalid(key, absl::StrCat("must be at least ", absl::FormatDuration(min)), *raw);
  }
  if (value > kMaxDuration) {
    return invalid(key, absl::StrCat("must be at most ", absl::FormatDuration(kMaxDuration)), *raw);
  }
  out = value;
  return absl::OkStatus();
}

}  // namespace credsync::config::loading
