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

bool isLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  if (host == "::1" || host == "[::1]") return true;
  // Exactly four decimal octets, the first 127, none with a leading zero
  // (which some resolvers read as octal).
  int octets = 0;
  int first = -1;
  for (absl::string_view rest = host; octets < 4;) {
    const size_t dot = rest.find('.');
    const absl::string_view part = rest.substr(0, dot);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return false;
    int value = 0;
    for (const char c : part) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
      value = value * 10 + (c - '0');
    }
    if (value > 255) return false;
    if (octets == 0) first = value;
    ++octets;
    if (dot == absl::string_view::npos) {
      rest = {};
      break;
    }
    rest.remove_prefix(dot + 1);
    if (octets == 4) return false;  // a fifth part
  }
  return octets == 4 && first == 127;
}

absl::string_view authorityHost(absl::string_view authority) {
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    return close == absl::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  const size_t colon = authority.find(':');
  return colon == absl::string_view::npos ? authority : authority.substr(0, colon);
}

}  // namespace credsync
