#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "sidecar/alibaba/client_key.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/secret.h"

// Where a KMS instance request's signing key comes from. The console lets an
// application access point have several client keys and each expires, so
// operators replace them; in Kubernetes that means updating the Secret, and
// the kubelet swaps the mounted files in place (an atomic "..data" symlink
// switch) without restarting anything. The official SDKs read their client
// key once; credsync notices the swap on the next request instead, so a new
// key needs no restart and an old one can be disabled right after.
namespace credsync::alibaba {

class ClientKeySource {
 public:
  virtual ~ClientKeySource() = default;
  // The key to sign with now; never null. Callers hold the pointer for one
  // request, so a key replaced meanwhile stays valid until they finish.
  virtual std::shared_ptr<const ClientKey> current() = 0;
};

// What a ReloadingClientKey has done since it opened, for metrics and logs.
struct ClientKeyReloads {
  std::string key_id;      // of the key in use
  uint64_t succeeded = 0;  // times a changed file gave a new key
  uint64_t failed = 0;     // times a changed file could not be loaded
};

// The client key as the client-key file and the password file say it is
// now. Each current() stats both files (following symlinks: device, inode,
// size, mtime); when either changed since the last look, it loads them
// again. A change that does not load (a half-written file, a key for another
// password, a removed file) keeps the key in use and logs one warning per
// change, naming the file and the problem and never key material; it is
// tried again only when the files change again. A password from an
// environment variable is read once, at open: the environment of a running
// process cannot change. Thread-safe.
class ReloadingClientKey final : public ClientKeySource {
 public:
  // Loads the key now: its errors are loadClientKey's. `endpoint` only
  // names the instance in logs.
  static absl::StatusOr<std::unique_ptr<ReloadingClientKey>> open(
      std::string client_key_file, const ClientKeyPasswordSource& password,
      const EnvironmentLookup& env, std::string endpoint);

  std::shared_ptr<const ClientKey> current() override;
  ClientKeyReloads reloads() const;

  // What stat() says of one file: a replaced or rewritten file differs.
  struct FileIdentity {
    int error = 0;  // errno of a failed stat, else 0
    uint64_t device = 0;
    uint64_t inode = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileIdentity&) const = default;
  };

 private:
  struct Files {
    FileIdentity key;
    FileIdentity password;  // default when the password is not a file
    bool operator==(const Files&) const = default;
  };
  ReloadingClientKey(std::string client_key_file, ClientKeyPasswordSource password,
                     std::optional<SecretString> env_password, std::string endpoint);
  Files look() const;
  absl::StatusOr<ClientKey> load() const;

  const std::string client_key_file_;
  const ClientKeyPasswordSource password_source_;
  // The password when it came from the environment.
  const std::optional<SecretString> env_password_;
  const std::string endpoint_;

  mutable Mutex mutex_;
  std::shared_ptr<const ClientKey> key_ ABSL_GUARDED_BY(mutex_);
  // The files as they were at the last load attempt, successful or not.
  Files seen_ ABSL_GUARDED_BY(mutex_);
  ClientKeyReloads reloads_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::alibaba
