#include "tests/emulator/url_encoding.h"

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"

namespace credsync::emulator {
namespace {

bool isUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

std::optional<int> hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return std::nullopt;
}

absl::StatusOr<std::string> formDecode(absl::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      decoded.push_back(' ');
    } else if (text[i] != '%') {
      decoded.push_back(text[i]);
    } else {
      const std::optional<int> high = i + 1 < text.size() ? hexValue(text[i + 1]) : std::nullopt;
      const std::optional<int> low = i + 2 < text.size() ? hexValue(text[i + 2]) : std::nullopt;
      if (!high || !low) {
        return absl::InvalidArgumentError("malformed percent-escape in query or form body");
      }
      decoded.push_back(static_cast<char>(*high * 16 + *low));
      i += 2;
    }
  }
  return decoded;
}

}  // namespace

std::string rfc3986Encode(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(text.size() * 3);
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (isUnreserved(byte)) {
      encoded.push_back(c);
    } else {
      encoded.push_back('%');
      encoded.push_back(kHex[byte >> 4]);
      encoded.push_back(kHex[byte & 0x0f]);
    }
  }
  return encoded;
}

absl::StatusOr<ParamMap> parseUrlEncoded(absl::string_view text) {
  ParamMap params;
  for (absl::string_view pair : absl::StrSplit(text, '&', absl::SkipEmpty())) {
    const std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    absl::StatusOr<std::string> name = formDecode(parts.first);
    if (!name.ok()) return name.status();
    absl::StatusOr<std::string> value = formDecode(parts.second);
    if (!value.ok()) return value.status();
    params[*std::move(name)] = *std::move(value);
  }
  return params;
}

}  // namespace credsync::emulator
