#include "sidecar/alibaba/client_key_source.h"

#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include "sidecar/common/logging.h"

namespace credsync::alibaba {
namespace {

ReloadingClientKey::FileIdentity identify(const std::string& path) {
  ReloadingClientKey::FileIdentity identity;
  if (path.empty()) return identity;
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    identity.error = errno;
    return identity;
  }
  identity.device = static_cast<uint64_t>(info.st_dev);
  identity.inode = static_cast<uint64_t>(info.st_ino);
  identity.size = static_cast<int64_t>(info.st_size);
  identity.mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  return identity;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReloadingClientKey>> ReloadingClientKey::open(
    std::string client_key_file, const ClientKeyPasswordSource& password,
    const EnvironmentLookup& env, std::string endpoint) {
  std::optional<SecretString> env_password;
  if (password.file.empty()) {
    absl::StatusOr<SecretString> value = readClientKeyPassword(password, env);
    if (!value.ok()) return value.status();
    env_password = *std::move(value);
  }
  std::unique_ptr<ReloadingClientKey> source(new ReloadingClientKey(
      std::move(client_key_file), password, std::move(env_password), std::move(endpoint)));
  // Looked at before loading: a change racing the load is then seen next time.
  const Files files = source->look();
  absl::StatusOr<ClientKey> key = source->load();
  if (!key.ok()) return key.status();
  MutexLock lock(&source->mutex_);
  source->seen_ = files;
  source->reloads_.key_id = key->keyId();
  source->key_ = std::make_shared<const ClientKey>(*std::move(key));
  return source;
}

ReloadingClientKey::ReloadingClientKey(std::string client_key_file,
                                       ClientKeyPasswordSource password,
                                       std::optional<SecretString> env_password,
                                       std::string endpoint)
    : client_key_file_(std::move(client_key_file)),
      password_source_(std::move(password)),
      env_password_(std::move(env_password)),
      endpoint_(std::move(endpoint)) {}

ReloadingClientKey::Files ReloadingClientKey::look() const {
  return Files{identify(client_key_file_), identify(password_source_.file)};
}

absl::StatusOr<ClientKey> ReloadingClientKey::load() const {
  if (env_password_.has_value()) return ClientKey::loadFile(client_key_file_, *env_password_);
  return loadClientKey(client_key_file_, password_source_, nullptr);
}

std::shared_ptr<const ClientKey> ReloadingClientKey::current() {
  // Held across the load, so concurrent requests that notice the same change
  // load it once; loading is a few milliseconds and happens only on change.
  MutexLock lock(&mutex_);
  const Files files = look();
  if (files == seen_) return key_;
  seen_ = files;
  absl::StatusOr<ClientKey> key = load();
  if (!key.ok()) {
    ++reloads_.failed;
    log::warn(
        "KMS instance client key changed but cannot be loaded; still signing with the "
        "previous key",
        {{"endpoint", endpoint_},
         {"key_id", reloads_.key_id},
         {"error", std::string(key.status().message())}});
    return key_;
  }
  ++reloads_.succeeded;
  log::info(
      "KMS instance client key reloaded",
      {{"endpoint", endpoint_}, {"key_id", key->keyId()}, {"previous_key_id", reloads_.key_id}});
  reloads_.key_id = key->keyId();
  key_ = std::make_shared<const ClientKey>(*std::move(key));
  return key_;
}

ClientKeyReloads ReloadingClientKey::reloads() const {
  MutexLock lock(&mutex_);
  return reloads_;
}

}  // namespace credsync::alibaba
