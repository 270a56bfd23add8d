#include "tests/emulator/pop_signature.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/emulator/hashing.h"

namespace credsync::emulator::pop {
namespace {

// "a=1&b=2" with names and values encoded, in ParamMap (byte) order.
std::string encodedPairs(const ParamMap& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    absl::StrAppend(&out, rfc3986Encode(name), "=", rfc3986Encode(value));
  }
  return out;
}

}  // namespace

std::string rpcStringToSign(absl::string_view method, const ParamMap& params) {
  ParamMap signed_params = params;
  signed_params.erase("Signature");
  return absl::StrCat(method, "&", rfc3986Encode("/"), "&",
                      rfc3986Encode(encodedPairs(signed_params)));
}

std::string rpcExpectedSignature(absl::string_view access_key_secret,
                                 absl::string_view string_to_sign) {
  return hashing::hmacSha1Base64(absl::StrCat(access_key_secret, "&"), string_to_sign);
}

absl::StatusOr<Acs3Authorization> parseAcs3Authorization(absl::string_view header) {
  const std::pair<absl::string_view, absl::string_view> head_and_parts =
      absl::StrSplit(absl::StripAsciiWhitespace(header), absl::MaxSplits(' ', 1));
  if (head_and_parts.first.empty() || head_and_parts.second.empty()) {
    return absl::InvalidArgumentError(
        "expected '<algorithm> Credential=<id>,SignedHeaders=<names>,Signature=<hex>'");
  }
  // The three parts by name, in any order, each once.
  std::map<absl::string_view, absl::string_view> parts = {
      {"Credential", {}}, {"SignedHeaders", {}}, {"Signature", {}}};
  std::set<absl::string_view> given;
  for (absl::string_view part : absl::StrSplit(head_and_parts.second, ',')) {
    const std::pair<absl::string_view, absl::string_view> name_value =
        absl::StrSplit(absl::StripAsciiWhitespace(part), absl::MaxSplits('=', 1));
    if (part.find('=') == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", part, "' is not name=value"));
    }
    auto slot = parts.find(name_value.first);
    if (slot == parts.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown part '", name_value.first, "'"));
    }
    if (!given.insert(slot->first).second) {
      return absl::InvalidArgumentError(absl::StrCat(slot->first, " given twice"));
    }
    slot->second = name_value.second;
  }
  for (absl::string_view required : {"Credential", "Signature"}) {
    if (parts[required].empty()) return absl::InvalidArgumentError(absl::StrCat("no ", required));
  }
  if (given.count("SignedHeaders") == 0) return absl::InvalidArgumentError("no SignedHeaders");

  Acs3Authorization authorization;
  authorization.algorithm = std::string(head_and_parts.first);
  authorization.access_key_id = std::string(parts["Credential"]);
  authorization.signature = std::string(parts["Signature"]);
  const absl::string_view names = parts["SignedHeaders"];
  if (!names.empty()) {
    for (absl::string_view name : absl::StrSplit(names, ';')) {
      if (name.empty()) return absl::InvalidArgumentError("SignedHeaders lists an empty name");
      authorization.signed_headers.push_back(absl::AsciiStrToLower(name));
    }
  }
  return authorization;
}

std::string acs3CanonicalRequest(const ApiRequest& request,
                                 const std::vector<std::string>& signed_headers,
                                 absl::string_view payload_hash) {
  std::string headers_block;
  for (const std::string& signed_name : signed_headers) {
    std::vector<std::string> values;
    for (const auto& [name, value] : request.headers) {
      if (name == signed_name) values.emplace_back(absl::StripAsciiWhitespace(value));
    }
    std::sort(values.begin(), values.end());
    absl::StrAppend(&headers_block, signed_name, ":", absl::StrJoin(values, ","), "\n");
  }
  return absl::StrCat(request.method, "\n", request.path.empty() ? "/" : request.path, "\n",
                      encodedPairs(request.query), "\n", headers_block, "\n",
                      absl::StrJoin(signed_headers, ";"), "\n", payload_hash);
}

std::string acs3StringToSign(absl::string_view canonical_request) {
  return absl::StrCat(kAcs3Algorithm, "\n", hashing::sha256Hex(canonical_request));
}

std::string acs3ExpectedSignature(absl::string_view access_key_secret,
                                  absl::string_view string_to_sign) {
  return hashing::hmacSha256Hex(access_key_secret, string_to_sign);
}

bool signatureMatches(absl::string_view expected, absl::string_view sent) {
  return !expected.empty() && hashing::sameBytes(expected, sent);
}

}  // namespace credsync::emulator::pop
