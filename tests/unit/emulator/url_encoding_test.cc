#include "tests/emulator/url_encoding.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/common/status_matchers.h"

namespace credsync::emulator {
namespace {

using ::credsync::testing::StatusIs;

// Verifies RFC 3986 encoding against the SDKs' published vectors.
TEST(Rfc3986EncodeTest, MatchesSdkVectors) {
  // aliyun/credentials-java AcsURLEncoderTest (percentEncodeReturnNormal).
  EXPECT_EQ(rfc3986Encode("123abc!@#$%^&*()-=_+ ~|\\/"),
            "123abc%21%40%23%24%25%5E%26%2A%28%29-%3D_%2B%20~%7C%5C%2F");
  // aliyun/openapi-core-nodejs-sdk test/rpc.test.js ('encode should ok').
  EXPECT_EQ(rfc3986Encode("str'str"), "str%27str");
  EXPECT_EQ(rfc3986Encode("str*str"), "str%2Astr");
}

// Verifies every byte: the unreserved set stays, the rest is %XY in
// uppercase hex, UTF-8 byte by byte.
TEST(Rfc3986EncodeTest, EncodesEveryOtherByte) {
  EXPECT_EQ(rfc3986Encode("AZaz09-_.~"), "AZaz09-_.~");
  EXPECT_EQ(rfc3986Encode("中"), "%E4%B8%AD");
  EXPECT_EQ(rfc3986Encode(std::string("\x00\x7f\xff", 3)), "%00%7F%FF");
  int encoded = 0;
  for (int byte = 0; byte < 256; ++byte) {
    encoded += rfc3986Encode(std::string(1, static_cast<char>(byte))).size() == 3 ? 1 : 0;
  }
  EXPECT_EQ(encoded, 256 - 66);
}

// Verifies form decoding: '+' is a space, escapes of either case, only the
// first '=' splits, empty pairs skipped, the last repeat wins.
TEST(ParseUrlEncodedTest, DecodesPairs) {
  auto params = parseUrlEncoded("q=a+b%2Bc&&expr=x=y=z&flag&%e4%b8%ad=%E6%96%87&a=1&a=2&");
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(*params,
            (ParamMap{{"a", "2"}, {"expr", "x=y=z"}, {"flag", ""}, {"q", "a b+c"}, {"中", "文"}}));
}

// Verifies a broken escape anywhere fails the whole parse.
TEST(ParseUrlEncodedTest, RefusesBrokenEscapes) {
  for (const char* bad : {"a=%", "a=%4", "a=%zz", "a%=1", "ok=1&bad=%g4"}) {
    EXPECT_THAT(parseUrlEncoded(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

}  // namespace
}  // namespace credsync::emulator
