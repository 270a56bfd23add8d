#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/secret.h"

namespace credsync::output {

struct IniProfile {
  std::string name;  // section name; the default profile is passed as "default"
  std::string access_key_id;
  SecretString access_key_secret;
};

// Renders credentials.ini as every official SDK reads it (Go ini.v1, Python
// configparser, Java's own parser, Node's `ini`): per profile, in the order
// given, separated by one blank line,
//   [name]
//   enable = true
//   type = access_key
//   access_key_id = ...
//   access_key_secret = ...
// Refuses (INVALID_ARGUMENT naming the profile and field, never the value)
// an empty list, names that validateIniProfileName() (common/name_rules.h)
// refuses or that are duplicated, and values that any of those parsers would
// read differently: empty, surrounding whitespace, control characters,
// non-ASCII bytes (Java's FileReader and Python decode with the platform
// charset, and they trim Unicode spaces differently), any of
// # ; % [ ] = " ' \ ` (comments, interpolation, quoting, go-ini's backtick
// and """ quoting), and the literals true, false and null (Node's `ini`
// turns them into non-strings).
absl::StatusOr<SecretString> renderCredentialsIni(const std::vector<IniProfile>& profiles);

// Whether renderCredentialsIni() would accept this key for `profile`: the
// same checks, so a fetch can refuse a key the file cannot hold before it
// replaces the last good one (INVALID_ARGUMENT naming the field, never the
// value).
absl::Status validateIniCredential(absl::string_view profile, absl::string_view access_key_id,
                                   const SecretString& access_key_secret);

// Reads section `profile`'s access_key_id from credentials.ini text, as the
// SDK parsers read what renderCredentialsIni() writes: lines trimmed, `#` and
// `;` lines skipped, `[name]` opens a section, `key = value` with the spaces
// around `=` dropped. NOT_FOUND when the section or the key is missing,
// INVALID_ARGUMENT when the section or the key appears twice. Errors name
// the profile and the key only: the text holds secrets.
absl::StatusOr<std::string> readIniAccessKeyId(absl::string_view text, absl::string_view profile);

}  // namespace credsync::output
