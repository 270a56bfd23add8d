// Fuzzes renderCredentialsIni and readIniAccessKeyId. The input is split at
// NUL bytes into fields, taken three at a time as (name, access_key_id,
// access_key_secret).
// Invariants: rendering either fails with INVALID_ARGUMENT (whose message
// never carries a secret) or yields text that a strict parser, accepting only
// what every SDK parser reads unchanged, parses back to exactly the input,
// and from which readIniAccessKeyId reads each profile's id. On the raw input
// as a file, readIniAccessKeyId either fails with NOT_FOUND or
// INVALID_ARGUMENT or returns a piece of the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "sidecar/output/credentials_ini.h"

namespace {

constexpr size_t kMaxProfiles = 8;

void check(bool condition) {
  if (!condition) std::abort();
}

struct Parsed {
  std::string name;
  std::string id;
  std::string secret;
};

bool strictName(absl::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

// Printable ASCII, no surrounding space, none of the characters any SDK
// parser gives a meaning, and not a literal Node's ini converts.
bool strictValue(absl::string_view value) {
  if (value.empty() || value.front() == ' ' || value.back() == ' ') return false;
  for (const char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
    if (absl::string_view("#;%[]=\"'\\`").find(c) != absl::string_view::npos) return false;
  }
  return value != "true" && value != "false" && value != "null";
}

bool takeValue(absl::string_view line, absl::string_view key, std::string& value) {
  const std::string prefix = std::string(key) + " = ";
  if (!absl::StartsWith(line, prefix)) return false;
  value = std::string(line.substr(prefix.size()));
  return strictValue(value);
}

std::optional<std::vector<Parsed>> strictParse(absl::string_view text) {
  if (!absl::EndsWith(text, "\n")) return std::nullopt;
  text.remove_suffix(1);
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  std::vector<Parsed> profiles;
  size_t i = 0;
  while (i < lines.size()) {
    if (!profiles.empty()) {
      if (!lines[i].empty()) return std::nullopt;
      ++i;
    }
    if (i + 5 > lines.size()) return std::nullopt;
    const absl::string_view header = lines[i];
    if (header.size() < 3 || header.front() != '[' || header.back() != ']') return std::nullopt;
    Parsed parsed;
    parsed.name = std::string(header.substr(1, header.size() - 2));
    if (!strictName(parsed.name)) return std::nullopt;
    if (lines[i + 1] != "enable = true" || lines[i + 2] != "type = access_key") {
      return std::nullopt;
    }
    if (!takeValue(lines[i + 3], "access_key_id", parsed.id)) return std::nullopt;
    if (!takeValue(lines[i + 4], "access_key_secret", parsed.secret)) return std::nullopt;
    profiles.push_back(std::move(parsed));
    i += 5;
  }
  return profiles;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace output = credsync::output;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<std::string> raw_id = output::readIniAccessKeyId(input, "default");
  if (raw_id.ok()) {
    check(!raw_id->empty() && absl::StrContains(input, *raw_id));
  } else {
    check(raw_id.status().code() == absl::StatusCode::kNotFound ||
          raw_id.status().code() == absl::StatusCode::kInvalidArgument);
  }
  const std::vector<absl::string_view> fields = absl::StrSplit(input, '\0');

  std::vector<output::IniProfile> profiles;
  for (size_t i = 0; i + 3 <= fields.size() && profiles.size() < kMaxProfiles; i += 3) {
    profiles.push_back(output::IniProfile{std::string(fields[i]), std::string(fields[i + 1]),
                                          credsync::SecretString(std::string(fields[i + 2]))});
  }

  const absl::StatusOr<credsync::SecretString> ini = output::renderCredentialsIni(profiles);
  if (!ini.ok()) {
    check(ini.status().code() == absl::StatusCode::kInvalidArgument);
    // A secret with a byte that cannot appear in a message (names are
    // escaped there) would show only if the message quoted it.
    for (const output::IniProfile& profile : profiles) {
      const std::string& secret = profile.access_key_secret.reveal();
      const bool has_raw_byte = std::any_of(secret.begin(), secret.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f;
      });
      if (has_raw_byte) check(!absl::StrContains(ini.status().message(), secret));
    }
    return 0;
  }

  const std::optional<std::vector<Parsed>> parsed = strictParse(ini->reveal());
  check(parsed.has_value());
  check(parsed->size() == profiles.size());
  for (size_t i = 0; i < profiles.size(); ++i) {
    check((*parsed)[i].name == profiles[i].name);
    check((*parsed)[i].id == profiles[i].access_key_id);
    check((*parsed)[i].secret == profiles[i].access_key_secret.reveal());
    const absl::StatusOr<std::string> id =
        output::readIniAccessKeyId(ini->reveal(), profiles[i].name);
    check(id.ok() && *id == profiles[i].access_key_id);
  }
  return 0;
}
