#include "sidecar/common/crypto.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/status_matchers.h"

namespace credsync::crypto {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::MatchesRegex;

std::string allBytes() {
  std::string bytes;
  for (int byte = 0; byte < 256; ++byte) bytes.push_back(static_cast<char>(byte));
  return bytes;
}

// Verifies SHA-256 against the darabonba-openapi-util vector and the empty input.
TEST(CryptoTest, Sha256MatchesKnownVectors) {
  // aliyun/darabonba-openapi-util golang/service/service_test.go (Test_HexEncode).
  EXPECT_EQ(hexLower(sha256("test")),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  EXPECT_EQ(hexLower(sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256("test").size(), 32u);
}

// Verifies HMAC-SHA1 against the official SDK utility vectors (key used as given).
TEST(CryptoTest, HmacSha1MatchesOfficialSdkVectors) {
  // aliyun/credentials-go credentials/internal/utils/utils_test.go (TestShaHmac1).
  EXPECT_EQ(base64Encode(hmacSha1("secret", "source")), "Jv4yi8SobFhg5t1C7nWLbhBSFZQ=");
  EXPECT_EQ(base64Encode(hmacSha1("secret", "中文")), "CqCYIa39h9SSWuXnTz8F5hh9UPA=");
  // aliyun/credentials-python tests/test_util.py (test_sign_string).
  EXPECT_EQ(base64Encode(hmacSha1("secret", "123")), "sU6S6xf2t47FogXuDhqyIPt/htc=");
  // aliyun/credentials-java src/test/java/com/aliyun/credentials/utils/ParameterHelperTest.java.
  EXPECT_EQ(base64Encode(hmacSha1("sk#$!~~~", "abc~!@#")), "7eV3A584uvdgKVk8Ck8r9ukg1gE=");
}

// Verifies HMAC-SHA256 against RFC 4231 test case 2.
TEST(CryptoTest, HmacSha256MatchesRfc4231) {
  EXPECT_EQ(hexLower(hmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// Verifies lowercase hex of arbitrary bytes.
TEST(CryptoTest, HexLowerEncodesBytes) {
  EXPECT_EQ(hexLower(std::string("\x00\xff\x10\xab", 4)), "00ff10ab");
  EXPECT_EQ(hexLower(""), "");
}

// Verifies Base64 against the RFC 4648 section 10 vectors, both directions.
TEST(CryptoTest, Base64MatchesRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64Encode(plain), encoded);
    auto decoded = base64Decode(encoded);
    ASSERT_THAT(decoded, IsOk()) << encoded;
    EXPECT_EQ(*decoded, plain);
  }
}

// Verifies Base64 and Base64url round trips over every byte value and length.
TEST(CryptoTest, Base64RoundTripsAllBytes) {
  const std::string bytes = allBytes();
  for (size_t length = 0; length <= bytes.size(); length += 37) {
    const std::string input = bytes.substr(0, length);
    EXPECT_EQ(*base64Decode(base64Encode(input)), input) << length;
    EXPECT_EQ(*base64UrlDecode(base64UrlEncode(input)), input) << length;
  }
  EXPECT_EQ(*base64Decode(base64Encode(bytes)), bytes);
  EXPECT_EQ(*base64UrlDecode(base64UrlEncode(bytes)), bytes);
}

// Verifies the URL-safe alphabet and the absence of padding (as JWTs need).
TEST(CryptoTest, Base64UrlUsesUrlAlphabetWithoutPadding) {
  const std::string bytes("\xfb\xff", 2);
  EXPECT_EQ(base64Encode(bytes), "+/8=");
  EXPECT_EQ(base64UrlEncode(bytes), "-_8");
  EXPECT_THAT(base64UrlEncode(allBytes()), MatchesRegex("[A-Za-z0-9_-]+"));
}

// Verifies that malformed Base64 is INVALID_ARGUMENT.
TEST(CryptoTest, Base64RejectsBadInput) {
  for (const char* bad : {"!!!!", "Zg=a", "Z", "Zm9vYmFy=", "Zg==Zg==", "Zm9v*", "-_8"}) {
    EXPECT_THAT(base64Decode(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  for (const char* bad : {"!!!!", "Z", "+/8=", "Zm9v*", "Zg==Zg=="}) {
    EXPECT_THAT(base64UrlDecode(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

// Verifies constant-time comparison results (equality, difference, length).
TEST(CryptoTest, ConstantTimeEqualsComparesContent) {
  EXPECT_TRUE(constantTimeEquals("", ""));
  EXPECT_TRUE(constantTimeEquals("abc", "abc"));
  EXPECT_FALSE(constantTimeEquals("abc", "abd"));
  EXPECT_FALSE(constantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(constantTimeEquals("abc", ""));
}

// Verifies randomBytes returns the requested length and differs between calls.
TEST(CryptoTest, RandomBytesHaveRequestedLength) {
  EXPECT_EQ(randomBytes(0).size(), 0u);
  EXPECT_EQ(randomBytes(32).size(), 32u);
  EXPECT_NE(randomBytes(32), randomBytes(32));
}

// Verifies the UUID is a lowercase RFC 4122 version 4 UUID and unique per call.
TEST(CryptoTest, RandomUuidIsVersion4) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string uuid = randomUuid();
    EXPECT_THAT(uuid, MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                   "[0-9a-f]{12}"));
    seen.insert(uuid);
  }
  EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace credsync::crypto
