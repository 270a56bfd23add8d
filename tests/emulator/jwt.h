#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/secret.h"

// OpenSSL's key type, forward-declared so this header does not pull OpenSSL
// into every target that mints or verifies tokens (it links OpenSSL PRIVATE).
struct evp_pkey_st;

namespace credsync::emulator {

// Frees an OpenSSL EVP_PKEY; defined in jwt.cc.
struct EvpPkeyDeleter {
  void operator()(evp_pkey_st* key) const;
};
using EvpPkeyPtr = std::unique_ptr<evp_pkey_st, EvpPkeyDeleter>;

// Tokens longer than this are rejected unread, as STS rejects an OIDCToken
// parameter over 20,000 characters.
inline constexpr size_t kMaxJwtLength = 20000;
// Deeper JSON in a header or claims set is rejected before it is parsed; a
// Kubernetes token nests three levels (kubernetes.io.serviceaccount.name).
inline constexpr int kMaxJwtJsonDepth = 16;

// An RSA public key that verifies RS256 signatures, with its key id.
// Immutable and cheap to copy (copies share the OpenSSL key); safe to use from
// several threads at once.
class PublicKey {
 public:
  // A PEM "PUBLIC KEY" (SubjectPublicKeyInfo) holding an RSA key of at least
  // 2048 bits. The key id is the RFC 7638 thumbprint.
  static absl::StatusOr<PublicKey> fromPem(absl::string_view pem);
  // An RSA JWK ({"kty":"RSA","n","e"}, RFC 7517/7518). Its "kid" is kept when
  // present (a JWKS may use another scheme, as Kubernetes does), else the key
  // id is the RFC 7638 thumbprint. A JWK whose "alg" is not RS256 is refused.
  static absl::StatusOr<PublicKey> fromJwk(const nlohmann::json& jwk);

  const std::string& keyId() const { return key_id_; }
  // {"kty":"RSA","n","e","kid","alg":"RS256","use":"sig"}, as a JWKS lists it.
  const nlohmann::json& jwk() const { return jwk_; }
  // The key as a PEM "PUBLIC KEY", for tools such as `openssl dgst -verify`.
  std::string toPem() const;
  // True iff `signature` is a valid RSASSA-PKCS1-v1_5 SHA-256 signature of
  // `signing_input` under this key.
  bool verifyRs256(absl::string_view signing_input, absl::string_view signature) const;

 private:
  friend class SigningKey;
  PublicKey(std::shared_ptr<evp_pkey_st> key, nlohmann::json jwk);
  static absl::StatusOr<PublicKey> fromRsaKey(std::shared_ptr<evp_pkey_st> key,
                                              std::optional<std::string> key_id);

  std::shared_ptr<evp_pkey_st> key_;
  std::string key_id_;
  nlohmann::json jwk_;
};

// An RSA private key that signs RS256 JWTs. Copies share one immutable
// OpenSSL key (the key material is never duplicated in memory), so the OIDC
// issuer can hold the Pki's key by value. Safe to use from several threads at
// once.
class SigningKey {
 public:
  // A fresh RSA 2048 key.
  static absl::StatusOr<SigningKey> generate();
  // A PEM private key ("PRIVATE KEY" or "RSA PRIVATE KEY"), RSA of at least
  // 2048 bits.
  static absl::StatusOr<SigningKey> fromPem(absl::string_view pem);

  // The public half's RFC 7638 thumbprint: the "kid" minted tokens carry.
  const std::string& keyId() const { return public_key_.keyId(); }
  const PublicKey& publicKey() const { return public_key_; }
  // The public JWK (never the private parameters).
  const nlohmann::json& jwk() const { return public_key_.jwk(); }
  // The private key as unencrypted PKCS#8 PEM, for writing to a 0600 file.
  SecretString toPem() const;
  // The raw RS256 signature (RSASSA-PKCS1-v1_5, SHA-256) of `signing_input`.
  // Aborts if OpenSSL cannot sign with a key it accepted, which leaves no safe
  // way to go on (as crypto::randomBytes does when the DRBG fails).
  std::string signRs256(absl::string_view signing_input) const;

 private:
  SigningKey(std::shared_ptr<evp_pkey_st> key, PublicKey public_key);
  static absl::StatusOr<SigningKey> fromRsaKey(EvpPkeyPtr key);

  std::shared_ptr<evp_pkey_st> key_;
  PublicKey public_key_;
};

// A process-wide RSA key that no issuer trusts, generated on first use: what
// `"signing_key": "rogue"` signs with, and what tests forge tokens with.
// Thread-safe. Aborts if OpenSSL cannot generate a key.
const SigningKey& rogueSigningKey();

// Mints a compact JWS: header {"alg":"RS256","kid":key.keyId(),"typ":"JWT"},
// payload `claims` serialized as given (invalid UTF-8 in strings is replaced
// with U+FFFD rather than thrown on). Claims that are not a JSON object still
// produce a signed token, which verifyJwt rejects as malformed; tests use that.
std::string mintJwt(const nlohmann::json& claims, const SigningKey& key);

// The claims a Kubernetes projected service-account token carries.
// Every member has a default, so designated initializers may omit any
// (GCC warns about omitted members that have none).
struct ServiceAccountClaimsSpec {
  std::string issuer = {};
  // "system:serviceaccount:NS:SA". Any other subject is minted as given,
  // without the kubernetes.io block.
  std::string subject = {};
  std::vector<std::string> audiences = {};
  absl::Time issued_at = absl::UnixEpoch();
  // exp = issued_at + ttl; a negative ttl mints an already expired token.
  absl::Duration ttl = absl::Hours(1);
  // Named in kubernetes.io.pod when not empty.
  std::string pod_name = {};
};

// {iss, sub, aud[], exp, iat, nbf = iat, jti, kubernetes.io{namespace,
// serviceaccount{name, uid}, pod{name, uid}?}} with integer NumericDates, as
// the kubelet's token request returns them. UIDs are derived from the names,
// so one service account keeps one uid across tokens.
nlohmann::json serviceAccountClaims(const ServiceAccountClaimsSpec& spec);

// Why a token was refused. The STS handler maps kMalformed and kBadSignature
// to AuthenticationFail.OIDCToken.Invalid and kExpired to ...Expired.
enum class JwtError {
  // Not three canonical base64url parts, too long, JSON that is not an object
  // or nests too deeply, an "alg" other than RS256 (so "none" and HS256 are
  // refused), an unknown "crit" extension, or a missing or mistyped claim.
  kMalformed,
  // A "kid" that is not the key's, or a signature the key does not verify.
  kBadSignature,
  // exp <= now. No clock skew is allowed: the emulator's world clock is the
  // only clock its tokens are minted and checked against.
  kExpired,
  // now < nbf.
  kNotYetValid,
};

// The JwtError carried by a status verifyJwt returned; nullopt for OK and for
// any status verifyJwt did not produce. Switch on it:
//   if (auto error = jwtErrorOf(result.status())) switch (*error) { ... }
std::optional<JwtError> jwtErrorOf(const absl::Status& status);
absl::string_view jwtErrorName(JwtError error);

// A token whose signature and validity period have been checked. Whether its
// issuer and audience are the expected ones is the caller's decision.
struct VerifiedToken {
  nlohmann::json header;
  nlohmann::json claims;
  std::string key_id;   // the header's "kid", empty when absent
  std::string issuer;   // iss
  std::string subject;  // sub
  // aud: a lone string becomes a one-element list; never empty.
  std::vector<std::string> audiences;
  absl::Time expires_at;                 // exp
  absl::Time issued_at;                  // iat
  std::optional<absl::Time> not_before;  // nbf
};

// Verifies an RS256 compact JWS against `key` at `now`. Checks, in order:
// length and shape, header (alg RS256, kid if present equals key.keyId(), no
// crit), payload JSON, signature, required claims (iss, sub: strings; aud:
// string or non-empty string array; exp, iat: numbers; nbf: number if
// present), then exp and nbf. A failure's status code is InvalidArgument for
// kMalformed and Unauthenticated otherwise; jwtErrorOf() recovers the
// JwtError and the message says what was wrong (never the token itself).
absl::StatusOr<VerifiedToken> verifyJwt(absl::string_view token, const PublicKey& key,
                                        absl::Time now);

}  // namespace credsync::emulator
