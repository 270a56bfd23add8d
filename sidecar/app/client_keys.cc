#include "sidecar/app/client_keys.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/alibaba/client_key.h"
#include "sidecar/common/status_line.h"

namespace credsync::app {

absl::StatusOr<std::unique_ptr<alibaba::ReloadingClientKey>> openInstanceClientKey(
    const config::KmsInstanceConfig& instance, const config::Environment& env) {
  alibaba::ClientKeyPasswordSource password;
  password.file = instance.password_file;
  password.env_variable = instance.password_env;
  absl::StatusOr<std::unique_ptr<alibaba::ReloadingClientKey>> key =
      alibaba::ReloadingClientKey::open(instance.client_key_file, password, env, instance.endpoint);
  if (!key.ok()) {
    return asOneLine(absl::Status(
        key.status().code(),
        absl::StrCat("KMS instance ", instance.endpoint, ": ", key.status().message())));
  }
  return key;
}

absl::StatusOr<ClientKeys> openClientKeys(const config::KmsConfig& kms,
                                          const config::Environment& env) {
  ClientKeys keys;
  for (const config::KmsInstanceConfig& instance : kms.instances) {
    absl::StatusOr<std::unique_ptr<alibaba::ReloadingClientKey>> key =
        openInstanceClientKey(instance, env);
    if (!key.ok()) return key.status();
    keys.push_back(*std::move(key));
  }
  return keys;
}

}  // namespace credsync::app
