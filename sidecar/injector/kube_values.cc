#include "sidecar/injector/kube_values.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace credsync::injector {
namespace {

bool isLowerAlnum(char c) { return absl::ascii_isdigit(c) || absl::ascii_islower(c); }

}  // namespace

bool isQuantity(absl::string_view text) {
  if (text.empty() || text.size() > 32) return false;
  size_t i = 0;
  size_t digits = 0;
  while (i < text.size() && absl::ascii_isdigit(text[i])) ++i, ++digits;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && absl::ascii_isdigit(text[i])) ++i, ++digits;
  }
  if (digits == 0) return false;
  const absl::string_view suffix = text.substr(i);
  if (suffix.empty()) return true;
  for (const absl::string_view known :
       {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"}) {
    if (suffix == known) return true;
  }
  // A decimal exponent: e3, E-2, e+6.
  if (suffix[0] != 'e' && suffix[0] != 'E') return false;
  absl::string_view exponent = suffix.substr(1);
  if (!exponent.empty() && (exponent[0] == '+' || exponent[0] == '-')) exponent.remove_prefix(1);
  if (exponent.empty()) return false;
  for (const char c : exponent) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return true;
}

bool isDnsSubdomain(absl::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  if (!isLowerAlnum(text.front()) || !isLowerAlnum(text.back())) return false;
  for (const char c : text) {
    if (!isLowerAlnum(c) && c != '-' && c != '.') return false;
  }
  return true;
}

bool isRegionId(absl::string_view text) {
  if (text.empty() || text.size() > 40) return false;
  for (const char c : text) {
    if (!isLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

bool isImageReference(absl::string_view text) {
  if (text.empty() || text.size() > 1024) return false;
  for (const char c : text) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  return true;
}

std::string oneLine(absl::string_view text, size_t max_bytes) {
  std::string out;
  for (const char c : text.substr(0, max_bytes)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(byte, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

}  // namespace credsync::injector
