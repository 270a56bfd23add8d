#include "sidecar/output/credentials_ini.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/name_rules.h"

namespace credsync::output {
namespace {

constexpr absl::string_view kSectionBody = "enable = true\ntype = access_key\n";
constexpr absl::string_view kAccessKeyIdKey = "access_key_id";
constexpr absl::string_view kAccessKeySecretKey = "access_key_secret";
constexpr absl::string_view kAssignment = " = ";

// Characters that start a comment, an interpolation, a quoted or multi-line
// value, a section header or a key in at least one of the SDK parsers.
constexpr absl::string_view kSpecialCharacters = "#;%[]=\"'\\`";

// Returns why `value` would not read back unchanged in every parser, or
// nothing. Only the class of the problem: the value itself may be a secret.
absl::string_view valueProblem(absl::string_view value) {
  if (value.empty()) return "is empty";
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return "contains a control character";
    if (byte >= 0x80) return "contains a non-ASCII byte";
  }
  if (value.front() == ' ' || value.back() == ' ') return "has leading or trailing whitespace";
  if (value.find_first_of(kSpecialCharacters) != absl::string_view::npos) {
    return "contains one of # ; % [ ] = \" ' \\ ` (comment, interpolation or quoting)";
  }
  // Node's `ini` converts these three unquoted literals with JSON.parse.
  if (value == "true" || value == "false" || value == "null") {
    return "is one of true, false, null (Node's ini parser reads them as non-strings)";
  }
  return {};
}

absl::Status checkValue(const std::string& profile, absl::string_view field,
                        absl::string_view value) {
  const absl::string_view problem = valueProblem(value);
  if (problem.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("profile \"", profile, "\": ", field, " ", problem));
}

size_t sectionSize(const IniProfile& profile) {
  return 1 + profile.name.size() + 2 + kSectionBody.size() + kAccessKeyIdKey.size() +
         kAssignment.size() + profile.access_key_id.size() + 1 + kAccessKeySecretKey.size() +
         kAssignment.size() + profile.access_key_secret.size() + 1;
}

}  // namespace

absl::Status validateIniCredential(absl::string_view profile, absl::string_view access_key_id,
                                   const SecretString& access_key_secret) {
  const std::string name(profile);
  if (absl::Status id = checkValue(name, kAccessKeyIdKey, access_key_id); !id.ok()) return id;
  return checkValue(name, kAccessKeySecretKey, access_key_secret.reveal());
}

absl::StatusOr<SecretString> renderCredentialsIni(const std::vector<IniProfile>& profiles) {
  if (profiles.empty()) return absl::InvalidArgumentError("no profiles to render");
  std::set<absl::string_view> seen;
  size_t size = 0;
  for (size_t i = 0; i < profiles.size(); ++i) {
    const IniProfile& profile = profiles[i];
    if (absl::Status name = validateIniProfileName(profile.name); !name.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("profile #", i + 1, ": ", name.message()));
    }
    if (!seen.insert(profile.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("profile \"", profile.name, "\" appears more than once"));
    }
    if (absl::Status id = checkValue(profile.name, kAccessKeyIdKey, profile.access_key_id);
        !id.ok()) {
      return id;
    }
    if (absl::Status secret =
            checkValue(profile.name, kAccessKeySecretKey, profile.access_key_secret.reveal());
        !secret.ok()) {
      return secret;
    }
    size += sectionSize(profile) + (i > 0 ? 1 : 0);
  }

  // Reserved up front so the buffer never reallocates: a reallocation would
  // free a copy of the secrets without wiping it.
  std::string text;
  text.reserve(size);
  for (size_t i = 0; i < profiles.size(); ++i) {
    const IniProfile& profile = profiles[i];
    if (i > 0) text.push_back('\n');
    absl::StrAppend(&text, "[", profile.name, "]\n", kSectionBody);
    absl::StrAppend(&text, kAccessKeyIdKey, kAssignment, profile.access_key_id, "\n");
    absl::StrAppend(&text, kAccessKeySecretKey, kAssignment, profile.access_key_secret.reveal(),
                    "\n");
  }
  return SecretString(std::move(text));
}

absl::StatusOr<std::string> readIniAccessKeyId(absl::string_view text, absl::string_view profile) {
  const std::string where = absl::StrCat("profile \"", absl::CHexEscape(profile), "\"");
  bool in_section = false;
  bool section_seen = false;
  std::optional<std::string> id;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      in_section =
          line.size() >= 2 && line.back() == ']' && line.substr(1, line.size() - 2) == profile;
      if (in_section && section_seen) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": section appears twice"));
      }
      section_seen = section_seen || in_section;
      continue;
    }
    if (!in_section) continue;
    const size_t equals = line.find('=');
    if (equals == absl::string_view::npos ||
        absl::StripTrailingAsciiWhitespace(line.substr(0, equals)) != kAccessKeyIdKey) {
      continue;
    }
    if (id.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", kAccessKeyIdKey, " appears twice"));
    }
    id = std::string(absl::StripLeadingAsciiWhitespace(line.substr(equals + 1)));
  }
  if (!section_seen) return absl::NotFoundError(absl::StrCat(where, ": no such section"));
  if (!id.has_value() || id->empty()) {
    return absl::NotFoundError(absl::StrCat(where, ": no ", kAccessKeyIdKey));
  }
  return *std::move(id);
}

}  // namespace credsync::output
