#include "tests/emulator/jwt.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/crypto.h"
#include "tests/common/status_matchers.h"

namespace credsync::emulator {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

using Json = nlohmann::json;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
constexpr char kSubject[] = "system:serviceaccount:default:demo";
constexpr char kIssuer[] = "https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c-test";

MATCHER_P(HasJwtError, error, absl::StrCat("fails with JwtError ", jwtErrorName(error))) {
  const std::optional<JwtError> actual = jwtErrorOf(arg.status());
  *result_listener << "status is " << arg.status().ToString();
  return actual == error;
}

// RSA key generation takes a noticeable moment; one key serves every test.
const SigningKey& issuerKey() {
  static const SigningKey* const key = [] {
    auto generated = SigningKey::generate();
    EXPECT_THAT(generated, IsOk());
    return new SigningKey(*std::move(generated));
  }();
  return *key;
}

Json validClaims(absl::Duration ttl = absl::Hours(1)) {
  return serviceAccountClaims({.issuer = kIssuer,
                               .subject = kSubject,
                               .audiences = {"sts.aliyuncs.com"},
                               .issued_at = kNow - absl::Minutes(1),
                               .ttl = ttl,
                               .pod_name = "demo-7d9f"});
}

std::string encodeJson(const Json& value) { return crypto::base64UrlEncode(value.dump()); }

// A token with any header and payload text, signed by `key` over exactly
// those bytes: what an attacker (or a buggy client) could send.
std::string forge(absl::string_view header_json, absl::string_view claims_json,
                  const SigningKey& key) {
  const std::string input =
      absl::StrCat(crypto::base64UrlEncode(header_json), ".", crypto::base64UrlEncode(claims_json));
  return absl::StrCat(input, ".", crypto::base64UrlEncode(key.signRs256(input)));
}

std::vector<std::string> splitToken(absl::string_view token) { return absl::StrSplit(token, '.'); }

// Verifies that a minted Kubernetes-style token verifies and yields its claims.
TEST(JwtTest, RoundTrip) {
  const std::string token = mintJwt(validClaims(), issuerKey());
  auto verified = verifyJwt(token, issuerKey().publicKey(), kNow);
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(verified->issuer, kIssuer);
  EXPECT_EQ(verified->subject, kSubject);
  EXPECT_THAT(verified->audiences, ElementsAre("sts.aliyuncs.com"));
  EXPECT_EQ(verified->issued_at, kNow - absl::Minutes(1));
  EXPECT_EQ(verified->expires_at, kNow - absl::Minutes(1) + absl::Hours(1));
  EXPECT_THAT(verified->not_before, Optional(kNow - absl::Minutes(1)));
  EXPECT_EQ(verified->key_id, issuerKey().keyId());
  EXPECT_EQ(verified->header,
            Json({{"alg", "RS256"}, {"kid", issuerKey().keyId()}, {"typ", "JWT"}}));
  const Json& kubernetes = verified->claims["kubernetes.io"];
  EXPECT_EQ(kubernetes["namespace"], "default");
  EXPECT_EQ(kubernetes["serviceaccount"]["name"], "demo");
  EXPECT_EQ(kubernetes["pod"]["name"], "demo-7d9f");
  EXPECT_TRUE(kubernetes["serviceaccount"]["uid"].is_string());
  EXPECT_TRUE(verified->claims["jti"].is_string());
}

// Verifies that a service account keeps one uid across tokens, as in a cluster.
TEST(JwtTest, ServiceAccountUidIsStable) {
  const Json first = validClaims();
  const Json second = validClaims();
  EXPECT_EQ(first["kubernetes.io"]["serviceaccount"]["uid"],
            second["kubernetes.io"]["serviceaccount"]["uid"]);
  EXPECT_NE(first["jti"], second["jti"]);
  const Json other = serviceAccountClaims({.issuer = kIssuer,
                                           .subject = "system:serviceaccount:default:other",
                                           .audiences = {"sts.aliyuncs.com"},
                                           .issued_at = kNow});
  EXPECT_NE(first["kubernetes.io"]["serviceaccount"]["uid"],
            other["kubernetes.io"]["serviceaccount"]["uid"]);
  EXPECT_FALSE(other["kubernetes.io"].contains("pod"));
}

// Verifies that a subject outside system:serviceaccount:NS:SA is minted as
// given, without a kubernetes.io block.
TEST(JwtTest, NonServiceAccountSubject) {
  const Json claims = serviceAccountClaims(
      {.issuer = kIssuer, .subject = "alice", .audiences = {"a"}, .issued_at = kNow});
  EXPECT_EQ(claims["sub"], "alice");
  EXPECT_FALSE(claims.contains("kubernetes.io"));
}

// Verifies that aud may be a lone string or an array, and that an empty or
// mistyped aud is malformed.
TEST(JwtTest, AudienceForms) {
  Json claims = validClaims();
  claims["aud"] = "sts.aliyuncs.com";
  auto single = verifyJwt(mintJwt(claims, issuerKey()), issuerKey().publicKey(), kNow);
  ASSERT_THAT(single, IsOk());
  EXPECT_THAT(single->audiences, ElementsAre("sts.aliyuncs.com"));

  claims["aud"] = Json::array({"sts.aliyuncs.com", "other"});
  auto two = verifyJwt(mintJwt(claims, issuerKey()), issuerKey().publicKey(), kNow);
  ASSERT_THAT(two, IsOk());
  EXPECT_THAT(two->audiences, ElementsAre("sts.aliyuncs.com", "other"));

  for (const Json& bad :
       {Json::array(), Json(""), Json(7), Json::array({"ok", 7}), Json::array({"ok", ""})}) {
    claims["aud"] = bad;
    EXPECT_THAT(verifyJwt(mintJwt(claims, issuerKey()), issuerKey().publicKey(), kNow),
                HasJwtError(JwtError::kMalformed))
        << bad.dump();
  }
  claims.erase("aud");
  EXPECT_THAT(verifyJwt(mintJwt(claims, issuerKey()), issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kMalformed));
}

// Verifies that the required claims must be present and well typed.
TEST(JwtTest, MissingOrMistypedClaims) {
  const std::vector<std::pair<const char*, Json>> cases = {
      {"iss", nullptr},
      {"iss", 1},
      {"iss", ""},
      {"sub", nullptr},
      {"sub", Json::array()},
      {"exp", nullptr},
      {"exp", "soon"},
      {"exp", true},
      {"iat", nullptr},
      {"iat", "x"},
      {"nbf", "x"},
      {"exp", Json::object()},
      {"exp", 18446744073709551615u},
  };
  for (const auto& [name, value] : cases) {
    Json claims = validClaims();
    if (value.is_null()) {
      claims.erase(name);
    } else {
      claims[name] = value;
    }
    EXPECT_THAT(verifyJwt(mintJwt(claims, issuerKey()), issuerKey().publicKey(), kNow),
                HasJwtError(JwtError::kMalformed))
        << name << "=" << value.dump();
  }
}

// Verifies that fractional NumericDates are accepted (RFC 7519 allows them).
TEST(JwtTest, FractionalNumericDate) {
  Json claims = validClaims();
  claims["exp"] = absl::ToUnixSeconds(kNow) + 0.5;
  auto verified = verifyJwt(mintJwt(claims, issuerKey()), issuerKey().publicKey(), kNow);
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(verified->expires_at, kNow + absl::Milliseconds(500));
}

// Verifies that changing the payload after signing breaks the signature.
TEST(JwtTest, TamperedPayload) {
  const std::vector<std::string> parts = splitToken(mintJwt(validClaims(), issuerKey()));
  Json claims = validClaims();
  claims["sub"] = "system:serviceaccount:kube-system:admin";
  const std::string tampered = absl::StrCat(parts[0], ".", encodeJson(claims), ".", parts[2]);
  auto result = verifyJwt(tampered, issuerKey().publicKey(), kNow);
  EXPECT_THAT(result, HasJwtError(JwtError::kBadSignature));
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("signature")));
}

// Verifies that a changed signature byte, a truncated signature and an empty
// one are refused.
TEST(JwtTest, TamperedSignature) {
  const std::vector<std::string> parts = splitToken(mintJwt(validClaims(), issuerKey()));
  std::string signature = *crypto::base64UrlDecode(parts[2]);
  signature[signature.size() / 2] ^= 0x01;
  const std::string prefix = absl::StrCat(parts[0], ".", parts[1], ".");
  EXPECT_THAT(verifyJwt(prefix + crypto::base64UrlEncode(signature), issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kBadSignature));
  signature.resize(signature.size() - 1);
  EXPECT_THAT(verifyJwt(prefix + crypto::base64UrlEncode(signature), issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kBadSignature));
  EXPECT_THAT(verifyJwt(prefix, issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kBadSignature));
}

// Verifies that base64url spellings other than the canonical one (padding,
// stray low bits in the last character, whitespace, the standard alphabet)
// are malformed, so a signed token cannot be altered and still verify.
TEST(JwtTest, NonCanonicalBase64IsMalformed) {
  const std::string token = mintJwt(validClaims(), issuerKey());
  const std::vector<std::string> parts = splitToken(token);
  ASSERT_THAT(verifyJwt(token, issuerKey().publicKey(), kNow), IsOk());
  // A 256-byte signature encodes to 342 characters whose last carries 4
  // unused low bits; flipping one keeps the decoded bytes.
  std::string signature = parts[2];
  ASSERT_EQ(signature.size() % 4, 2u);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  signature.back() = alphabet[alphabet.find(signature.back()) ^ 1];
  ASSERT_EQ(*crypto::base64UrlDecode(signature), *crypto::base64UrlDecode(parts[2]));
  const std::string prefix = absl::StrCat(parts[0], ".", parts[1], ".");
  for (const std::string& bad : {prefix + signature, prefix + parts[2] + "==",
                                 absl::StrCat(parts[0], " .", parts[1], ".", parts[2]),
                                 absl::StrCat(parts[0], ".", parts[1], "\n.", parts[2])}) {
    EXPECT_THAT(verifyJwt(bad, issuerKey().publicKey(), kNow), HasJwtError(JwtError::kMalformed));
  }
  std::string standard_alphabet = token;
  for (char& c : standard_alphabet) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  if (standard_alphabet != token) {
    EXPECT_THAT(verifyJwt(standard_alphabet, issuerKey().publicKey(), kNow),
                HasJwtError(JwtError::kMalformed));
  }
}

// Verifies that a token signed by a key the issuer does not trust is refused,
// whether it names its own kid or forges the issuer's.
TEST(JwtTest, WrongKey) {
  const SigningKey& rogue = rogueSigningKey();
  EXPECT_NE(rogue.keyId(), issuerKey().keyId());
  EXPECT_EQ(&rogue, &rogueSigningKey());
  EXPECT_THAT(verifyJwt(mintJwt(validClaims(), rogue), issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kBadSignature));

  const Json header = {{"alg", "RS256"}, {"kid", issuerKey().keyId()}, {"typ", "JWT"}};
  const std::string forged = forge(header.dump(), validClaims().dump(), rogue);
  EXPECT_THAT(verifyJwt(forged, issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kBadSignature));
  // The rogue key's own public key accepts the same forgery's signature.
  const Json rogue_header = {{"alg", "RS256"}, {"typ", "JWT"}};
  EXPECT_THAT(
      verifyJwt(forge(rogue_header.dump(), validClaims().dump(), rogue), rogue.publicKey(), kNow),
      IsOk());
}

// Verifies that a header without kid is accepted when the signature holds
// (RFC 7515 makes kid optional), and that a non-string kid is malformed.
TEST(JwtTest, KidOptional) {
  const std::string token =
      forge(Json({{"alg", "RS256"}}).dump(), validClaims().dump(), issuerKey());
  auto verified = verifyJwt(token, issuerKey().publicKey(), kNow);
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(verified->key_id, "");
  EXPECT_THAT(verifyJwt(forge(Json({{"alg", "RS256"}, {"kid", 5}}).dump(), validClaims().dump(),
                              issuerKey()),
                        issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kMalformed));
}

// Verifies that alg "none" (unsigned) is refused.
TEST(JwtTest, AlgNoneRejected) {
  for (const char* alg : {"none", "None", "NONE"}) {
    const std::string token = absl::StrCat(encodeJson({{"alg", alg}, {"typ", "JWT"}}), ".",
                                           encodeJson(validClaims()), ".");
    auto result = verifyJwt(token, issuerKey().publicKey(), kNow);
    EXPECT_THAT(result, HasJwtError(JwtError::kMalformed)) << alg;
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("alg")));
  }
}

// Verifies that HS256, including the classic confusion attack that uses the
// RSA public key as the HMAC secret, and other algorithms are refused.
TEST(JwtTest, OtherAlgorithmsRejected) {
  const std::string pem = issuerKey().publicKey().toPem();
  const std::string input =
      absl::StrCat(encodeJson({{"alg", "HS256"}, {"kid", issuerKey().keyId()}, {"typ", "JWT"}}),
                   ".", encodeJson(validClaims()));
  const std::string hs256 =
      absl::StrCat(input, ".", crypto::base64UrlEncode(crypto::hmacSha256(pem, input)));
  EXPECT_THAT(verifyJwt(hs256, issuerKey().publicKey(), kNow), HasJwtError(JwtError::kMalformed));

  for (const Json& alg : {Json("rs256"), Json("RS384"), Json("PS256"), Json("ES256"), Json(nullptr),
                          Json(256), Json::array({"RS256"})}) {
    Json header = {{"alg", alg}, {"kid", issuerKey().keyId()}};
    EXPECT_THAT(verifyJwt(forge(header.dump(), validClaims().dump(), issuerKey()),
                          issuerKey().publicKey(), kNow),
                HasJwtError(JwtError::kMalformed))
        << alg.dump();
  }
  EXPECT_THAT(verifyJwt(forge(R"({"kid":"x"})", validClaims().dump(), issuerKey()),
                        issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kMalformed));
}

// Verifies that a header naming critical extensions is refused (RFC 7515
// section 4.1.11: a verifier must understand them).
TEST(JwtTest, CritRejected) {
  const Json header = {{"alg", "RS256"}, {"crit", {"exp"}}, {"exp", 1}};
  EXPECT_THAT(verifyJwt(forge(header.dump(), validClaims().dump(), issuerKey()),
                        issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kMalformed));
}

// Verifies that duplicate member names, which parsers resolve differently,
// are refused in both the header and the claims.
TEST(JwtTest, DuplicateNamesRejected) {
  const std::string claims = validClaims().dump();
  EXPECT_THAT(verifyJwt(forge(R"({"alg":"RS256","alg":"none"})", claims, issuerKey()),
                        issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kMalformed));
  const std::string duplicated_sub =
      absl::StrCat(claims.substr(0, claims.size() - 1), R"(,"sub":"system:serviceaccount:a:b"})");
  EXPECT_THAT(verifyJwt(forge(R"({"alg":"RS256"})", duplicated_sub, issuerKey()),
                        issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kMalformed));
  // The same name in two different objects is fine.
  EXPECT_THAT(verifyJwt(forge(R"({"alg":"RS256"})",
                              absl::StrCat(claims.substr(0, claims.size() - 1),
                                           R"(,"x":{"sub":1},"y":{"sub":2}})"),
                              issuerKey()),
                        issuerKey().publicKey(), kNow),
              IsOk());
}

// Verifies that exp is exclusive with no skew: a token is expired at exp.
TEST(JwtTest, Expired) {
  const Json claims = validClaims();
  const absl::Time expires = absl::FromUnixSeconds(claims["exp"].get<int64_t>());
  const std::string token = mintJwt(claims, issuerKey());
  EXPECT_THAT(verifyJwt(token, issuerKey().publicKey(), expires - absl::Seconds(1)), IsOk());
  auto at_expiry = verifyJwt(token, issuerKey().publicKey(), expires);
  EXPECT_THAT(at_expiry, HasJwtError(JwtError::kExpired));
  EXPECT_THAT(at_expiry, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
  // A negative ttl mints an already expired token, as the admin API offers.
  EXPECT_THAT(verifyJwt(mintJwt(validClaims(-absl::Minutes(5)), issuerKey()),
                        issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kExpired));
}

// Verifies that a token is not valid before nbf, and is from nbf on.
TEST(JwtTest, NotYetValid) {
  Json claims = validClaims();
  claims["nbf"] = absl::ToUnixSeconds(kNow) + 10;
  const std::string token = mintJwt(claims, issuerKey());
  EXPECT_THAT(verifyJwt(token, issuerKey().publicKey(), kNow), HasJwtError(JwtError::kNotYetValid));
  EXPECT_THAT(verifyJwt(token, issuerKey().publicKey(), kNow + absl::Seconds(10)), IsOk());
  claims.erase("nbf");
  auto without = verifyJwt(mintJwt(claims, issuerKey()), issuerKey().publicKey(), kNow);
  ASSERT_THAT(without, IsOk());
  EXPECT_EQ(without->not_before, std::nullopt);
}

// Verifies that a token over 20,000 characters is refused before any parsing,
// even when it is correctly signed.
TEST(JwtTest, Oversized) {
  Json claims = validClaims();
  claims["padding"] = std::string(kMaxJwtLength, 'x');
  const std::string token = mintJwt(claims, issuerKey());
  ASSERT_GT(token.size(), kMaxJwtLength);
  auto result = verifyJwt(token, issuerKey().publicKey(), kNow);
  EXPECT_THAT(result, HasJwtError(JwtError::kMalformed));
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("20000")));
  EXPECT_THAT(verifyJwt(std::string(kMaxJwtLength + 1, 'a'), issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kMalformed));
}

// Verifies that JSON nested deeper than the limit is refused unparsed, while
// a token at the limit still verifies.
TEST(JwtTest, DeepJsonRejected) {
  auto nested = [](int depth) {
    return absl::StrCat(std::string(depth, '['), std::string(depth, ']'));
  };
  Json claims = validClaims();
  claims["deep"] = Json::parse(nested(kMaxJwtJsonDepth - 1));  // the claims object adds one
  EXPECT_THAT(verifyJwt(mintJwt(claims, issuerKey()), issuerKey().publicKey(), kNow), IsOk());
  claims["deep"] = Json::parse(nested(kMaxJwtJsonDepth));
  EXPECT_THAT(verifyJwt(mintJwt(claims, issuerKey()), issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kMalformed));
  // Brackets inside strings do not count.
  claims["deep"] = std::string(100, '[');
  EXPECT_THAT(verifyJwt(mintJwt(claims, issuerKey()), issuerKey().publicKey(), kNow), IsOk());
  EXPECT_THAT(verifyJwt(forge(absl::StrCat(R"({"alg":"RS256","x":)", nested(5000), "}"),
                              validClaims().dump(), issuerKey()),
                        issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kMalformed));
}

// Verifies that garbage of every shape is malformed, never a crash or OK.
TEST(JwtTest, Garbage) {
  const std::string header = encodeJson({{"alg", "RS256"}});
  const std::string claims = encodeJson(validClaims());
  const std::string valid = mintJwt(validClaims(), issuerKey());
  const std::vector<std::string> inputs = {
      "",
      ".",
      "..",
      "...",
      "abc",
      "a.b",
      "a.b.c",
      "a.b.c.d",
      valid + ".",
      "." + valid,
      valid.substr(0, valid.size() / 2),
      "eyJ.eyJ.sig",
      std::string("\0\0\0", 3),
      "\xff\xfe.\x80.\x01",
      absl::StrCat(crypto::base64UrlEncode("not json"), ".", claims, ".AAAA"),
      absl::StrCat(encodeJson(Json::array({"alg", "RS256"})), ".", claims, ".AAAA"),
      absl::StrCat(encodeJson("RS256"), ".", claims, ".AAAA"),
      absl::StrCat(crypto::base64UrlEncode(R"({"alg":"RS256"} trailing)"), ".", claims, ".AAAA"),
      absl::StrCat(header, ".", crypto::base64UrlEncode("{"), ".AAAA"),
      absl::StrCat(header, ".", crypto::base64UrlEncode("\xff\xff"), ".AAAA"),
  };
  for (const std::string& input : inputs) {
    auto result = verifyJwt(input, issuerKey().publicKey(), kNow);
    EXPECT_THAT(result, HasJwtError(JwtError::kMalformed)) << ::testing::PrintToString(input);
    EXPECT_THAT(result.status().message(), HasSubstr("malformed"));
  }
  // A signed token whose claims are not an object (mintJwt allows it).
  EXPECT_THAT(verifyJwt(mintJwt(Json::array({1, 2}), issuerKey()), issuerKey().publicKey(), kNow),
              HasJwtError(JwtError::kMalformed));
}

// Verifies that mintJwt does not throw on invalid UTF-8 in a claim; the
// bytes are replaced and the token still verifies.
TEST(JwtTest, InvalidUtf8ClaimDoesNotThrow) {
  Json claims = validClaims();
  claims["sub"] = std::string("bad\xff");
  const std::string token = mintJwt(claims, issuerKey());
  auto verified = verifyJwt(token, issuerKey().publicKey(), kNow);
  ASSERT_THAT(verified, IsOk());
  EXPECT_EQ(verified->subject, "bad\xef\xbf\xbd");
}

// Verifies the token with the openssl command line, independently of our
// code: the header and signature are what RFC 7515 RS256 prescribes.
TEST(JwtTest, IndependentOpensslVerification) {
  char dir_template[] = "/tmp/jwt_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string token = mintJwt(validClaims(), issuerKey());
  const std::vector<std::string> parts = splitToken(token);
  ASSERT_EQ(parts.size(), 3u);

  const Json header = Json::parse(*crypto::base64UrlDecode(parts[0]));
  EXPECT_EQ(header["alg"], "RS256");
  EXPECT_EQ(header["typ"], "JWT");
  EXPECT_EQ(header["kid"], issuerKey().keyId());

  auto write = [&](const std::string& name, const std::string& contents) {
    std::ofstream(dir + "/" + name, std::ios::binary) << contents;
  };
  write("pub.pem", issuerKey().publicKey().toPem());
  write("input.txt", absl::StrCat(parts[0], ".", parts[1]));
  write("tampered.txt", absl::StrCat(parts[0], ".", parts[1], "x"));
  write("sig.bin", *crypto::base64UrlDecode(parts[2]));
  const std::string verify = absl::StrCat("openssl dgst -sha256 -verify ", dir, "/pub.pem",
                                          " -signature ", dir, "/sig.bin ");
  EXPECT_EQ(std::system((verify + dir + "/input.txt >/dev/null 2>&1").c_str()), 0);
  EXPECT_NE(std::system((verify + dir + "/tampered.txt >/dev/null 2>&1").c_str()), 0);

  // And the other way round: openssl signs, verifyJwt accepts.
  write("key.pem", issuerKey().toPem().reveal());
  const std::string other_input = absl::StrCat(parts[0], ".", encodeJson(validClaims()));
  write("other.txt", other_input);
  ASSERT_EQ(std::system(absl::StrCat("openssl dgst -sha256 -sign ", dir, "/key.pem -out ", dir,
                                     "/other.sig ", dir, "/other.txt")
                            .c_str()),
            0);
  std::ifstream in(dir + "/other.sig", std::ios::binary);
  const std::string signature((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
  EXPECT_THAT(verifyJwt(absl::StrCat(other_input, ".", crypto::base64UrlEncode(signature)),
                        issuerKey().publicKey(), kNow),
              IsOk());
  std::filesystem::remove_all(dir);
}

// Verifies the key id against RFC 7638 section 3.1's worked example.
TEST(JwtTest, Rfc7638Thumbprint) {
  const Json jwk = {
      {"kty", "RSA"},
      {"n",
       "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
       "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
       "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
       "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
      {"e", "AQAB"},
      {"alg", "RS256"},
  };
  auto key = PublicKey::fromJwk(jwk);
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(key->keyId(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  EXPECT_EQ(key->jwk()["n"], jwk["n"]);
}

// Verifies the published JWK: its members, its kid, and that a key rebuilt
// from it (or from the PEM) verifies the issuer's tokens.
TEST(JwtTest, JwkAndPemRoundTrip) {
  const Json& jwk = issuerKey().jwk();
  EXPECT_EQ(jwk["kty"], "RSA");
  EXPECT_EQ(jwk["alg"], "RS256");
  EXPECT_EQ(jwk["use"], "sig");
  EXPECT_EQ(jwk["e"], "AQAB");
  EXPECT_EQ(jwk["kid"], issuerKey().keyId());
  EXPECT_FALSE(jwk.contains("d"));
  EXPECT_EQ(crypto::base64UrlDecode(jwk["n"].get<std::string>())->size(), 256u);

  const std::string token = mintJwt(validClaims(), issuerKey());
  Json without_kid = jwk;
  without_kid.erase("kid");
  for (const Json& published : {jwk, without_kid}) {
    auto rebuilt = PublicKey::fromJwk(published);
    ASSERT_THAT(rebuilt, IsOk());
    EXPECT_EQ(rebuilt->keyId(), issuerKey().keyId());
    EXPECT_THAT(verifyJwt(token, *rebuilt, kNow), IsOk());
  }
  auto from_pem = PublicKey::fromPem(issuerKey().publicKey().toPem());
  ASSERT_THAT(from_pem, IsOk());
  EXPECT_EQ(from_pem->keyId(), issuerKey().keyId());
  EXPECT_THAT(verifyJwt(token, *from_pem, kNow), IsOk());

  // A copy shares the key and signs the same way.
  const SigningKey copy = issuerKey();
  EXPECT_EQ(copy.keyId(), issuerKey().keyId());
  EXPECT_EQ(copy.signRs256("input"), issuerKey().signRs256("input"));

  auto reloaded = SigningKey::fromPem(issuerKey().toPem().reveal());
  ASSERT_THAT(reloaded, IsOk());
  EXPECT_EQ(reloaded->keyId(), issuerKey().keyId());
  EXPECT_THAT(verifyJwt(mintJwt(validClaims(), *reloaded), issuerKey().publicKey(), kNow), IsOk());
}

// Verifies that unusable keys are refused: wrong kty or alg, bad encodings,
// a short modulus, an EC key, and a private key where a public one belongs.
TEST(JwtTest, BadKeysRejected) {
  const Json good = issuerKey().jwk();
  auto with = [&](const char* name, const Json& value) {
    Json jwk = good;
    jwk[name] = value;
    return jwk;
  };
  for (const Json& bad :
       {Json("not an object"), with("kty", "EC"), with("alg", "HS256"), with("n", "***"),
        with("n", "AA" + good["n"].get<std::string>()), with("e", ""), with("e", "AQA="),
        with("e", "AQAA"), with("e", "AQ"), with("kid", 3),
        with("n", crypto::base64UrlEncode(std::string(128, '\x81')))}) {
    EXPECT_THAT(PublicKey::fromJwk(bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad.dump();
  }
  EXPECT_THAT(PublicKey::fromPem("garbage"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PublicKey::fromPem(issuerKey().toPem().reveal()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SigningKey::fromPem("garbage"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SigningKey::fromPem(issuerKey().publicKey().toPem()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Throwaway keys made with `openssl genpkey`, used nowhere else.
  const std::string ec_key =
      "-----BEGIN PRIVATE KEY-----\n"
      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjx28iJXI88Z+PirB\n"
      "CbcC9h0UzSRDVkzo5siCgFznhsahRANCAASsDjLOni9GCupC72eL+h3Nr1t3DDhC\n"
      "ZFFcCC7wT+DzNoIHCOoZ7V41FFWZHt/EfWZEQlfJpZKOLTs5F89gIQAJ\n"
      "-----END PRIVATE KEY-----\n";
  const std::string rsa_1024_key =
      "-----BEGIN PRIVATE KEY-----\n"
      "MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBAL1tMYrvz3II6d94\n"
      "FtgDY9ggIJq937pskoSsI6xNKlRIUUwmSDm/CavAzVECOw2Rb3LNzekyPh3iJjHB\n"
      "R6OL/kbq43QCmgVCztmdGsHTA1j3RBA9ipq1bps1J677X/M6K/MygtpWxWhCZPDo\n"
      "gQ/U/wafxNVCU7YvmDTST1DDlTdHAgMBAAECgYAwdz+1zKXHB4DPLGqr2jIxmga9\n"
      "kNctW5ohV+nIq/WomtgyI5lXLQnMaAggMfHqBsv9E6sbfz9lZfdfw5QQxEDKczNq\n"
      "rIALRbuV4Ck6c5zKLgplTz8b5oJRpsWfdzokEMArxjaNEhg1srXqOn8Fb/7lwDmR\n"
      "KNWINTwsE8gDMbgwAQJBAPAR+6tAMUoYpV+pYTwoDOpxGoboxZz2eDiCyNBoa1rb\n"
      "WpHTK33V5o3QPvd21FGROF398T/ImwwnNL+c97HHtPcCQQDJ/vAJggPC3df4FR+p\n"
      "ERI8Y0Zr0Q0xaZmQztGyZIyXbvB4GeR0s8jd7iV6LmLbTTq6dYapCWFTQJ0kd18H\n"
      "IAwxAkA7+uI8GR+3eYzn57PJieAgOv37svCclN/YjqSJnW0lGCT6xh3ZpLWjvOHe\n"
      "hivp7TR+F1JNM1u5n5oIPbmNC25lAkA7PHMCJsmZlNsn2nH9b48sfGSDa7v1uKUb\n"
      "LTubmBcOta75WYaAntSSGKuO6Bl/fGdzlNGXsrOC6Zjrv8HzYfeRAkBpYQu+TtJH\n"
      "xZ3Bwf4YeXRsTeoKVpo1vQgT7PP8Nj3hBf9RgCNbIq1I6xxHLu6tPuMk5P3BazDO\n"
      "ikCzoLWxOWXU\n"
      "-----END PRIVATE KEY-----\n";
  EXPECT_THAT(SigningKey::fromPem(ec_key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("RSA")));
  EXPECT_THAT(SigningKey::fromPem(rsa_1024_key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1024 bits")));
}

// Verifies that jwtErrorOf recognises only statuses verifyJwt made.
TEST(JwtTest, JwtErrorOfOtherStatuses) {
  EXPECT_EQ(jwtErrorOf(absl::OkStatus()), std::nullopt);
  EXPECT_EQ(jwtErrorOf(absl::InvalidArgumentError("x")), std::nullopt);
  auto result = verifyJwt("x", issuerKey().publicKey(), kNow);
  ASSERT_THAT(result, Not(IsOk()));
  EXPECT_EQ(jwtErrorOf(result.status()), JwtError::kMalformed);
  EXPECT_EQ(jwtErrorName(JwtError::kNotYetValid), "not_yet_valid");
}

}  // namespace
}  // namespace credsync::emulator
