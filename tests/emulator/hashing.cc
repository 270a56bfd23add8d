#include "tests/emulator/hashing.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

namespace credsync::emulator::hashing {
namespace {

const unsigned char* bytesOf(absl::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

std::string toHex(const unsigned char* bytes, size_t length) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (size_t i = 0; i < length; ++i) {
    hex.push_back(kDigits[bytes[i] >> 4]);
    hex.push_back(kDigits[bytes[i] & 0x0f]);
  }
  return hex;
}

// HMAC through OpenSSL 3's one-shot MAC API. An empty result (OpenSSL
// failed) never equals a real MAC, so callers need not tell it apart.
std::string hmac(const char* digest, absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t length = 0;
  // A zero-length key still needs a valid pointer.
  static const unsigned char kNoKey[1] = {0};
  const unsigned char* key_bytes = key.empty() ? kNoKey : bytesOf(key);
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, digest, nullptr, key_bytes, key.size(), bytesOf(data),
                data.size(), out, sizeof(out), &length) == nullptr) {
    ERR_clear_error();
    return "";
  }
  return std::string(reinterpret_cast<const char*>(out), length);
}

}  // namespace

std::string sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  size_t length = 0;
  if (EVP_Q_digest(nullptr, "SHA256", nullptr, data.data(), data.size(), digest, &length) != 1) {
    ERR_clear_error();
    return "";
  }
  return toHex(digest, length);
}

std::string hmacSha1Base64(absl::string_view key, absl::string_view data) {
  const std::string mac = hmac("SHA1", key, data);
  if (mac.empty()) return "";
  std::string encoded(4 * ((mac.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                      bytesOf(mac), static_cast<int>(mac.size()));
  encoded.resize(written > 0 ? static_cast<size_t>(written) : 0);
  return encoded;
}

std::string hmacSha256Hex(absl::string_view key, absl::string_view data) {
  const std::string mac = hmac("SHA256", key, data);
  return toHex(bytesOf(mac), mac.size());
}

std::optional<std::string> base64Decode(absl::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (c == '=') {
      ++padding;
    } else if (!letter || padding > 0) {
      return std::nullopt;  // a letter after '=', or not base64 at all
    }
  }
  if (padding > 2) return std::nullopt;
  if (text.empty()) return std::string();
  std::string decoded(text.size() / 4 * 3, '\0');
  const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                      bytesOf(text), static_cast<int>(text.size()));
  if (written < 0) return std::nullopt;
  // EVP_DecodeBlock counts the zero bytes that stand for '=' padding.
  decoded.resize(static_cast<size_t>(written) - padding);
  return decoded;
}

bool sameBytes(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace credsync::emulator::hashing
