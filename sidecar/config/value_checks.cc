#include "sidecar/config/value_checks.h"

#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sidecar/common/endpoint.h"
#include "sidecar/common/name_rules.h"

namespace credsync::config::loading {
namespace {

bool isLoopbackHost(absl::string_view authority) {
  if (absl::StartsWith(authority, "[")) return absl::StartsWith(authority, "[::1]");
  const absl::string_view host = authority.substr(0, authority.find(':'));
  if (host == "localhost") return true;
  const std::vector<absl::string_view> octets = absl::StrSplit(host, '.');
  if (octets.size() != 4) return false;
  for (const absl::string_view octet : octets) {
    int value = 0;
    if (octet.empty() || octet.size() > 3 || !absl::c_all_of(octet, absl::ascii_isdigit) ||
        !absl::SimpleAtoi(octet, &value) || value > 255) {
      return false;
    }
  }
  return octets[0] == "127";
}

}  // namespace

std::string printable(absl::string_view text) {
  constexpr size_t kMax = 64;
  std::string out;
  for (const char c : text.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (text.size() > kMax) out += "...";
  return out;
}

std::string origin(const RawValue& raw, int line) {
  switch (raw.source) {
    case Source::kFile:
      return line > 0 ? absl::StrCat(" (line ", line, ")") : "";
    case Source::kEnvironment:
      return absl::StrCat(" (from ", raw.env_name, ")");
    case Source::kOverride:
      return " (from a flag)";
    case Source::kUnset:
      break;
  }
  return "";
}

absl::Status invalid(absl::string_view key, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", problem));
}

absl::Status invalid(absl::string_view key, absl::string_view problem, const RawValue& raw) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", problem, origin(raw, raw.line)));
}

bool isRegion(absl::string_view region) {
  if (region.empty() || region.size() > 64) return false;
  if (region.front() == '-' || region.back() == '-') return false;
  for (const char c : region) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
  }
  return true;
}

bool isProfileName(absl::string_view name) {
  return name.size() <= 64 && validateIniProfileName(name).ok();
}

bool hasControlOrSpace(absl::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return true;
  }
  return false;
}

absl::StatusOr<std::string> normaliseEndpoint(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return absl::InvalidArgumentError("must not be empty");
  const std::string url =
      absl::StrContains(text, "://") ? std::string(text) : absl::StrCat("https://", text);
  absl::StatusOr<Endpoint> endpoint = parseEndpoint(url);
  if (!endpoint.ok()) return endpoint.status();
  const std::string authority = absl::AsciiStrToLower(endpoint->host);
  if (endpoint->scheme == "http" && !isLoopbackHost(authority)) {
    return absl::InvalidArgumentError(
        "http:// is accepted only for localhost and 127.0.0.0/8; use https://");
  }
  return absl::StrCat(endpoint->scheme, "://", authority);
}

std::optional<bool> parseBool(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "true") return true;
  if (lower == "false") return false;
  return std::nullopt;
}

}  // namespace credsync::config::loading
