#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "sidecar/common/mutex.h"
#include "sidecar/fetch/secret_source.h"

namespace credsync::testing {

// Answers each profile's fetches from a script; counts calls.
class FakeSecretSource : public fetch::SecretSource {
 public:
  absl::StatusOr<fetch::ManagedCredential> fetch(const config::ProfileConfig& profile) override {
    std::function<void()> hook;
    {
      MutexLock lock(&mutex);
      ++calls[profile.name];
      hook = std::exchange(during_fetch, nullptr);
    }
    if (hook) hook();
    MutexLock lock(&mutex);
    auto& queue = script[profile.name];
    if (queue.empty()) return absl::UnavailableError("nothing scripted");
    auto result = queue.front();
    if (queue.size() > 1) queue.pop_front();
    return result;
  }
  std::map<std::string, std::deque<absl::StatusOr<fetch::ManagedCredential>>> script;
  std::map<std::string, int> calls;
  // Runs once, inside the next fetch(), as a concurrent caller would.
  std::function<void()> during_fetch;
  // Tests that fetch from a driver thread read `calls` under it; set up the
  // script before the engine runs.
  Mutex mutex;

  int callsOf(const std::string& profile) {
    MutexLock lock(&mutex);
    return calls[profile];
  }
};

// A managed key named `id`, its secret derived from it.
inline fetch::ManagedCredential key(const std::string& id,
                                    std::optional<absl::Time> next_rotation = {}) {
  fetch::ManagedCredential credential;
  credential.access_key_id = id;
  credential.access_key_secret = SecretString("secret-of-" + id);
  credential.version_id = "v-" + id;
  credential.next_rotation_date = next_rotation;
  return credential;
}

// A generic profile's fetch result: `files` (name -> content) from `version`.
inline fetch::ManagedCredential genericValue(const std::string& version,
                                             const std::map<std::string, std::string>& files) {
  fetch::ManagedCredential credential;
  credential.kind = config::ProfileKind::kGeneric;
  credential.version_id = version;
  for (const auto& [name, content] : files) credential.files.emplace(name, SecretString(content));
  return credential;
}

}  // namespace credsync::testing
