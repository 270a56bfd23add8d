#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/secret.h"
#include "sidecar/identity/credential_provider.h"

namespace credsync::testing {

// An identity whose n-th session is STS.SESSION<n> with token-<n>; invalidate()
// moves to the next session, as a real provider's new exchange would.
class FakeIdentity : public identity::CredentialProvider {
 public:
  absl::StatusOr<alibaba::AccessKeyCredentials> credentials() override {
    MutexLock lock(&mutex_);
    if (!error_.ok()) return error_;
    alibaba::AccessKeyCredentials credentials;
    credentials.access_key_id = absl::StrCat(permanent_ ? "LTAI" : "STS.SESSION", generation_);
    credentials.access_key_secret = SecretString(absl::StrCat("session-secret-", generation_));
    if (!permanent_) {
      credentials.security_token = SecretString(absl::StrCat("session-token-", generation_));
    }
    return credentials;
  }
  void invalidate() override {
    MutexLock lock(&mutex_);
    ++invalidations_;
    ++generation_;
    if (!error_after_invalidate_.ok()) error_ = error_after_invalidate_;
  }
  identity::IdentityStatus status() const override {
    MutexLock lock(&mutex_);
    return status_;
  }

  void setPermanent() {
    MutexLock lock(&mutex_);
    permanent_ = true;
  }
  void setError(absl::Status error) {
    MutexLock lock(&mutex_);
    error_ = std::move(error);
  }
  void setErrorAfterInvalidate(absl::Status error) {
    MutexLock lock(&mutex_);
    error_after_invalidate_ = std::move(error);
  }
  // What status() reports (empty until set).
  void setStatus(identity::IdentityStatus status) {
    MutexLock lock(&mutex_);
    status_ = std::move(status);
  }
  int invalidations() const {
    MutexLock lock(&mutex_);
    return invalidations_;
  }

 private:
  mutable Mutex mutex_;
  int generation_ ABSL_GUARDED_BY(mutex_) = 1;
  int invalidations_ ABSL_GUARDED_BY(mutex_) = 0;
  bool permanent_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mutex_);
  absl::Status error_after_invalidate_ ABSL_GUARDED_BY(mutex_);
  identity::IdentityStatus status_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::testing
