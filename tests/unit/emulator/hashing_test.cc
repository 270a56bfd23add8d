#include "tests/emulator/hashing.h"

#include <string>

#include "gtest/gtest.h"

namespace credsync::emulator::hashing {
namespace {

// Verifies SHA-256 against the openapi-util vector and the empty input.
TEST(HashingTest, Sha256Hex) {
  // aliyun/darabonba-openapi-util tests (hash of "test").
  EXPECT_EQ(sha256Hex("test"), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// Verifies HMAC-SHA1 against the credentials libraries' published vectors.
TEST(HashingTest, HmacSha1Base64) {
  // aliyun/credentials-go and alibaba-cloud-sdk-go utils tests.
  EXPECT_EQ(hmacSha1Base64("secret", "source"), "Jv4yi8SobFhg5t1C7nWLbhBSFZQ=");
  EXPECT_EQ(hmacSha1Base64("secret", "中文"), "CqCYIa39h9SSWuXnTz8F5hh9UPA=");
  // aliyun/credentials-python tests/test_util.py.
  EXPECT_EQ(hmacSha1Base64("secret", "123"), "sU6S6xf2t47FogXuDhqyIPt/htc=");
  // aliyun/credentials-java ParameterHelperTest.
  EXPECT_EQ(hmacSha1Base64("sk#$!~~~", "abc~!@#"), "7eV3A584uvdgKVk8Ck8r9ukg1gE=");
}

// Verifies HMAC-SHA256, including the empty key (RFC 2104 pads it to a
// block of zeros; the empty key and message give the well-known b613...).
TEST(HashingTest, HmacSha256Hex) {
  EXPECT_EQ(hmacSha256Hex("", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  // RFC 4231 test case 2.
  EXPECT_EQ(hmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// Verifies strict base64: padded standard alphabet only.
TEST(HashingTest, Base64DecodeIsStrict) {
  EXPECT_EQ(*base64Decode(""), "");
  EXPECT_EQ(*base64Decode("Zg=="), "f");
  EXPECT_EQ(*base64Decode("Zm8="), "fo");
  EXPECT_EQ(*base64Decode("Zm9v"), "foo");
  EXPECT_EQ(*base64Decode("+/+/"), std::string("\xfb\xff\xbf", 3));
  for (const char* bad : {"Zg", "Zg=", "Zg===", "Z===", "Zm9v\n", "Zm 9", "Zm-_", "Z=g=", "===="}) {
    EXPECT_FALSE(base64Decode(bad).has_value()) << bad;
  }
}

// Verifies byte comparison: equal only for the same length and bytes.
TEST(HashingTest, SameBytes) {
  EXPECT_TRUE(sameBytes("abc", "abc"));
  EXPECT_TRUE(sameBytes("", ""));
  EXPECT_FALSE(sameBytes("abc", "abd"));
  EXPECT_FALSE(sameBytes("abc", "ab"));
}

}  // namespace
}  // namespace credsync::emulator::hashing
