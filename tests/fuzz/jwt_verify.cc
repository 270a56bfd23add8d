// Fuzzes the emulator's JWT verifier, which reads the OIDCToken parameter of
// AssumeRoleWithOIDC: arbitrary bytes are verified against a fixed key at a
// fixed time. Invariants: every failure carries a JwtError whose status code
// matches it; an accepted token is unexpired, already valid and has an
// audience; and its claims, minted again, verify to the same identity.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/emulator/jwt.h"

namespace {

// A throwaway RSA 2048 key used by nothing but this target. It is private so
// that the target can mint as well as verify, and so the seeds in
// corpus/jwt_verify (minted with it, valid at kNow) can be made again.
constexpr char kFuzzKeyPem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDYhxjByqTwSpms\n"
    "zZi/v4k3A86XCT43yXAvzIxX3R6/pVaXv5Ihtx7FRxetdc9rOshyg10KMdyW+GH/\n"
    "QLSd3O/fpTlz3jH310KKb4tfmASqUB5BCsVnd39N11KKGubg/+WS5QEP4nR1QPjZ\n"
    "pZNaaxZTtjgF1bVEpG0EWiQQx2H1Dv3/ewHmXPjPw/xYoYK5ukWYRonwUVXvMGfB\n"
    "G2btvcCxN+XRpQU0E9OurC6w+MKgCReA6YPyGxEGDoFpvLq2diYOsRf9JtOYLH8+\n"
    "xfL9piM7AGILdqgA9gYhh41lnVSsfZiJejO3Xkl6iiCSUcPAMNEt/NlWYZG/CAio\n"
    "jwTyaiELAgMBAAECggEAET99uN4wElYW9L1x6ABVaVT7zWs2khIRRjV4jn02OFTu\n"
    "12qytM3V/SgDGlWynpuRoRGWxTugk0QY5lDcsmCJmRqbv3+ZImF60vU8uHIvGPQF\n"
    "3O+DNxE9SlGXKRoofw7TVka4tW+4ECkLSacXXFIAds2im9BgvqWMa5bUnaOMSY1x\n"
    "IcSu4NYkZAoZX7XZlNQbNxhm8bvWggE29eHznfi5q8/sdpsP3QMJtt1GfosvpcFE\n"
    "EIOVTF9PHX5wUCDmkAzFRClOLw6RBp7O2Gh09dg1M9wpb88nobdryFHJM7WDnpr6\n"
    "6uBD60qByicCypz5Pm/3iM+YXkdBRFizsjAPQnZrfQKBgQD153BfGoDqL+VkW+U8\n"
    "wHy/3n2BJgjompFOOmVKcA16pXWSFnVPB3VoANRJRd58giYOtAwoRZvDLNMktqge\n"
    "ou9u8fTd6P/97icdRlpDmo8D2vakqzQc+YBqY8SW5oNCKf+NWEoynRE8h0WbZT0y\n"
    "4NeeazzkbNtX9yIiFYtmPUjWBQKBgQDhauY+Me4Xfcn6SsrGLFpH2ueCWOtEwoDk\n"
    "9AtvvF28kU7Uk13hw9SlG1HohD//s60NkVNzER3qlPgXmjuJOUsR+2LjYyOFQhHd\n"
    "SfrIZ+mKOXPEyDb/ZryQy0rkxQsM/Labd6U2vzew2aF/e058c+WklmnjHij0SjEr\n"
    "y8l20II3zwKBgDL/xPZ0cLghJtohlPF8mmLQqgbW9JIJPImU4t0FUEZXeoLJ1ZqG\n"
    "WXswcNahfvsjovD5tmvDxAI+kavTlhqEgFPqKna7lBv+AG654I6Ux4RtLSoJt80q\n"
    "kc9+0Y7aT+6w9ydBYGIO4TxEcdNAs+iRaSaZ5w8Y5ITh5FpdTYPuweRhAoGBALFU\n"
    "SzR6Svcn+ZBw7fvgQFVum9kq4koBSSzT33tTD9qb5QvNsnk8eTg5ucHU6BPb4TNf\n"
    "M+q9eG9mKZVHu7ZD4A6RWEXRY8wdIbiXzjWBqXMXpz8S0lExHP47LvuxFvRsiarc\n"
    "AJiE7OavDiEfe6rj8a/8s+f7ffRPuUbe1eomNYp5AoGBALhBVSff8MwM33MI8mLk\n"
    "utnczcUSLKmO1OfBwyGfzOnuhPpEOY3pCiZd+PvPEYEvjHrCTYqB3wiOizEDnz2a\n"
    "w0Q9TifUyIG4Ku9gFpGwYlrbb4Sc7gGsDjnfd/X/yb++x+zJ961/tXExbqrPFoE2\n"
    "jFqjVlNof6klYYhcmJtwRzYP\n"
    "-----END PRIVATE KEY-----\n";

// 2026-01-01T00:00:00Z; the valid seeds expire an hour later.
const absl::Time kNow = absl::FromUnixSeconds(1767225600);

void check(bool condition) {
  if (!condition) std::abort();
}

const credsync::emulator::SigningKey& fuzzKey() {
  static const credsync::emulator::SigningKey* const key = [] {
    auto loaded = credsync::emulator::SigningKey::fromPem(kFuzzKeyPem);
    check(loaded.ok());
    return new credsync::emulator::SigningKey(*std::move(loaded));
  }();
  return *key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using credsync::emulator::JwtError;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const auto result = credsync::emulator::verifyJwt(input, fuzzKey().publicKey(), kNow);
  if (!result.ok()) {
    const auto error = credsync::emulator::jwtErrorOf(result.status());
    check(error.has_value());
    check((*error == JwtError::kMalformed) ==
          (result.status().code() == absl::StatusCode::kInvalidArgument));
    check(!result.status().message().empty());
    return 0;
  }
  check(result->expires_at > kNow);
  check(!result->not_before || *result->not_before <= kNow);
  check(!result->audiences.empty() && !result->subject.empty() && !result->issuer.empty());
  check(result->claims.is_object() && result->header.is_object());

  // Serializing may lengthen the token (1e2 prints as 100.0), so only tokens
  // still within the limit must survive the round trip.
  const std::string reminted = credsync::emulator::mintJwt(result->claims, fuzzKey());
  if (reminted.size() <= credsync::emulator::kMaxJwtLength) {
    const auto again = credsync::emulator::verifyJwt(reminted, fuzzKey().publicKey(), kNow);
    check(again.ok());
    check(again->subject == result->subject && again->issuer == result->issuer &&
          again->audiences == result->audiences && again->expires_at == result->expires_at);
  }
  return 0;
}
