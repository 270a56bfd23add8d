#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"
#include "tests/emulator/api_error.h"
#include "tests/emulator/secret_recorder.h"

namespace credsync::emulator {

struct OidcProvider {
  std::string arn;
  std::string issuer;
  std::vector<std::string> audiences;
};

struct Role {
  std::string arn;
  std::string oidc_provider_arn;
  // `sub` claims the trust policy admits ("*" admits any).
  std::vector<std::string> subjects;
  // Secret names a session of this role may read ("*" for all).
  std::vector<std::string> secrets;
  int64_t max_session_duration_seconds = 3600;
};

enum class KeyState { kActive, kDisabled };

// A permanent RAM-user AccessKey.
struct AccessKey {
  std::string id;
  SecretString secret;
  std::vector<std::string> secrets;
  KeyState state = KeyState::kActive;
};

// Temporary credentials issued by AssumeRoleWithOIDC.
struct Session {
  std::string access_key_id;
  SecretString secret;
  SecretString security_token;
  absl::Time expiration;
  std::string role_arn;
};

struct SecretVersion {
  std::string version_id;
  std::string access_key_id;  // RAMCredentials
  SecretString access_key_secret;
  // Generic: SecretData as KMS returns it (base64 for data type "binary").
  SecretString data;
  absl::Time created;
  std::vector<std::string> stages;
};

inline constexpr char kSecretTypeRamCredentials[] = "RAMCredentials";
inline constexpr char kSecretTypeGeneric[] = "Generic";

// A RAMCredentials secret (the AccessKey pairs KMS rotates for a RAM user),
// or a Generic one (a value the user stores and puts new versions of).
struct Secret {
  std::string name;
  std::string type = kSecretTypeRamCredentials;
  std::string data_type = "text";  // Generic: "text" or "binary", fixed at creation
  std::string user_name;
  int64_t rotation_interval_seconds = 604800;
  absl::Time create_time;
  absl::Time last_rotation;
  absl::Time next_rotation;
  // Oldest first. RAMCredentials: the last is ACSCurrent. Generic: every
  // version put is kept (readable by VersionId); stages move as in KMS.
  std::vector<SecretVersion> versions;
};

// Who signed a request: a permanent key or an STS session.
struct Principal {
  std::string access_key_id;
  SecretString secret;
  bool is_session = false;
  SecretString security_token;       // sessions only
  absl::Time session_expiration;     // sessions only
  std::vector<std::string> secrets;  // what it may read
};

// What looking up an AccessKeyId found.
struct KeyLookup {
  enum class Kind { kNotFound, kDisabled, kActive } kind = Kind::kNotFound;
  Principal principal;
};

struct RotationResult {
  std::string version_id;
  std::string access_key_id;
  SecretString access_key_secret;
  std::string previous_access_key_id;
};

// The emulator's account: providers, roles, keys, sessions, secrets and the
// replay cache of signature nonces. Thread-safe; every method takes the lock.
class World {
 public:
  World(const TimeSource& time_source, std::string account_id, std::string region);

  const std::string& accountId() const { return account_id_; }
  const std::string& region() const { return region_; }
  absl::Time now() const;
  // Skews the emulator's clock against the real one (clock-skew tests).
  void setClockOffset(absl::Duration offset);

  void addOidcProvider(OidcProvider provider);
  std::optional<OidcProvider> findOidcProvider(const std::string& arn) const;
  void addRole(Role role);
  std::optional<Role> findRole(const std::string& arn) const;

  // Creates a key; empty id/secret are generated.
  AccessKey addAccessKey(std::string id, std::string secret, std::vector<std::string> secrets);
  bool setKeyState(const std::string& id, KeyState state);
  bool revokeKey(const std::string& id);
  KeyLookup lookupKey(const std::string& id) const;

  Session issueSession(const Role& role, absl::Duration duration);

  // Creates a RAMCredentials secret with a first version (a new key pair).
  absl::StatusOr<SecretVersion> createSecret(const std::string& name, const std::string& user_name,
                                             int64_t rotation_interval_seconds,
                                             std::optional<absl::Duration> next_rotation_in);
  std::optional<Secret> findSecret(const std::string& name) const;
  // Creates a Generic secret whose first version holds `data` (for
  // data_type "binary", base64 text, as CreateSecret takes it).
  // INVALID_ARGUMENT for a bad data type or base64; ALREADY_EXISTS.
  absl::StatusOr<SecretVersion> createGenericSecret(const std::string& name, std::string data,
                                                    const std::string& data_type,
                                                    const std::string& version_id = "");
  // PutSecretValue: a new version of a Generic secret becomes ACSCurrent, the
  // previous ACSCurrent becomes ACSPrevious, and the one before loses its
  // stage (it stays readable by VersionId). A version id already used is
  // ALREADY_EXISTS; NOT_FOUND without the secret; FAILED_PRECONDITION for a
  // RAMCredentials secret (KMS rotates those itself).
  absl::StatusOr<SecretVersion> putSecretValue(const std::string& name, std::string data,
                                               const std::string& version_id = "");
  // RAMCredentials only (FAILED_PRECONDITION for Generic).
  // A new key becomes ACSCurrent, the old one ACSPrevious, and the one before
  // that is deleted (a RAM user holds at most two keys). A caller-chosen
  // version id names the new version; if that version already exists the
  // call changes nothing and describes it (KMS ignores repeated rotations).
  absl::StatusOr<RotationResult> rotateSecret(const std::string& name, bool revoke_previous,
                                              const std::string& version_id = "");

  // Records a nonce; false if it was seen within the replay window.
  bool recordNonce(const std::string& access_key_id, const std::string& nonce);

  // Test-only: every secret created from now on (keys, rotated keys, STS
  // secrets and tokens) is also given to `recorder`, which must outlive the
  // World. nullptr turns recording off.
  void setSecretRecorder(SecretRecorder* recorder);
  // Gives a secret issued outside the world (an ECS metadata token) to the
  // recorder, if one is set.
  void recordIssuedSecret(absl::string_view kind, absl::string_view secret);

 private:
  std::string newKeyId(absl::string_view prefix) const;
  SecretVersion newVersionLocked(std::string version_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // A Generic version; records the value (and, for JSON, its strings).
  SecretVersion newGenericVersionLocked(std::string version_id, std::string data,
                                        const std::string& data_type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const TimeSource& time_source_;
  const std::string account_id_;
  const std::string region_;

  mutable absl::Mutex mutex_;
  absl::Duration clock_offset_ ABSL_GUARDED_BY(mutex_) = absl::ZeroDuration();
  std::map<std::string, OidcProvider> providers_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, Role> roles_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, AccessKey> keys_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, Session> sessions_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, Secret> secrets_ ABSL_GUARDED_BY(mutex_);
  // Nonces seen in the replay window, and the same in arrival order for expiry.
  std::set<std::string> nonces_ ABSL_GUARDED_BY(mutex_);
  std::deque<std::pair<absl::Time, std::string>> nonce_order_ ABSL_GUARDED_BY(mutex_);
  int64_t version_counter_ ABSL_GUARDED_BY(mutex_) = 0;
  SecretRecorder* secret_recorder_ ABSL_GUARDED_BY(mutex_) = nullptr;
};

}  // namespace credsync::emulator
