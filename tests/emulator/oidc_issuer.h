#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"

namespace credsync::emulator {

struct OidcClaims {
  std::string issuer;
  std::string subject;
  std::vector<std::string> audiences;
  absl::Time expires;
  absl::Time issued;
};

struct TokenProblem {
  enum class Kind { kMalformed, kBadSignature, kExpired, kNotYetValid } kind;
  std::string message;
};

struct MintRequest {
  std::string subject;  // system:serviceaccount:NS:SA
  std::string issuer;   // empty: the issuer's own URL
  std::string audience = "sts.aliyuncs.com";
  absl::Duration ttl = absl::Hours(1);  // negative: already expired
  bool rogue = false;                   // sign with a key the issuer does not own
};

// The cluster's service-account token issuer, standing in for the kubelet's
// projected tokens: mints RS256 JWTs and verifies them as STS verifies them
// against the issuer's public key. Thread-safe (immutable after creation).
class OidcIssuer {
 public:
  virtual ~OidcIssuer() = default;
  virtual const std::string& issuerUrl() const = 0;
  virtual std::string mint(const MintRequest& request, absl::Time now) const = 0;
  virtual std::variant<OidcClaims, TokenProblem> verify(const std::string& token,
                                                        absl::Time now) const = 0;
};

struct Pki;

// The issuer at `issuer_url`, signing with the PKI's issuer key.
std::unique_ptr<OidcIssuer> makeOidcIssuer(const Pki& pki, std::string issuer_url);

}  // namespace credsync::emulator
