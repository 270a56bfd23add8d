#include "sidecar/alibaba/signature.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sidecar/common/crypto.h"
#include "sidecar/common/secret.h"

namespace credsync::alibaba {
namespace {

bool isUnreserved(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percentEncode(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (isUnreserved(byte)) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0x0f]);
    }
  }
  return out;
}

absl::StatusOr<std::string> percentDecode(absl::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= text.size()) {
        return absl::InvalidArgumentError("truncated percent escape");
      }
      const int high = hexValue(text[i + 1]);
      const int low = hexValue(text[i + 2]);
      if (high < 0 || low < 0) return absl::InvalidArgumentError("invalid percent escape");
      out.push_back(static_cast<char>((high << 4) | low));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<Params> parseQueryString(absl::string_view text) {
  Params params;
  for (const absl::string_view pair : absl::StrSplit(text, '&')) {
    // "a=1&&b=2" and a trailing '&' are common enough in hand-built URLs to tolerate.
    if (pair.empty()) continue;
    const size_t equals = pair.find('=');
    const absl::string_view raw_name = pair.substr(0, equals);
    const absl::string_view raw_value =
        equals == absl::string_view::npos ? absl::string_view() : pair.substr(equals + 1);
    auto name = percentDecode(raw_name, /*plus_is_space=*/true);
    if (!name.ok()) return name.status();
    auto value = percentDecode(raw_value, /*plus_is_space=*/true);
    if (!value.ok()) return value.status();
    params[*std::move(name)] = *std::move(value);
  }
  return params;
}

std::string canonicalQueryString(const Params& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    absl::StrAppend(&out, percentEncode(name), "=", percentEncode(value));
  }
  return out;
}

namespace rpc {

std::string stringToSign(absl::string_view method, const Params& params) {
  Params signed_params = params;
  signed_params.erase("Signature");
  return absl::StrCat(method, "&", percentEncode("/"), "&",
                      percentEncode(canonicalQueryString(signed_params)));
}

std::string signature(absl::string_view method, const Params& params,
                      absl::string_view access_key_secret) {
  std::string key = absl::StrCat(access_key_secret, "&");
  std::string mac = crypto::hmacSha1(key, stringToSign(method, params));
  // The key is the secret itself; do not leave a copy behind on the heap.
  wipeString(key);
  return crypto::base64Encode(mac);
}

}  // namespace rpc

namespace acs3 {

CanonicalRequest canonicalRequest(const CanonicalRequestInput& input) {
  std::vector<std::string> segments = absl::StrSplit(input.path, '/');
  for (std::string& segment : segments) segment = percentEncode(segment);
  const std::string canonical_uri = absl::StrJoin(segments, "/");

  // Lowercased name -> trimmed values; std::map orders names bytewise.
  std::map<std::string, std::vector<std::string>> merged;
  for (const auto& [name, value] : input.headers) {
    merged[absl::AsciiStrToLower(name)].emplace_back(absl::StripAsciiWhitespace(value));
  }
  std::string canonical_headers;
  std::vector<absl::string_view> names;
  names.reserve(merged.size());
  for (auto& [name, values] : merged) {
    std::sort(values.begin(), values.end());
    absl::StrAppend(&canonical_headers, name, ":", absl::StrJoin(values, ","), "\n");
    names.push_back(name);
  }

  CanonicalRequest result;
  result.signed_headers = absl::StrJoin(names, ";");
  result.text =
      absl::StrCat(input.method, "\n", canonical_uri, "\n", canonicalQueryString(input.query), "\n",
                   canonical_headers, "\n", result.signed_headers, "\n", input.hashed_payload);
  return result;
}

std::string stringToSign(absl::string_view canonical_request) {
  return absl::StrCat(kAlgorithm, "\n", crypto::hexLower(crypto::sha256(canonical_request)));
}

std::string signature(absl::string_view access_key_secret, absl::string_view string_to_sign) {
  return crypto::hexLower(crypto::hmacSha256(access_key_secret, string_to_sign));
}

std::string authorizationHeader(absl::string_view access_key_id, absl::string_view signed_headers,
                                absl::string_view signature) {
  return absl::StrCat(kAlgorithm, " Credential=", access_key_id, ",SignedHeaders=", signed_headers,
                      ",Signature=", signature);
}

absl::StatusOr<Authorization> parseAuthorizationHeader(absl::string_view header) {
  header = absl::StripAsciiWhitespace(header);
  const size_t space = header.find(' ');
  if (space == absl::string_view::npos || space == 0) {
    return absl::InvalidArgumentError(
        "Authorization must be '<algorithm> Credential=...,SignedHeaders=...,Signature=...'");
  }
  Authorization result;
  result.algorithm = std::string(header.substr(0, space));

  bool has_credential = false;
  bool has_signed_headers = false;
  bool has_signature = false;
  for (absl::string_view part : absl::StrSplit(header.substr(space + 1), ',')) {
    part = absl::StripAsciiWhitespace(part);
    const size_t equals = part.find('=');
    if (equals == absl::string_view::npos) {
      return absl::InvalidArgumentError("Authorization has a part without '='");
    }
    const absl::string_view key = absl::StripAsciiWhitespace(part.substr(0, equals));
    const absl::string_view value = absl::StripAsciiWhitespace(part.substr(equals + 1));
    bool* seen = nullptr;
    if (key == "Credential") {
      seen = &has_credential;
      result.access_key_id = std::string(value);
    } else if (key == "SignedHeaders") {
      seen = &has_signed_headers;
      result.signed_headers.clear();
      if (!value.empty()) {
        for (const absl::string_view name : absl::StrSplit(value, ';')) {
          if (name.empty()) {
            return absl::InvalidArgumentError("Authorization SignedHeaders has an empty name");
          }
          result.signed_headers.push_back(absl::AsciiStrToLower(name));
        }
      }
    } else if (key == "Signature") {
      seen = &has_signature;
      result.signature = std::string(value);
    } else {
      return absl::InvalidArgumentError(
          "Authorization has a part other than Credential, SignedHeaders and Signature");
    }
    if (*seen) return absl::InvalidArgumentError(absl::StrCat("Authorization repeats ", key));
    *seen = true;
  }
  if (!has_credential || result.access_key_id.empty()) {
    return absl::InvalidArgumentError("Authorization is missing Credential");
  }
  if (!has_signed_headers)
    return absl::InvalidArgumentError("Authorization is missing SignedHeaders");
  if (!has_signature || result.signature.empty()) {
    return absl::InvalidArgumentError("Authorization is missing Signature");
  }
  return result;
}

}  // namespace acs3
}  // namespace credsync::alibaba
