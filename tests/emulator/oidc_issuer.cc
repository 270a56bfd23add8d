#include "tests/emulator/oidc_issuer.h"

#include "absl/strings/str_cat.h"
#include "tests/emulator/jwt.h"
#include "tests/emulator/pki.h"

namespace credsync::emulator {
namespace {

class JwtOidcIssuer : public OidcIssuer {
 public:
  JwtOidcIssuer(std::string issuer_url, SigningKey key)
      : issuer_url_(std::move(issuer_url)), key_(std::move(key)) {}

  const std::string& issuerUrl() const override { return issuer_url_; }

  std::string mint(const MintRequest& request, absl::Time now) const override {
    ServiceAccountClaimsSpec spec;
    spec.issuer = request.issuer.empty() ? issuer_url_ : request.issuer;
    spec.subject = request.subject;
    spec.audiences = {request.audience};
    spec.ttl = request.ttl;
    // A token minted already expired was issued one TTL-magnitude ago.
    spec.issued_at =
        request.ttl < absl::ZeroDuration() ? now + request.ttl - absl::Minutes(10) : now;
    if (request.ttl < absl::ZeroDuration()) spec.ttl = absl::Minutes(10);
    return mintJwt(serviceAccountClaims(spec), request.rogue ? rogueSigningKey() : key_);
  }

  std::variant<OidcClaims, TokenProblem> verify(const std::string& token,
                                                absl::Time now) const override {
    absl::StatusOr<VerifiedToken> verified = verifyJwt(token, key_.publicKey(), now);
    if (!verified.ok()) {
      TokenProblem problem{TokenProblem::Kind::kMalformed,
                           std::string(verified.status().message())};
      switch (jwtErrorOf(verified.status()).value_or(JwtError::kMalformed)) {
        case JwtError::kMalformed:
          problem.kind = TokenProblem::Kind::kMalformed;
          break;
        case JwtError::kBadSignature:
          problem.kind = TokenProblem::Kind::kBadSignature;
          break;
        case JwtError::kExpired:
          problem.kind = TokenProblem::Kind::kExpired;
          break;
        case JwtError::kNotYetValid:
          problem.kind = TokenProblem::Kind::kNotYetValid;
          break;
      }
      return problem;
    }
    return OidcClaims{verified->issuer, verified->subject, verified->audiences,
                      verified->expires_at, verified->issued_at};
  }

 private:
  const std::string issuer_url_;
  const SigningKey key_;
};

}  // namespace

std::unique_ptr<OidcIssuer> makeOidcIssuer(const Pki& pki, std::string issuer_url) {
  return std::make_unique<JwtOidcIssuer>(std::move(issuer_url), pki.issuer_key);
}

}  // namespace credsync::emulator
