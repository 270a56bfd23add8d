#pragma once

#include <memory>
#include <utility>

#include "sidecar/alibaba/client_key_source.h"
#include "sidecar/common/mutex.h"

namespace credsync::testing {

// A client key that changes only when the test replaces it.
class FixedClientKey final : public alibaba::ClientKeySource {
 public:
  explicit FixedClientKey(alibaba::ClientKey key)
      : key_(std::make_shared<const alibaba::ClientKey>(std::move(key))) {}

  std::shared_ptr<const alibaba::ClientKey> current() override {
    MutexLock lock(&mutex_);
    return key_;
  }
  void replace(alibaba::ClientKey key) {
    MutexLock lock(&mutex_);
    key_ = std::make_shared<const alibaba::ClientKey>(std::move(key));
  }

 private:
  Mutex mutex_;
  std::shared_ptr<const alibaba::ClientKey> key_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::testing
