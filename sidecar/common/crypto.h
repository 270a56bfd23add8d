#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// Thin wrappers over OpenSSL for the digests, MACs and encodings that request
// signing and JWTs need. Results are raw bytes unless the name says otherwise.
namespace credsync::crypto {

std::string sha256(absl::string_view data);
std::string hmacSha256(absl::string_view key, absl::string_view data);
std::string hmacSha1(absl::string_view key, absl::string_view data);

std::string hexLower(absl::string_view bytes);
std::string base64Encode(absl::string_view bytes);
absl::StatusOr<std::string> base64Decode(absl::string_view text);
// RFC 4648 section 5 without padding, as JWTs use it.
std::string base64UrlEncode(absl::string_view bytes);
absl::StatusOr<std::string> base64UrlDecode(absl::string_view text);

// Compares without an early exit, so a verifier does not reveal how many
// leading bytes of a guess were right.
bool constantTimeEquals(absl::string_view a, absl::string_view b);

// Cryptographically random bytes from OpenSSL's DRBG.
std::string randomBytes(size_t count);
// A random RFC 4122 version 4 UUID, lowercase with dashes.
std::string randomUuid();

}  // namespace credsync::crypto
