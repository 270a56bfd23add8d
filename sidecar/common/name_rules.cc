#include "sidecar/common/name_rules.h"

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace credsync {

absl::Status validateIniProfileName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("profile name is empty");
  for (const char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("profile name \"", absl::CHexEscape(name),
                       "\" may contain only letters, digits, '_' and '-' (SDK ini parsers read "
                       "other characters differently)"));
    }
  }
  if (name == "DEFAULT") {
    return absl::InvalidArgumentError(
        "profile name \"DEFAULT\" is the defaults section of Python's configparser and go-ini");
  }
  if (name == "__proto__") {
    return absl::InvalidArgumentError("profile name \"__proto__\" is dropped by Node's ini parser");
  }
  return absl::OkStatus();
}

bool isValidEcsRoleName(absl::string_view name) {
  return !name.empty() && name.size() <= 64 && absl::c_all_of(name, [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool isRamArn(absl::string_view arn, absl::string_view kind) {
  if (!absl::ConsumePrefix(&arn, "acs:ram::")) return false;
  const size_t colon = arn.find(':');
  if (colon == 0 || colon == absl::string_view::npos) return false;
  for (const char c : arn.substr(0, colon)) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  absl::string_view name = arn.substr(colon + 1);
  if (!absl::ConsumePrefix(&name, kind) || name.empty() || name.size() > 256) return false;
  for (const char c : name) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("._-@/+=,", c)) return false;
  }
  return true;
}

bool isListenAddress(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return false;
  const absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  if (host.empty() || port.empty() || port.size() > 5) return false;
  for (const char c : host) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  const bool bracketed = absl::StartsWith(host, "[");
  if (bracketed ? !absl::EndsWith(host, "]") : absl::StrContains(host, ':')) return false;
  int number = 0;
  for (const char c : port) {
    if (!absl::ascii_isdigit(c)) return false;
    number = number * 10 + (c - '0');
  }
  return number <= 65535;
}

}  // namespace credsync
