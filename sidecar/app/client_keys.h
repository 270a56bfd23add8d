#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "sidecar/alibaba/client_key_source.h"
#include "sidecar/config/config.h"

// Opening the client keys that the configured KMS instances authenticate
// with. The command line opens them once, before anything runs, so that a
// missing file or a wrong password is bad input like the config naming it;
// the sidecar then signs with the keys it was handed.
namespace credsync::app {

// One opened key per entry of config::KmsConfig::instances, in that order.
using ClientKeys = std::vector<std::unique_ptr<alibaba::ReloadingClientKey>>;

// Reads `instance`'s password (file or environment variable) and loads its
// client key: an error is one line naming the instance endpoint and what is
// wrong ("KMS instance https://kst-…: client key /keys/ck.json: wrong
// password (…)"), never key material; treat it as fatal. The key is re-read
// when its files change (alibaba::ReloadingClientKey).
absl::StatusOr<std::unique_ptr<alibaba::ReloadingClientKey>> openInstanceClientKey(
    const config::KmsInstanceConfig& instance, const config::Environment& env);

// Every instance's key, or the first instance's error.
absl::StatusOr<ClientKeys> openClientKeys(const config::KmsConfig& kms,
                                          const config::Environment& env);

}  // namespace credsync::app
