#include "sidecar/config/profiles_section.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sidecar/config/value_checks.h"

namespace credsync::config::loading {
namespace {

// What the output writer accepts as a file name ([A-Za-z0-9._-], not
// starting with '.', which the writer keeps for its own ..data links).
bool isOutputFileName(absl::string_view name) {
  return !name.empty() && name.size() <= 255 && name.front() != '.' &&
         absl::c_all_of(name, [](char c) {
           return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
         });
}

absl::Status readProfileKind(const RawConfig& raw_config, const RawEntry& raw,
                             const std::string& path, ProfileConfig& profile) {
  const auto field = [&](const char* name) -> const RawValue* {
    const auto it = raw.fields.find(name);
    return it == raw.fields.end() ? nullptr : &it->second;
  };
  if (const RawValue* kind = field("kind")) {
    if (kind->text == "generic") {
      profile.kind = ProfileKind::kGeneric;
    } else if (kind->text != "ram_credentials") {
      return invalid(absl::StrCat(path, ".kind"), "must be ram_credentials or generic", *kind);
    }
  }
  if (profile.kind == ProfileKind::kRamCredentials) {
    // The file keys only mean something for a generic profile: refuse them
    // rather than let a forgotten `kind: generic` pass unnoticed.
    for (const char* key : {"format", "file", "file_prefix"}) {
      if (const RawValue* value = field(key)) {
        return invalid(absl::StrCat(path, ".", key), "is only for profiles with kind: generic",
                       *value);
      }
    }
    return absl::OkStatus();
  }
  if (profile.is_default) {
    return invalid(absl::StrCat(path, ".default"),
                   "a generic profile is not in credentials.ini, so it cannot be the default",
                   *field("default"));
  }
  if (profile.name == "default") {
    return invalid(absl::StrCat(path, ".name"),
                   "\"default\" is reserved for the default credentials.ini profile",
                   *field("name"));
  }
  if (const RawValue* format = field("format")) {
    if (format->text == "json_keys") {
      profile.format = GenericFormat::kJsonKeys;
    } else if (format->text != "raw") {
      return invalid(absl::StrCat(path, ".format"), "must be raw or json_keys", *format);
    }
  }
  const bool json_keys = profile.format == GenericFormat::kJsonKeys;
  if (const RawValue* key = field(json_keys ? "file" : "file_prefix")) {
    return invalid(absl::StrCat(path, json_keys ? ".file" : ".file_prefix"),
                   json_keys ? "is for format: raw; format: json_keys names files with file_prefix"
                             : "is for format: json_keys; format: raw names its file with file",
                   *key);
  }
  if (!json_keys) {
    profile.file = profile.name;
    if (const RawValue* file = field("file")) {
      if (!isOutputFileName(file->text)) {
        return invalid(absl::StrCat(path, ".file"),
                       "must be a file name of 1 to 255 characters of A-Z a-z 0-9 . _ - "
                       "(not starting with .)",
                       *file);
      }
      profile.file = file->text;
    }
    return absl::OkStatus();
  }
  profile.file_prefix = absl::StrCat(profile.name, ".");
  if (const RawValue* prefix = field("file_prefix")) {
    if (prefix->text.empty()) {
      return invalid(absl::StrCat(path, ".file_prefix"),
                     "must not be empty: files named by bare keys could replace credentials.ini "
                     "or another profile's files",
                     *prefix);
    }
    if (prefix->text.size() > 128 || !isOutputFileName(prefix->text)) {
      return invalid(absl::StrCat(path, ".file_prefix"),
                     "must be 1 to 128 characters of A-Z a-z 0-9 . _ - (not starting with .)",
                     *prefix);
    }
    profile.file_prefix = prefix->text;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status readProfiles(const RawConfig& raw_config, std::vector<ProfileConfig>& profiles) {
  if (raw_config.profiles.empty()) {
    return invalid("profiles", "at least one profile (name, secret_name) is required");
  }
  std::map<std::string, size_t> names;
  std::optional<size_t> marked_default;
  for (size_t i = 0; i < raw_config.profiles.size(); ++i) {
    const RawEntry& raw = raw_config.profiles[i];
    const std::string path = absl::StrCat("profiles[", i, "]");
    const auto field = [&](const char* name) -> const RawValue* {
      const auto it = raw.fields.find(name);
      return it == raw.fields.end() ? nullptr : &it->second;
    };
    ProfileConfig profile;
    const RawValue* name = field("name");
    if (name == nullptr || name->text.empty()) {
      return invalid(absl::StrCat(path, ".name"),
                     absl::StrCat("must be set (line ", raw.line, ")"));
    }
    if (!isProfileName(name->text)) {
      return invalid(absl::StrCat(path, ".name"),
                     "must be 1 to 64 characters of A-Z a-z 0-9 _ - (not DEFAULT or __proto__)",
                     *name);
    }
    if (const auto [it, inserted] = names.emplace(name->text, i); !inserted) {
      return invalid(absl::StrCat(path, ".name"),
                     absl::StrCat("same name as profiles[", it->second, "]"), *name);
    }
    profile.name = name->text;

    const RawValue* secret_name = field("secret_name");
    if (secret_name == nullptr || secret_name->text.empty()) {
      return secret_name == nullptr
                 ? invalid(absl::StrCat(path, ".secret_name"),
                           absl::StrCat("must not be empty (line ", raw.line, ")"))
                 : invalid(absl::StrCat(path, ".secret_name"), "must not be empty", *secret_name);
    }
    if (secret_name->text.size() > 192 || hasControlOrSpace(secret_name->text)) {
      return invalid(absl::StrCat(path, ".secret_name"),
                     "must be at most 192 characters without spaces or control characters",
                     *secret_name);
    }
    profile.secret_name = secret_name->text;

    if (const RawValue* stage = field("version_stage")) {
      if (stage->text != "ACSCurrent" && stage->text != "ACSPrevious") {
        return invalid(absl::StrCat(path, ".version_stage"), "must be ACSCurrent or ACSPrevious",
                       *stage);
      }
      profile.version_stage = stage->text;
    }
    for (const auto& [key, out] : {std::pair<const char*, bool*>{"default", &profile.is_default},
                                   std::pair<const char*, bool*>{"required", &profile.required}}) {
      const RawValue* flag = field(key);
      if (flag == nullptr) continue;
      const std::optional<bool> value = parseBool(flag->text);
      if (!value.has_value()) {
        return invalid(absl::StrCat(path, ".", key), "must be true or false", *flag);
      }
      *out = *value;
    }
    if (absl::Status status = readProfileKind(raw_config, raw, path, profile); !status.ok())
      return status;
    if (profile.is_default) {
      if (marked_default.has_value()) {
        return invalid(absl::StrCat(path, ".default"),
                       absl::StrCat("only one profile may be the default; profiles[",
                                    *marked_default, "] already is"),
                       *field("default"));
      }
      marked_default = i;
    }
    profiles.push_back(std::move(profile));
  }

  // Generic profiles are not in credentials.ini: a config of only those
  // writes no credentials.ini and has no default profile.
  const auto first_ram = absl::c_find_if(
      profiles, [](const ProfileConfig& p) { return p.kind == ProfileKind::kRamCredentials; });
  if (first_ram == profiles.end()) return absl::OkStatus();
  // Without an explicit default, a profile literally named "default" is the
  // obvious one; otherwise the first RAM credentials profile.
  size_t default_index = static_cast<size_t>(first_ram - profiles.begin());
  if (marked_default.has_value()) {
    default_index = *marked_default;
  } else if (const auto it = names.find("default"); it != names.end()) {
    default_index = it->second;
  }
  // The default profile is also written as [default], so no other profile
  // may take that section.
  if (const auto it = names.find("default"); it != names.end() && it->second != default_index) {
    return invalid(absl::StrCat("profiles[", it->second, "].name"),
                   "\"default\" is reserved for the default profile",
                   raw_config.profiles[it->second].fields.at("name"));
  }
  profiles[default_index].is_default = true;
  const auto first = profiles.begin() + static_cast<std::ptrdiff_t>(default_index);
  std::rotate(profiles.begin(), first, first + 1);
  return absl::OkStatus();
}

absl::Status checkOutputNames(const RawConfig& raw_config, const Config& config) {
  // Names credsync writes itself, and the socket when it lives in the
  // output directory.
  std::vector<std::string> reserved = {kCredentialsIniFile, kControlTokenFile};
  const std::string& socket = config.control.socket_path;
  if (const size_t slash = socket.rfind('/');
      slash != std::string::npos && socket.substr(0, slash) == config.output.directory) {
    reserved.push_back(socket.substr(slash + 1));
  }
  struct Claim {
    size_t index;
    std::string name;  // a file name, or a prefix
    bool is_prefix;
  };
  // In file order (config.profiles has the default moved first), so errors
  // name the later of two clashing profiles.
  std::vector<Claim> claims;
  for (size_t i = 0; i < raw_config.profiles.size(); ++i) {
    const std::string& name = raw_config.profiles[i].fields.at("name").text;
    const ProfileConfig& profile =
        *absl::c_find_if(config.profiles, [&](const ProfileConfig& p) { return p.name == name; });
    if (profile.kind != ProfileKind::kGeneric) continue;
    const bool is_prefix = profile.format == GenericFormat::kJsonKeys;
    claims.push_back({i, is_prefix ? profile.file_prefix : profile.file, is_prefix});
  }
  const auto key_of = [&](const Claim& claim) {
    return absl::StrCat("profiles[", claim.index, "].", claim.is_prefix ? "file_prefix" : "file");
  };
  const auto raw_of = [&](const Claim& claim) -> const RawValue* {
    const auto& fields = raw_config.profiles[claim.index].fields;
    const auto it = fields.find(claim.is_prefix ? "file_prefix" : "file");
    return it == fields.end() ? &fields.at("name") : &it->second;
  };
  // Whether a file of one claim could bear a name of the other.
  const auto overlaps = [](const Claim& a, const Claim& b) {
    if (a.is_prefix && b.is_prefix) {
      return absl::StartsWith(a.name, b.name) || absl::StartsWith(b.name, a.name);
    }
    if (a.is_prefix) return absl::StartsWith(b.name, a.name) && b.name.size() > a.name.size();
    if (b.is_prefix) return absl::StartsWith(a.name, b.name) && a.name.size() > b.name.size();
    return a.name == b.name;
  };
  for (size_t i = 0; i < claims.size(); ++i) {
    for (const std::string& name : reserved) {
      if (overlaps(claims[i], Claim{0, name, false})) {
        return invalid(key_of(claims[i]),
                       absl::StrCat(claims[i].is_prefix ? "files with this prefix" : "this file",
                                    " could replace ", name, ", which credsync writes itself"),
                       *raw_of(claims[i]));
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (overlaps(claims[i], claims[j])) {
        return invalid(key_of(claims[i]),
                       absl::StrCat("its files could have the same names as those of profiles[",
                                    claims[j].index, "] (", key_of(claims[j]), ")"),
                       *raw_of(claims[i]));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace credsync::config::loading
