#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

// The digests, MACs and encodings the emulator's gateways check requests
// with, straight on OpenSSL's EVP layer. They are the emulator's own on
// purpose: if the gateways verified with the sidecar's helpers, a bug in
// those would sign and verify alike and pass every test. Producers of
// random ids and tokens may keep using sidecar/common; nothing that decides
// whether a request is authentic may.
namespace credsync::emulator::hashing {

// Lowercase hex of SHA-256(data): x-acs-content-sha256 and the ACS3 string
// to sign.
std::string sha256Hex(absl::string_view data);

// Base64 (standard alphabet, padded) of HMAC-SHA1(key, data): the RPC
// Signature parameter.
std::string hmacSha1Base64(absl::string_view key, absl::string_view data);

// Lowercase hex of HMAC-SHA256(key, data): the ACS3 Signature.
std::string hmacSha256Hex(absl::string_view key, absl::string_view data);

// Strict standard base64: a length that is a multiple of four, only the 64
// letters plus at most two trailing '='. nullopt for anything else.
std::optional<std::string> base64Decode(absl::string_view text);

// Equal bytes, compared in time that depends only on the length, so that a
// verifier does not tell how much of a guessed signature was right.
bool sameBytes(absl::string_view a, absl::string_view b);

}  // namespace credsync::emulator::hashing
