#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sidecar/alibaba/kms_client.h"
#include "sidecar/common/secret.h"
#include "sidecar/config/config.h"
#include "sidecar/fetch/secret_source.h"

// What a GetSecretValue answer becomes for a profile: the AccessKey pair of a
// RAM credentials profile, or the files of a generic one. Errors are
// INVALID_ARGUMENT (not retryable: the same version gives the same answer),
// name what is wrong, and never quote SecretData.
namespace credsync::fetch {

// The most files one json_keys profile may produce.
inline constexpr size_t kMaxJsonKeysFiles = 1000;

// Converts `value` as `profile` asks:
// - ram_credentials: alibaba::parseRamCredentials (SecretType RAMCredentials,
//   strict JSON);
// - generic, any SecretType: SecretData as bytes (SecretDataType "binary":
//   base64-decoded; "text" or absent: as is), then for format raw one file
//   named profile.file, and for json_keys splitJsonKeys(bytes, file_prefix).
absl::StatusOr<ManagedCredential> toManagedCredential(const alibaba::SecretValue& value,
                                                      const config::ProfileConfig& profile,
                                                      const std::string& endpoint);

// Splits a JSON object into files: one per top-level key, named
// `<file_prefix><key>`. A string value is written as its UTF-8 text (no
// quotes); any other value as compact JSON. Refuses (naming the key, never a
// value) anything but an object of 1 to kMaxJsonKeysFiles keys, a key that
// appears twice, and a key that does not make a file name (1 or more of
// A-Z a-z 0-9 . _ -, the whole name at most 255 bytes). Copies of values it
// parsed are wiped. Exposed for tests and fuzzing.
absl::StatusOr<std::map<std::string, SecretString>> splitJsonKeys(absl::string_view json,
                                                                  absl::string_view file_prefix);

}  // namespace credsync::fetch
