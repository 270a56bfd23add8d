#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/secret.h"

// openssl/types.h's EVP_PKEY, declared here so the header does not pull
// OpenSSL into every includer (OpenSSL is a private dependency).
struct evp_pkey_st;

// A KMS instance application access point's client key: the KeyId and the
// RSA private key that signs instance API requests (RSASSA-PKCS1-v1_5 with
// SHA-256). The console hands it out once as clientKey_<KeyId>.json,
// {"KeyId": "KAAP.…", "PrivateKeyData": "<base64 PKCS#12>"}, with the
// PKCS#12 password in a separate file. docs/research/kms-instance-api.md §4, §7.
namespace credsync::alibaba {

// Holds the private key; movable, not copyable. Printing it shows the KeyId
// only. sign() is const and thread-safe (OpenSSL 3 keys are safe for
// concurrent signing).
class ClientKey {
 public:
  // Loads `client_key_file` (the console's JSON) and opens its PKCS#12 with
  // `password`. Errors are INVALID_ARGUMENT (PERMISSION_DENIED / NOT_FOUND
  // for an unreadable or missing file), one line
  // "client key <path>: <problem>": not JSON, KeyId missing, PrivateKeyData
  // not base64, not PKCS#12, wrong password, no private key, not RSA. Never
  // quotes key material.
  static absl::StatusOr<ClientKey> loadFile(const std::string& client_key_file,
                                            const SecretString& password);
  // The same, from the JSON text; `origin` names it in errors.
  static absl::StatusOr<ClientKey> fromJson(absl::string_view json, const SecretString& password,
                                            absl::string_view origin);
  // A PEM RSA private key (PKCS#1 or PKCS#8, unencrypted), as the official
  // SDKs' "privateKey" option accepts; for tests and the Java SDK's vector.
  static absl::StatusOr<ClientKey> fromPrivateKeyPemForTest(std::string key_id,
                                                            const SecretString& pem);

  ClientKey(ClientKey&&) noexcept;
  ClientKey& operator=(ClientKey&&) noexcept;
  ClientKey(const ClientKey&) = delete;
  ClientKey& operator=(const ClientKey&) = delete;
  ~ClientKey();

  // The x-kms-acccesskeyid header value, "KAAP.…".
  const std::string& keyId() const { return key_id_; }
  // Base64 (standard, padded) RSASSA-PKCS1-v1_5 SHA-256 signature of
  // `string_to_sign`; deterministic. INTERNAL if OpenSSL fails.
  absl::StatusOr<std::string> sign(absl::string_view string_to_sign) const;

 private:
  struct KeyDeleter {
    void operator()(evp_pkey_st* key) const;
  };
  ClientKey(std::string key_id, evp_pkey_st* key);

  std::string key_id_;
  std::unique_ptr<evp_pkey_st, KeyDeleter> key_;
};

inline std::ostream& operator<<(std::ostream& os, const ClientKey& key) {
  return os << "ClientKey{" << key.keyId() << ", ***}";
}

// Where the PKCS#12 password comes from: exactly one of a file and an
// environment variable.
struct ClientKeyPasswordSource {
  // A file whose content, without surrounding whitespace and newlines (as
  // the official clients strip it), is the password.
  std::string file;
  // The name of an environment variable holding the password: the documented
  // meaning of the secrets-manager clients' passwordFromEnvVariable (not the
  // double indirection their code also implements).
  std::string env_variable;
};

using EnvironmentLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Reads the password. Errors name the file or the variable, never the
// value: NOT_FOUND / PERMISSION_DENIED for the file, INVALID_ARGUMENT for an
// unset or empty variable or both/neither source set.
absl::StatusOr<SecretString> readClientKeyPassword(const ClientKeyPasswordSource& source,
                                                   const EnvironmentLookup& env);

// What the sidecar calls at startup for each KMS instance: the password,
// then the key. One-line errors meant to be fatal.
absl::StatusOr<ClientKey> loadClientKey(const std::string& client_key_file,
                                        const ClientKeyPasswordSource& password,
                                        const EnvironmentLookup& env);

}  // namespace credsync::alibaba
