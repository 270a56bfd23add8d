#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/emulator/oidc_issuer.h"

namespace credsync::emulator {

// Test-only: a sink for every secret the emulator issues or stores, so the
// secret-hygiene e2e test (tests/e2e/hygiene) can look for each of them in
// credsync's logs. Enabled by `credsync-emulator --record-secrets FILE`; off
// by default, because the file holds the secrets in clear.
//
// Kinds: "access_key_secret" (a RAM user key created by the admin API or the
// seed), "secret_version_access_key_secret" (a RAMCredentials secret's key,
// created or rotated), "sts_access_key_secret", "sts_security_token",
// "oidc_token" (a minted JWT), "oidc_token_signature" (its signature part),
// "metadata_token" (an ECS metadata token); for KMS instance client keys
// "client_key_private_key_data" (the base64 PKCS#12), "client_key_password"
// and "client_key_private_key" (the RSA key's PEM body on one line); and for
// Generic secrets "generic_secret_data" (each value put),
// "generic_secret_data_decoded" (a binary value's bytes) and
// "generic_secret_json_value" (each string of a JSON object value).
//
// Thread-safe; record() may be called with the World's lock held, so an
// implementation must not call back into the World.
class SecretRecorder {
 public:
  virtual ~SecretRecorder() = default;
  virtual void record(absl::string_view kind, absl::string_view secret) = 0;
};

// Appends one JSON line {"kind": K, "secret": S} per secret to `path`
// (created 0600 if missing), each with a single write(2) so that a killed
// emulator leaves only whole lines. Empty secrets are skipped.
absl::StatusOr<std::unique_ptr<SecretRecorder>> makeFileSecretRecorder(const std::string& path);

// An issuer that mints and verifies through `inner`, and records every token
// it mints ("oidc_token") and the token's signature ("oidc_token_signature").
std::unique_ptr<OidcIssuer> makeRecordingOidcIssuer(std::unique_ptr<OidcIssuer> inner,
                                                    SecretRecorder& recorder);

}  // namespace credsync::emulator
