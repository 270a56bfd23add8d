#include "sidecar/fetch/secret_content.h"

#include <set>
#include <string>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/crypto.h"
#include "sidecar/common/json_depth.h"

namespace credsync::fetch {
namespace {

// Generic secrets in KMS hold at most tens of KiB; the bound caps parse time
// and memory for a hostile or corrupted answer.
constexpr size_t kMaxJsonBytes = 1 << 20;
constexpr int kMaxJsonDepth = 32;
constexpr size_t kMaxFileName = 255;

bool isFileNameChar(char c) { return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'; }

// A key for an error message: bounded, and with characters a file name
// cannot hold shown as '?', so the line stays one printable line.
std::string describeKey(absl::string_view key) {
  std::string out;
  for (const char c : key.substr(0, 64)) out.push_back(isFileNameChar(c) ? c : '?');
  if (key.size() > 64) out += "...";
  return absl::StrCat("\"", out, "\"");
}

void wipeJson(nlohmann::json& value) {
  if (value.is_string()) {
    wipeString(value.get_ref<std::string&>());
  } else if (value.is_structured()) {
    for (nlohmann::json& item : value) wipeJson(item);
  }
}

}  // namespace

absl::StatusOr<std::map<std::string, SecretString>> splitJsonKeys(absl::string_view json,
                                                                  absl::string_view file_prefix) {
  if (json.size() > kMaxJsonBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("SecretData is larger than ", kMaxJsonBytes, " bytes"));
  }
  if (!jsonDepthWithin(json, kMaxJsonDepth)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SecretData nests deeper than ", kMaxJsonDepth, " levels"));
  }
  // Top-level keys as the parser meets them: a repeated key would silently
  // keep one of the values, so it is refused instead.
  std::set<std::string> seen;
  std::string repeated;
  const nlohmann::json::parser_callback_t on_event =
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        if (depth == 1 && event == nlohmann::json::parse_event_t::key && parsed.is_string()) {
          if (!seen.insert(parsed.get<std::string>()).second && repeated.empty()) {
            repeated = parsed.get<std::string>();
          }
        }
        return true;
      };
  nlohmann::json document =
      nlohmann::json::parse(json.begin(), json.end(), on_event, /*allow_exceptions=*/false);
  struct Wiper {
    nlohmann::json& value;
    ~Wiper() { wipeJson(value); }
  } wiper{document};
  if (document.is_discarded()) {
    return absl::InvalidArgumentError("SecretData is not valid JSON (format: json_keys)");
  }
  if (!document.is_object()) {
    return absl::InvalidArgumentError(
        "SecretData is JSON but not an object; format: json_keys needs {\"key\": value, ...}");
  }
  if (!repeated.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SecretData has the key ", describeKey(repeated), " more than once"));
  }
  if (document.empty()) {
    return absl::InvalidArgumentError("SecretData is an empty JSON object: no file to write");
  }
  if (document.size() > kMaxJsonKeysFiles) {
    return absl::InvalidArgumentError(absl::StrCat("SecretData has ", document.size(),
                                                   " keys; at most ", kMaxJsonKeysFiles,
                                                   " files are written per profile"));
  }
  std::map<std::string, SecretString> files;
  for (auto& [key, value] : document.items()) {
    if (key.empty() || !absl::c_all_of(key, isFileNameChar)) {
      return absl::InvalidArgumentError(
          absl::StrCat("SecretData key ", describeKey(key),
                       " cannot be a file name: keys must be A-Z a-z 0-9 . _ -"));
    }
    if (file_prefix.size() + key.size() > kMaxFileName) {
      return absl::InvalidArgumentError(absl::StrCat("SecretData key ", describeKey(key),
                                                     " makes a file name longer than ",
                                                     kMaxFileName, " bytes"));
    }
    std::string content =
        value.is_string() ? value.get<std::string>()
                          : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    files.emplace(absl::StrCat(file_prefix, key), SecretString(std::move(content)));
  }
  return files;
}

absl::StatusOr<ManagedCredential> toManagedCredential(const alibaba::SecretValue& value,
                                                      const config::ProfileConfig& profile,
                                                      const std::string& endpoint) {
  ManagedCredential credential;
  credential.kind = profile.kind;
  credential.version_id = value.version_id;
  credential.next_rotation_date = value.next_rotation_date;
  credential.rotation_interval = value.rotation_interval;
  credential.endpoint = endpoint;
  credential.answer = value;
  if (profile.kind == config::ProfileKind::kRamCredentials) {
    absl::StatusOr<alibaba::RamCredentials> parsed = alibaba::parseRamCredentials(value);
    if (!parsed.ok()) return parsed.status();
    credential.access_key_id = std::move(parsed->access_key_id);
    credential.access_key_secret = std::move(parsed->access_key_secret);
    credential.generate_timestamp = parsed->generate_timestamp;
    return credential;
  }

  // A generic profile takes any SecretType: the user asked for the value
  // itself, whatever KMS manages it as.
  SecretString bytes;
  if (value.secret_data_type == "binary") {
    absl::StatusOr<std::string> decoded = crypto::base64Decode(value.secret_data.reveal());
    if (!decoded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("SecretData of SecretDataType binary is not valid base64 (version ",
                       value.version_id, ")"));
    }
    bytes = SecretString(*std::move(decoded));
  } else if (value.secret_data_type.empty() || value.secret_data_type == "text") {
    bytes = value.secret_data;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("SecretDataType must be text or binary, not ",
                                                   describeKey(value.secret_data_type)));
  }
  if (profile.format == config::GenericFormat::kRaw) {
    credential.files.emplace(profile.file, std::move(bytes));
    return credential;
  }
  absl::StatusOr<std::map<std::string, SecretString>> files =
      splitJsonKeys(bytes.reveal(), profile.file_prefix);
  if (!files.ok()) {
    return absl::Status(files.status().code(), absl::StrCat(files.status().message(), " (version ",
                                                            value.version_id, ")"));
  }
  credential.files = *std::move(files);
  return credential;
}

}  // namespace credsync::fetch
