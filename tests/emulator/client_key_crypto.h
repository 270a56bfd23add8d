#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/secret.h"

// The cryptography of KMS instance client keys (application access points):
// the PKCS#12 the console hands out, and the request signature of the
// instance API "dkms-gcs-0.2". The wire facts and their sources are in
// docs/research/kms-instance-api.md (§3 signature, §4 vectors, §7 key file).
namespace credsync::emulator {

// A client key as the console issues it, plus what the emulator keeps.
struct IssuedClientKey {
  std::string key_id;             // "KAAP.<uuid>"
  SecretString private_key_data;  // base64 PKCS#12, the file's PrivateKeyData
  SecretString password;          // the PKCS#12 password (clientKey_<id>_Password.txt)
  SecretString private_key_pem;   // PKCS#8 PEM of the RSA key, for --record-secrets
  std::string public_key_pem;     // SubjectPublicKeyInfo PEM: what the gateway verifies with
  std::string certificate_pem;    // the self-signed certificate inside the PKCS#12
};

// Generates a client key like the console's (research §4.1): a 2048-bit RSA
// key and a self-signed certificate (CN=<key_id>, OU=Aliyun, O=Alibaba,
// L=Hangzhou, ST=Zhejiang, C=CN, 5 years), packed as PKCS#12 with the key in
// a shrouded key bag (pbeWithSHA1And3-KeyTripleDES-CBC, 2048 iterations), the
// certificate in an encrypted-data bag (pbeWithSHA1And40BitRC2-CBC, 2048
// iterations; RC2 comes from OpenSSL's legacy provider, loaded into a private
// library context so the rest of the process keeps the default algorithms)
// and a SHA-1 MAC (1 iteration). An empty password generates one (24 random
// base64url characters). INTERNAL when OpenSSL fails, e.g. without the
// legacy provider.
absl::StatusOr<IssuedClientKey> generateClientKey(const std::string& key_id,
                                                  const std::string& password);

// Opens a client key's PrivateKeyData (base64 PKCS#12) with its password, as
// the SDKs do, and returns it with key_id empty. The MAC is checked; only the
// key bag is decrypted (3DES, default provider), the RC2 certificate bag is
// skipped, so this works without the legacy provider. INVALID_ARGUMENT for
// bad base64, a wrong password or no RSA key inside.
absl::StatusOr<IssuedClientKey> openClientKey(absl::string_view private_key_data,
                                              const std::string& password);

// The instance API's string to sign (research §3), rebuilt from a request's
// headers (names lowercased; the first value of each name counts):
//   METHOD \n content-sha256 \n content-type \n date \n
//   for each x-kms-* header sorted by name: name ":" trimmed value \n
//   "/"
std::string dkmsStringToSign(absl::string_view method,
                             const std::multimap<std::string, std::string>& lowercase_headers);

// RSASSA-PKCS1-v1_5 with SHA-256 over `string_to_sign`, base64: what follows
// "Bearer " in the SDKs' Authorization header. For tests and tools.
absl::StatusOr<std::string> dkmsSign(const SecretString& private_key_pem,
                                     absl::string_view string_to_sign);

// True when `signature` (raw bytes) is a valid RSASSA-PKCS1-v1_5 SHA-256
// signature of `string_to_sign` under `public_key_pem`.
bool dkmsVerify(const std::string& public_key_pem, absl::string_view string_to_sign,
                absl::string_view signature);

}  // namespace credsync::emulator
