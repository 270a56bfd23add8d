#include "sidecar/common/secret.h"

#include <openssl/crypto.h>

#include "sidecar/common/crypto.h"

namespace credsync {

SecretString& SecretString::operator=(const SecretString& other) {
  if (this != &other) {
    wipe();
    value_ = other.value_;
  }
  return *this;
}

SecretString& SecretString::operator=(SecretString&& other) noexcept {
  if (this != &other) {
    wipe();
    value_ = std::move(other.value_);
    other.wipe();
  }
  return *this;
}

bool SecretString::equals(absl::string_view other) const {
  return crypto::constantTimeEquals(value_, other);
}

void SecretString::wipe() noexcept { wipeString(value_); }

void wipeString(std::string& value) noexcept {
  // Short strings live inline; long ones in a heap buffer. capacity() covers both.
  if (value.capacity() > 0) OPENSSL_cleanse(value.data(), value.capacity());
  value.clear();
}

}  // namespace credsync
