#pragma once

#include <ostream>
#include <string>

#include "absl/strings/string_view.h"

namespace credsync {

// Holds a secret value (AccessKeySecret, SecurityToken, OIDC token, ...).
// Printing it yields "***", so a log line cannot leak it by accident; its
// storage is wiped with OPENSSL_cleanse whenever the value is released or
// replaced. Read the value only where it is used: reveal().
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(std::string value) : value_(std::move(value)) {}
  SecretString(const SecretString& other) : value_(other.value_) {}
  SecretString(SecretString&& other) noexcept : value_(std::move(other.value_)) { other.wipe(); }
  SecretString& operator=(const SecretString& other);
  SecretString& operator=(SecretString&& other) noexcept;
  ~SecretString() { wipe(); }

  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  size_t size() const { return value_.size(); }

  // Constant-time comparison, so a verifier does not leak how much matched.
  bool equals(absl::string_view other) const;
  bool operator==(const SecretString& other) const { return equals(other.value_); }

 private:
  void wipe() noexcept;
  std::string value_;
};

inline std::ostream& operator<<(std::ostream& os, const SecretString&) { return os << "***"; }

// Overwrites a plain string's bytes (including spare capacity) before it is
// dropped; for buffers that held a secret before it was wrapped.
void wipeString(std::string& value) noexcept;

}  // namespace credsync
