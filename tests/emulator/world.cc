#include "tests/emulator/world.h"

#include <algorithm>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/crypto.h"

namespace credsync::emulator {
namespace {

// Nonces and timestamps are honoured for 15 minutes, as the POP gateway does.
constexpr absl::Duration kReplayWindow = absl::Minutes(15);

std::string randomAlphanumeric(size_t length) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const std::string bytes = crypto::randomBytes(length);
  std::string out;
  out.reserve(length);
  for (unsigned char byte : bytes) out.push_back(kAlphabet[byte % (sizeof(kAlphabet) - 1)]);
  return out;
}

Principal principalFromKey(const AccessKey& key) {
  Principal principal;
  principal.access_key_id = key.id;
  principal.secret = key.secret;
  principal.secrets = key.secrets;
  return principal;
}

}  // namespace

World::World(const TimeSource& time_source, std::string account_id, std::string region)
    : time_source_(time_source), account_id_(std::move(account_id)), region_(std::move(region)) {}

absl::Time World::now() const {
  absl::MutexLock lock(&mutex_);
  return time_source_.systemTime() + clock_offset_;
}

void World::setClockOffset(absl::Duration offset) {
  absl::MutexLock lock(&mutex_);
  clock_offset_ = offset;
}

void World::setSecretRecorder(SecretRecorder* recorder) {
  absl::MutexLock lock(&mutex_);
  secret_recorder_ = recorder;
}

void World::recordIssuedSecret(absl::string_view kind, absl::string_view secret) {
  absl::MutexLock lock(&mutex_);
  if (secret_recorder_) secret_recorder_->record(kind, secret);
}

void World::addOidcProvider(OidcProvider provider) {
  absl::MutexLock lock(&mutex_);
  const std::string arn = provider.arn;
  providers_[arn] = std::move(provider);
}

std::optional<OidcProvider> World::findOidcProvider(const std::string& arn) const {
  absl::MutexLock lock(&mutex_);
  auto it = providers_.find(arn);
  if (it == providers_.end()) return std::nullopt;
  return it->second;
}

void World::addRole(Role role) {
  absl::MutexLock lock(&mutex_);
  const std::string arn = role.arn;
  roles_[arn] = std::move(role);
}

std::optional<Role> World::findRole(const std::string& arn) const {
  absl::MutexLock lock(&mutex_);
  auto it = roles_.find(arn);
  if (it == roles_.end()) return std::nullopt;
  return it->second;
}

std::string World::newKeyId(absl::string_view prefix) const {
  return absl::StrCat(prefix, randomAlphanumeric(prefix == "STS." ? 25 : 18));
}

AccessKey World::addAccessKey(std::string id, std::string secret,
                              std::vector<std::string> secrets) {
  AccessKey key;
  key.id = id.empty() ? newKeyId("LTAI5t") : std::move(id);
  key.secret = SecretString(secret.empty() ? randomAlphanumeric(30) : std::move(secret));
  wipeString(secret);
  key.secrets = std::move(secrets);
  absl::MutexLock lock(&mutex_);
  if (secret_recorder_) secret_recorder_->record("access_key_secret", key.secret.reveal());
  keys_[key.id] = key;
  return key;
}

bool World::setKeyState(const std::string& id, KeyState state) {
  absl::MutexLock lock(&mutex_);
  auto it = keys_.find(id);
  if (it == keys_.end()) return false;
  it->second.state = state;
  return true;
}

bool World::revokeKey(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  return keys_.erase(id) > 0 || sessions_.erase(id) > 0;
}

KeyLookup World::lookupKey(const std::string& id) const {
  absl::MutexLock lock(&mutex_);
  KeyLookup lookup;
  if (auto it = keys_.find(id); it != keys_.end()) {
    lookup.kind = it->second.state == KeyState::kActive ? KeyLookup::Kind::kActive
                                                        : KeyLookup::Kind::kDisabled;
    lookup.principal = principalFromKey(it->second);
    return lookup;
  }
  if (auto it = sessions_.find(id); it != sessions_.end()) {
    const Session& session = it->second;
    lookup.kind = KeyLookup::Kind::kActive;
    lookup.principal.access_key_id = session.access_key_id;
    lookup.principal.secret = session.secret;
    lookup.principal.is_session = true;
    lookup.principal.security_token = session.security_token;
    lookup.principal.session_expiration = session.expiration;
    if (auto role = roles_.find(session.role_arn); role != roles_.end()) {
      lookup.principal.secrets = role->second.secrets;
    }
  }
  return lookup;
}

Session World::issueSession(const Role& role, absl::Duration duration) {
  Session session;
  session.access_key_id = newKeyId("STS.");
  session.secret = SecretString(randomAlphanumeric(44));
  // Real tokens are long opaque strings starting with "CAIS"; their length is
  // not capped, so clients must not assume one.
  session.security_token =
      SecretString(absl::StrCat("CAIS", crypto::base64Encode(crypto::randomBytes(420))));
  session.role_arn = role.arn;
  absl::MutexLock lock(&mutex_);
  session.expiration = time_source_.systemTime() + clock_offset_ + duration;
  if (secret_recorder_) {
    secret_recorder_->record("sts_access_key_secret", session.secret.reveal());
    secret_recorder_->record("sts_security_token", session.security_token.reveal());
  }
  sessions_[session.access_key_id] = session;
  return session;
}

SecretVersion World::newVersionLocked(std::string version_id) {
  SecretVersion version;
  ++version_counter_;
  version.version_id =
      version_id.empty() ? absl::StrFormat("%032d", version_counter_) : std::move(version_id);
  version.access_key_id = newKeyId("LTAI5t");
  version.access_key_secret = SecretString(randomAlphanumeric(30));
  if (secret_recorder_) {
    secret_recorder_->record("secret_version_access_key_secret",
                             version.access_key_secret.reveal());
  }
  version.created = time_source_.systemTime() + clock_offset_;
  AccessKey key;
  key.id = version.access_key_id;
  key.secret = version.access_key_secret;
  // The secret's own key is a RAM user's key: it calls the target service,
  // not KMS, so it may read no secrets.
  keys_[key.id] = key;
  return version;
}

absl::StatusOr<SecretVersion> World::createSecret(const std::string& name,
                                                  const std::string& user_name,
                                                  int64_t rotation_interval_seconds,
                                                  std::optional<absl::Duration> next_rotation_in) {
  absl::MutexLock lock(&mutex_);
  if (secrets_.count(name) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("secret ", name, " already exists"));
  }
  Secret secret;
  secret.name = name;
  secret.user_name = user_name;
  secret.rotation_interval_seconds = rotation_interval_seconds;
  secret.create_time = time_source_.systemTime() + clock_offset_;
  secret.last_rotation = secret.create_time;
  secret.next_rotation =
      secret.create_time + next_rotation_in.value_or(absl::Seconds(rotation_interval_seconds));
  SecretVersion version = newVersionLocked("");
  version.stages = {"ACSCurrent"};
  secret.versions.push_back(version);
  secrets_[name] = std::move(secret);
  return version;
}

SecretVersion World::newGenericVersionLocked(std::string version_id, std::string data,
                                             const std::string& data_type) {
  SecretVersion version;
  ++version_counter_;
  version.version_id =
      version_id.empty() ? absl::StrFormat("v%031d", version_counter_) : std::move(version_id);
  version.created = time_source_.systemTime() + clock_offset_;
  if (secret_recorder_) {
    // The whole value, and each string inside a JSON object (a password in
    // {"username": ..., "password": ...}), so the hygiene scan finds either.
    secret_recorder_->record("generic_secret_data", data);
    std::string plain = data;
    if (data_type == "binary") {
      absl::StatusOr<std::string> decoded = crypto::base64Decode(data);
      plain = decoded.ok() ? *decoded : "";
      secret_recorder_->record("generic_secret_data_decoded", plain);
    }
    const nlohmann::json parsed = nlohmann::json::parse(plain, nullptr, false);
    if (parsed.is_object()) {
      for (const auto& [key, value] : parsed.items()) {
        if (value.is_string()) {
          secret_recorder_->record("generic_secret_json_value", value.get<std::string>());
        }
      }
    }
  }
  version.data = SecretString(std::move(data));
  return version;
}

absl::StatusOr<SecretVersion> World::createGenericSecret(const std::string& name, std::string data,
                                                         const std::string& data_type,
                                                         const std::string& version_id) {
  if (data_type != "text" && data_type != "binary") {
    return absl::InvalidArgumentError("data_type must be text or binary");
  }
  if (data_type == "binary" && !crypto::base64Decode(data).ok()) {
    return absl::InvalidArgumentError("data of a binary secret must be base64");
  }
  absl::MutexLock lock(&mutex_);
  if (secrets_.count(name) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("secret ", name, " already exists"));
  }
  Secret secret;
  secret.name = name;
  secret.type = kSecretTypeGeneric;
  secret.data_type = data_type;
  secret.create_time = time_source_.systemTime() + clock_offset_;
  SecretVersion version = newGenericVersionLocked(version_id, std::move(data), data_type);
  version.stages = {"ACSCurrent"};
  secret.versions.push_back(version);
  secrets_[name] = std::move(secret);
  return version;
}

absl::StatusOr<SecretVersion> World::putSecretValue(const std::string& name, std::string data,
                                                    const std::string& version_id) {
  absl::MutexLock lock(&mutex_);
  auto it = secrets_.find(name);
  if (it == secrets_.end()) return absl::NotFoundError(absl::StrCat("no secret ", name));
  Secret& secret = it->second;
  if (secret.type != kSecretTypeGeneric) {
    return absl::FailedPreconditionError(
        absl::StrCat(secret.type, " secrets are rotated by KMS, not put"));
  }
  if (secret.data_type == "binary" && !crypto::base64Decode(data).ok()) {
    return absl::InvalidArgumentError("data of a binary secret must be base64");
  }
  for (const SecretVersion& existing : secret.versions) {
    if (!version_id.empty() && existing.version_id == version_id) {
      return absl::AlreadyExistsError(absl::StrCat("version ", version_id, " already exists"));
    }
  }
  for (SecretVersion& existing : secret.versions) {
    const bool current = absl::c_linear_search(existing.stages, "ACSCurrent");
    existing.stages.clear();
    if (current) existing.stages = {"ACSPrevious"};
  }
  SecretVersion version = newGenericVersionLocked(version_id, std::move(data), secret.data_type);
  version.stages = {"ACSCurrent"};
  secret.versions.push_back(version);
  return version;
}

std::optional<Secret> World::findSecret(const std::string& name) const {
  absl::MutexLock lock(&mutex_);
  auto it = secrets_.find(name);
  if (it == secrets_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<RotationResult> World::rotateSecret(const std::string& name, bool revoke_previous,
                                                   const std::string& version_id) {
  absl::MutexLock lock(&mutex_);
  auto it = secrets_.find(name);
  if (it == secrets_.end()) return absl::NotFoundError(absl::StrCat("no secret ", name));
  Secret& secret = it->second;
  if (secret.type != kSecretTypeRamCredentials) {
    return absl::FailedPreconditionError("only RAMCredentials secrets rotate here");
  }
  RotationResult result;
  for (size_t i = 0; !version_id.empty() && i < secret.versions.size(); ++i) {
    if (secret.versions[i].version_id != version_id) continue;
    result.version_id = version_id;
    result.access_key_id = secret.versions[i].access_key_id;
    result.access_key_secret = secret.versions[i].access_key_secret;
    if (i > 0) result.previous_access_key_id = secret.versions[i - 1].access_key_id;
    return result;
  }
  result.previous_access_key_id = secret.versions.back().access_key_id;
  // Keep the RAM user at two keys: the one becoming ACSPrevious stays live
  // (apps still holding it keep working), the older one is deleted.
  while (secret.versions.size() >= 2) {
    keys_.erase(secret.versions.front().access_key_id);
    secret.versions.erase(secret.versions.begin());
  }
  for (SecretVersion& version : secret.versions) version.stages = {"ACSPrevious"};
  if (revoke_previous) keys_.erase(result.previous_access_key_id);
  SecretVersion version = newVersionLocked(version_id);
  version.stages = {"ACSCurrent"};
  secret.versions.push_back(version);
  secret.last_rotation = version.created;
  secret.next_rotation = version.created + absl::Seconds(secret.rotation_interval_seconds);
  result.version_id = version.version_id;
  result.access_key_id = version.access_key_id;
  result.access_key_secret = version.access_key_secret;
  return result;
}

bool World::recordNonce(const std::string& access_key_id, const std::string& nonce) {
  absl::MutexLock lock(&mutex_);
  const absl::Time now = time_source_.systemTime();
  while (!nonce_order_.empty() && now - nonce_order_.front().first > kReplayWindow) {
    nonces_.erase(nonce_order_.front().second);
    nonce_order_.pop_front();
  }
  std::string entry = absl::StrCat(access_key_id, "/", nonce);
  if (!nonces_.insert(entry).second) return false;
  nonce_order_.emplace_back(now, std::move(entry));
  return true;
}

}  // namespace credsync::emulator
