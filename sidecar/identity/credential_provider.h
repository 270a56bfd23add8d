#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/alibaba/request_signer.h"

namespace credsync::identity {

struct IdentityStatus {
  std::string type;  // "oidc", "ecs_ram_role", "static"
  std::optional<absl::Time> session_expiration;
  std::optional<absl::Time> last_success;
  absl::Status last_error;  // OK when the last exchange succeeded
};

// Who credsync is when it calls KMS. Returns credentials valid for at least
// a little while longer (never an expired session), refreshing them itself
// when they are stale. Thread-safe; concurrent callers share one exchange.
class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  virtual absl::StatusOr<alibaba::AccessKeyCredentials> credentials() = 0;
  // Forces the next credentials() call to exchange anew (e.g. after KMS
  // rejected the session's token).
  virtual void invalidate() = 0;
  virtual IdentityStatus status() const = 0;
};
using CredentialProviderPtr = std::unique_ptr<CredentialProvider>;

}  // namespace credsync::identity
