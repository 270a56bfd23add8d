#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/common/secret.h"
#include "tests/emulator/world.h"

namespace credsync::emulator {

// An application access point's client key, as a KMS instance gateway knows
// it: the id clients send in x-kms-acccesskeyid, the public key their
// signatures verify under, and what the access point's policy allows.
struct ClientKey {
  std::string key_id;  // "KAAP.<uuid>"
  std::string public_key_pem;
  std::vector<std::string> secrets;    // readable secret names, "*" for all
  std::vector<std::string> instances;  // instance ids it is valid for; empty: all
  KeyState state = KeyState::kActive;
};

// How to make one (admin API, seed). Empty fields are generated.
struct ClientKeySpec {
  std::string key_id;
  std::string password;
  // base64 PKCS#12 to import (e.g. the official SDK's test fixture) instead
  // of generating a key pair; needs `password`.
  std::string private_key_data;
  std::vector<std::string> secrets;
  std::vector<std::string> instances;
  KeyState state = KeyState::kActive;
};

// What creating a client key hands out: the console's download.
struct CreatedClientKey {
  ClientKey key;
  SecretString private_key_data;  // base64 PKCS#12
  SecretString password;
  std::string key_file;       // <files_dir>/clientKey_<id>.json, or empty
  std::string password_file;  // <files_dir>/clientKey_<id>_Password.txt, or empty
};

// The client keys of the emulated KMS instances. Thread-safe.
class ClientKeyRegistry {
 public:
  // `world` receives the issued secrets for --record-secrets; `files_dir`
  // (may be empty: no files) is where each created key's files are written,
  // 0600, atomically, as the console's two downloads.
  ClientKeyRegistry(World& world, std::string files_dir);

  // ALREADY_EXISTS for a taken id, INVALID_ARGUMENT for an id that is not
  // [A-Za-z0-9._-]+ or key data that does not open with the password.
  absl::StatusOr<CreatedClientKey> create(const ClientKeySpec& spec);
  // False if there is no such key.
  bool setState(const std::string& key_id, KeyState state);
  std::optional<ClientKey> find(const std::string& key_id) const;

 private:
  World& world_;
  const std::string files_dir_;
  mutable absl::Mutex mutex_;
  std::map<std::string, ClientKey> keys_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::emulator
