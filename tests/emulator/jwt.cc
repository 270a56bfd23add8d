#include "tests/emulator/jwt.h"
#include "tests/emulator/openssl_ptr.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sidecar/common/crypto.h"
#include "sidecar/common/json_depth.h"

namespace credsync::emulator {
namespace {

constexpr char kJwtErrorPayloadUrl[] = "type.googleapis.com/credsync.emulator.JwtError";
constexpr int kMinRsaBits = 2048;
// Bounds the cost of one verification: RSA public operations grow with the
// modulus, and a JWKS is outside input.
constexpr int kMaxRsaBits = 8192;

// A PEM passphrase callback that refuses, so an encrypted key fails to load
// instead of OpenSSL prompting on the terminal.
int refusePassphrase(char*, int, int, void*) { return -1; }

std::string bignumBytes(const BIGNUM* bn) {
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

// RFC 7638 section 3.2: SHA-256 over the required members in lexicographic
// order, without whitespace.
std::string rsaThumbprint(absl::string_view e, absl::string_view n) {
  return crypto::base64UrlEncode(
      crypto::sha256(absl::StrCat(R"({"e":")", e, R"(","kty":"RSA","n":")", n, R"("})")));
}

bool isBase64UrlChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

// Decodes unpadded base64url and insists on the one canonical spelling:
// absl's decoder also takes padding, whitespace and stray low bits in the last
// character, and each of those would let a token be altered yet still verify.
std::optional<std::string> decodeBase64UrlStrict(absl::string_view text) {
  for (const char c : text) {
    if (!isBase64UrlChar(c)) return std::nullopt;
  }
  if (text.size() % 4 == 1) return std::nullopt;
  auto decoded = crypto::base64UrlDecode(text);
  if (!decoded.ok() || crypto::base64UrlEncode(*decoded) != text) return std::nullopt;
  return *std::move(decoded);
}

// Parses a JSON object, refusing duplicate member names at any level: RFC 7515
// section 4 requires unique header names, and two parsers that resolve a
// duplicated "alg" or "exp" differently are a classic verification bypass.
// The error message completes "header: ..." or "claims: ...".
absl::StatusOr<nlohmann::json> parseJsonObject(absl::string_view text) {
  if (!jsonDepthWithin(text, kMaxJwtJsonDepth)) {
    return absl::InvalidArgumentError(
        absl::StrCat("nests deeper than ", kMaxJwtJsonDepth, " levels"));
  }
  std::vector<std::set<std::string>> open_objects;
  bool duplicate = false;
  const nlohmann::json::parser_callback_t callback =
      [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        switch (event) {
          case nlohmann::json::parse_event_t::object_start:
            open_objects.emplace_back();
            break;
          case nlohmann::json::parse_event_t::object_end:
            if (!open_objects.empty()) open_objects.pop_back();
            break;
          case nlohmann::json::parse_event_t::key:
            if (!open_objects.empty() && parsed.is_string() &&
                !open_objects.back().insert(parsed.get_ref<const std::string&>()).second) {
              duplicate = true;
            }
            break;
          default:
            break;
        }
        return true;
      };
  nlohmann::json parsed = nlohmann::json::parse(text.data(), text.data() + text.size(), callback,
                                                /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  if (duplicate) return absl::InvalidArgumentError("a member name is repeated");
  return parsed;
}

absl::Status jwtStatus(JwtError error, absl::string_view message) {
  const absl::StatusCode code = error == JwtError::kMalformed ? absl::StatusCode::kInvalidArgument
                                                              : absl::StatusCode::kUnauthenticated;
  absl::Status status(code, message);
  status.SetPayload(kJwtErrorPayloadUrl, absl::Cord(jwtErrorName(error)));
  return status;
}

absl::Status malformed(absl::string_view why) {
  return jwtStatus(JwtError::kMalformed, absl::StrCat("malformed token: ", why));
}

// A NumericDate (RFC 7519 section 2): seconds since the epoch, integer or
// not. nullopt for anything else, including integers beyond int64.
std::optional<absl::Time> numericDate(const nlohmann::json& value) {
  if (value.is_number_unsigned()) {
    const auto seconds = value.get<uint64_t>();
    if (seconds > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return absl::FromUnixSeconds(static_cast<int64_t>(seconds));
  }
  if (value.is_number_integer()) return absl::FromUnixSeconds(value.get<int64_t>());
  if (value.is_number_float()) {
    const double seconds = value.get<double>();
    if (!std::isfinite(seconds)) return std::nullopt;
    // Saturates to an infinite time for absurd values, which compare sanely.
    return absl::UnixEpoch() + absl::Seconds(seconds);
  }
  return std::nullopt;
}

const nlohmann::json* member(const nlohmann::json& object, const char* name) {
  const auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

std::optional<std::string> nonEmptyString(const nlohmann::json& object, const char* name) {
  const nlohmann::json* value = member(object, name);
  if (value == nullptr || !value->is_string() || value->get_ref<const std::string&>().empty()) {
    return std::nullopt;
  }
  return value->get<std::string>();
}

// A stable UUID-shaped id for a named object, so that one service account or
// pod keeps one uid across the tokens the emulator mints for it. Version 8
// (RFC 9562 "custom"), since it is a SHA-256 of the name, not a v5 SHA-1.
std::string uidFor(absl::string_view kind, absl::string_view name) {
  std::string bytes = crypto::sha256(absl::StrCat("credsync-emulator/", kind, "/", name));
  bytes.resize(16);
  bytes[6] = static_cast<char>((bytes[6] & 0x0f) | 0x80);
  bytes[8] = static_cast<char>((bytes[8] & 0x3f) | 0x80);
  const std::string hex = crypto::hexLower(bytes);
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20));
}

}  // namespace

void EvpPkeyDeleter::operator()(evp_pkey_st* key) const { EVP_PKEY_free(key); }

// --- PublicKey ---------------------------------------------------------------

PublicKey::PublicKey(std::shared_ptr<evp_pkey_st> key, nlohmann::json jwk)
    : key_(std::move(key)), key_id_(jwk["kid"].get<std::string>()), jwk_(std::move(jwk)) {}

absl::StatusOr<PublicKey> PublicKey::fromRsaKey(std::shared_ptr<evp_pkey_st> key,
                                                std::optional<std::string> key_id) {
  if (EVP_PKEY_is_a(key.get(), "RSA") != 1) {
    return absl::InvalidArgumentError("not an RSA key (RS256 needs RSA)");
  }
  const int bits = EVP_PKEY_get_bits(key.get());
  if (bits < kMinRsaBits || bits > kMaxRsaBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("RSA key of ", bits, " bits; need ", kMinRsaBits, " to ", kMaxRsaBits));
  }
  BIGNUM* raw_n = nullptr;
  BIGNUM* raw_e = nullptr;
  const bool got_n = EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, &raw_n) == 1;
  const bool got_e = EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E, &raw_e) == 1;
  const BignumPtr n(raw_n);
  const BignumPtr e(raw_e);
  if (!got_n || !got_e) return opensslError(absl::StatusCode::kInternal, "reading RSA n and e");
  const std::string n64 = crypto::base64UrlEncode(bignumBytes(n.get()));
  const std::string e64 = crypto::base64UrlEncode(bignumBytes(e.get()));
  nlohmann::json jwk = {{"kty", "RSA"},   {"n", n64},
                        {"e", e64},       {"kid", key_id.value_or(rsaThumbprint(e64, n64))},
                        {"alg", "RS256"}, {"use", "sig"}};
  return PublicKey(std::move(key), std::move(jwk));
}

absl::StatusOr<PublicKey> PublicKey::fromPem(absl::string_view pem) {
  const BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return opensslError(absl::StatusCode::kInternal, "BIO_new_mem_buf");
  EVP_PKEY* key = PEM_read_bio_PUBKEY(bio.get(), nullptr, refusePassphrase, nullptr);
  if (key == nullptr) {
    return opensslError(absl::StatusCode::kInvalidArgument, "not a PEM public key");
  }
  return fromRsaKey(std::shared_ptr<evp_pkey_st>(key, EvpPkeyDeleter()), std::nullopt);
}

absl::StatusOr<PublicKey> PublicKey::fromJwk(const nlohmann::json& jwk) {
  if (!jwk.is_object()) return absl::InvalidArgumentError("JWK is not a JSON object");
  if (nonEmptyString(jwk, "kty") != "RSA") return absl::InvalidArgumentError("JWK kty is not RSA");
  if (const nlohmann::json* alg = member(jwk, "alg");
      alg != nullptr && (!alg->is_string() || *alg != "RS256")) {
    return absl::InvalidArgumentError("JWK alg is not RS256");
  }
  std::optional<std::string> key_id;
  if (const nlohmann::json* kid = member(jwk, "kid"); kid != nullptr) {
    if (!kid->is_string()) return absl::InvalidArgumentError("JWK kid is not a string");
    key_id = kid->get<std::string>();
  }
  const std::optional<std::string> n64 = nonEmptyString(jwk, "n");
  const std::optional<std::string> e64 = nonEmptyString(jwk, "e");
  if (!n64 || !e64) return absl::InvalidArgumentError("JWK lacks n or e");
  const std::optional<std::string> n_bytes = decodeBase64UrlStrict(*n64);
  const std::optional<std::string> e_bytes = decodeBase64UrlStrict(*e64);
  // RFC 7518 section 6.3.1: base64urlUInt values use the minimal octets.
  if (!n_bytes || !e_bytes || n_bytes->empty() || e_bytes->empty() || (*n_bytes)[0] == '\0' ||
      (*e_bytes)[0] == '\0' || e_bytes->size() > 8) {
    return absl::InvalidArgumentError("JWK n or e is not a minimal base64url unsigned integer");
  }
  const BignumPtr n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n_bytes->data()),
                              static_cast<int>(n_bytes->size()), nullptr));
  const BignumPtr e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e_bytes->data()),
                              static_cast<int>(e_bytes->size()), nullptr));
  if (n == nullptr || e == nullptr) return opensslError(absl::StatusCode::kInternal, "BN_bin2bn");
  if (!BN_is_odd(e.get()) || BN_is_one(e.get())) {
    return absl::InvalidArgumentError("JWK e is not an odd integer above 1");
  }
  const ParamBldPtr builder(OSSL_PARAM_BLD_new());
  if (builder == nullptr ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return opensslError(absl::StatusCode::kInternal, "building RSA parameters");
  }
  const ParamPtr params(OSSL_PARAM_BLD_to_param(builder.get()));
  const PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* key = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return opensslError(absl::StatusCode::kInvalidArgument, "JWK is not a usable RSA key");
  }
  return fromRsaKey(std::shared_ptr<evp_pkey_st>(key, EvpPkeyDeleter()), std::move(key_id));
}

std::string PublicKey::toPem() const {
  const BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) {
    drainOpensslErrors();
    return "";
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

bool PublicKey::verifyRs256(absl::string_view signing_input, absl::string_view signature) const {
  if (key_ == nullptr) return false;
  const MdCtxPtr ctx(EVP_MD_CTX_new());
  // RSA's default padding for EVP_DigestVerify is PKCS#1 v1.5, which RS256 is.
  const bool ok =
      ctx != nullptr &&
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) == 1 &&
      EVP_DigestVerify(
          ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
          reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) == 1;
  if (!ok) drainOpensslErrors();
  return ok;
}

// --- SigningKey --------------------------------------------------------------

SigningKey::SigningKey(std::shared_ptr<evp_pkey_st> key, PublicKey public_key)
    : key_(std::move(key)), public_key_(std::move(public_key)) {}

absl::StatusOr<SigningKey> SigningKey::fromRsaKey(EvpPkeyPtr key) {
  // The public half goes into its own EVP_PKEY (via its DER encoding), so a
  // PublicKey handed out never keeps the private key alive.
  unsigned char* der = nullptr;
  const int der_length = i2d_PUBKEY(key.get(), &der);
  if (der_length <= 0) return opensslError(absl::StatusCode::kInternal, "i2d_PUBKEY");
  const unsigned char* cursor = der;
  EVP_PKEY* public_only = d2i_PUBKEY(nullptr, &cursor, der_length);
  OPENSSL_free(der);
  if (public_only == nullptr) return opensslError(absl::StatusCode::kInternal, "d2i_PUBKEY");
  auto public_key = PublicKey::fromRsaKey(
      std::shared_ptr<evp_pkey_st>(public_only, EvpPkeyDeleter()), std::nullopt);
  if (!public_key.ok()) return public_key.status();
  return SigningKey(std::move(key), *std::move(public_key));
}

absl::StatusOr<SigningKey> SigningKey::generate() {
  EvpPkeyPtr key(EVP_RSA_gen(kMinRsaBits));
  if (key == nullptr) return opensslError(absl::StatusCode::kInternal, "generating an RSA key");
  return fromRsaKey(std::move(key));
}

absl::StatusOr<SigningKey> SigningKey::fromPem(absl::string_view pem) {
  const BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return opensslError(absl::StatusCode::kInternal, "BIO_new_mem_buf");
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refusePassphrase, nullptr));
  if (key == nullptr) {
    return opensslError(absl::StatusCode::kInvalidArgument, "not an unencrypted PEM private key");
  }
  return fromRsaKey(std::move(key));
}

SecretString SigningKey::toPem() const {
  // A secure-heap memory BIO, so OpenSSL wipes its copy of the PEM on free.
  const BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    drainOpensslErrors();
    return SecretString();
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return SecretString(std::string(data, static_cast<size_t>(length)));
}

std::string SigningKey::signRs256(absl::string_view signing_input) const {
  const MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t length = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    std::fprintf(stderr, "credsync-emulator: RS256 signing failed: %s\n",
                 drainOpensslErrors().c_str());
    std::abort();
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    std::fprintf(stderr, "credsync-emulator: RS256 signing failed: %s\n",
                 drainOpensslErrors().c_str());
    std::abort();
  }
  signature.resize(length);
  return signature;
}

const SigningKey& rogueSigningKey() {
  // Leaked on purpose: a function-local static that is never destroyed cannot
  // be used after destruction by another static's destructor.
  static const SigningKey* const key = [] {
    auto generated = SigningKey::generate();
    if (!generated.ok()) {
      std::fprintf(stderr, "credsync-emulator: cannot generate the rogue key: %s\n",
                   std::string(generated.status().message()).c_str());
      std::abort();
    }
    return new SigningKey(*std::move(generated));
  }();
  return *key;
}

// --- Minting -----------------------------------------------------------------

std::string mintJwt(const nlohmann::json& claims, const SigningKey& key) {
  const nlohmann::json header = {{"alg", "RS256"}, {"kid", key.keyId()}, {"typ", "JWT"}};
  const std::string signing_input =
      absl::StrCat(crypto::base64UrlEncode(header.dump()), ".",
                   crypto::base64UrlEncode(
                       claims.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  return absl::StrCat(signing_input, ".", crypto::base64UrlEncode(key.signRs256(signing_input)));
}

nlohmann::json serviceAccountClaims(const ServiceAccountClaimsSpec& spec) {
  const int64_t issued = absl::ToUnixSeconds(spec.issued_at);
  nlohmann::json claims = {
      {"iss", spec.issuer},
      {"sub", spec.subject},
      {"aud", spec.audiences},
      {"iat", issued},
      {"nbf", issued},
      {"exp", absl::ToUnixSeconds(spec.issued_at + spec.ttl)},
      {"jti", crypto::randomUuid()},
  };
  const std::vector<std::string> parts = absl::StrSplit(spec.subject, ':');
  if (parts.size() == 4 && parts[0] == "system" && parts[1] == "serviceaccount" &&
      !parts[2].empty() && !parts[3].empty()) {
    nlohmann::json kubernetes = {
        {"namespace", parts[2]},
        {"serviceaccount",
         {{"name", parts[3]},
          {"uid", uidFor("serviceaccount", absl::StrCat(parts[2], "/", parts[3]))}}},
    };
    if (!spec.pod_name.empty()) {
      kubernetes["pod"] = {{"name", spec.pod_name},
                           {"uid", uidFor("pod", absl::StrCat(parts[2], "/", spec.pod_name))}};
    }
    claims["kubernetes.io"] = std::move(kubernetes);
  }
  return claims;
}

// --- Verification ------------------------------------------------------------

absl::string_view jwtErrorName(JwtError error) {
  switch (error) {
    case JwtError::kMalformed:
      return "malformed";
    case JwtError::kBadSignature:
      return "bad_signature";
    case JwtError::kExpired:
      return "expired";
    case JwtError::kNotYetValid:
      return "not_yet_valid";
  }
  return "unknown";
}

std::optional<JwtError> jwtErrorOf(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  const auto payload = status.GetPayload(kJwtErrorPayloadUrl);
  if (!payload) return std::nullopt;
  for (const JwtError error : {JwtError::kMalformed, JwtError::kBadSignature, JwtError::kExpired,
                               JwtError::kNotYetValid}) {
    if (*payload == jwtErrorName(error)) return error;
  }
  return std::nullopt;
}

absl::StatusOr<VerifiedToken> verifyJwt(absl::string_view token, const PublicKey& key,
                                        absl::Time now) {
  if (token.size() > kMaxJwtLength) {
    return malformed(absl::StrCat("longer than ", kMaxJwtLength, " characters"));
  }
  const std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return malformed("not three dot-separated parts");
  const std::optional<std::string> header_json = decodeBase64UrlStrict(parts[0]);
  const std::optional<std::string> payload_json = decodeBase64UrlStrict(parts[1]);
  const std::optional<std::string> signature = decodeBase64UrlStrict(parts[2]);
  if (!header_json || !payload_json || !signature) {
    return malformed("a part is not canonical unpadded base64url");
  }

  VerifiedToken verified;
  absl::StatusOr<nlohmann::json> header = parseJsonObject(*header_json);
  if (!header.ok()) return malformed(absl::StrCat("header: ", header.status().message()));
  const nlohmann::json* alg = member(*header, "alg");
  if (alg == nullptr || !alg->is_string() || *alg != "RS256") {
    return malformed("header alg is not RS256");
  }
  if (member(*header, "crit") != nullptr) {
    return malformed("header names critical extensions, which are not supported");
  }
  if (const nlohmann::json* kid = member(*header, "kid"); kid != nullptr) {
    if (!kid->is_string()) return malformed("header kid is not a string");
    verified.key_id = kid->get<std::string>();
    if (verified.key_id != key.keyId()) {
      return jwtStatus(JwtError::kBadSignature, "token is signed by an unknown key (kid)");
    }
  }
  absl::StatusOr<nlohmann::json> claims = parseJsonObject(*payload_json);
  if (!claims.ok()) return malformed(absl::StrCat("claims: ", claims.status().message()));

  const absl::string_view signing_input = token.substr(0, parts[0].size() + 1 + parts[1].size());
  if (signature->empty() || !key.verifyRs256(signing_input, *signature)) {
    return jwtStatus(JwtError::kBadSignature, "signature does not verify");
  }

  std::optional<std::string> issuer = nonEmptyString(*claims, "iss");
  std::optional<std::string> subject = nonEmptyString(*claims, "sub");
  if (!issuer) return malformed("iss is missing or not a string");
  if (!subject) return malformed("sub is missing or not a string");
  verified.issuer = *std::move(issuer);
  verified.subject = *std::move(subject);
  const nlohmann::json* aud = member(*claims, "aud");
  if (aud != nullptr && aud->is_string() && !aud->get_ref<const std::string&>().empty()) {
    verified.audiences.push_back(aud->get<std::string>());
  } else if (aud != nullptr && aud->is_array()) {
    for (const nlohmann::json& entry : *aud) {
      if (!entry.is_string() || entry.get_ref<const std::string&>().empty()) {
        return malformed("aud holds something other than non-empty strings");
      }
      verified.audiences.push_back(entry.get<std::string>());
    }
  }
  if (verified.audiences.empty()) return malformed("aud is missing or empty");
  const nlohmann::json* exp = member(*claims, "exp");
  const nlohmann::json* iat = member(*claims, "iat");
  const nlohmann::json* nbf = member(*claims, "nbf");
  const std::optional<absl::Time> expires_at = exp ? numericDate(*exp) : std::nullopt;
  const std::optional<absl::Time> issued_at = iat ? numericDate(*iat) : std::nullopt;
  if (!expires_at) return malformed("exp is missing or not a NumericDate");
  if (!issued_at) return malformed("iat is missing or not a NumericDate");
  verified.expires_at = *expires_at;
  verified.issued_at = *issued_at;
  if (nbf != nullptr) {
    verified.not_before = numericDate(*nbf);
    if (!verified.not_before) return malformed("nbf is not a NumericDate");
  }

  if (verified.expires_at <= now) {
    return jwtStatus(JwtError::kExpired,
                     absl::StrCat("token expired at ", absl::FormatTime(verified.expires_at)));
  }
  if (verified.not_before && now < *verified.not_before) {
    return jwtStatus(JwtError::kNotYetValid, absl::StrCat("token is not valid before ",
                                                          absl::FormatTime(*verified.not_before)));
  }
  verified.header = *std::move(header);
  verified.claims = *std::move(claims);
  return verified;
}

}  // namespace credsync::emulator
