#include "sidecar/alibaba/signature.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/crypto.h"
#include "tests/common/signature_vectors.h"
#include "tests/common/status_matchers.h"

// Vectors are data carried over from the official SDKs' tests and Alibaba's
// signature docs; each names its source.
// "Derived" marks a value computed from the documented rules (and checked
// with an independent Python implementation) rather than published.
namespace credsync::alibaba {
namespace {

namespace vectors = ::credsync::testing::signature_vectors;
using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ---------------------------------------------------------------------------
// percentEncode

// Verifies that the RFC 3986 unreserved set passes through untouched.
TEST(PercentEncodeTest, KeepsUnreservedCharacters) {
  const std::string unreserved =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
  EXPECT_EQ(percentEncode(unreserved), unreserved);
  EXPECT_EQ(percentEncode(""), "");
}

// Verifies the credentials-java vector for space, '*', '~', '+', '/' and friends.
TEST(PercentEncodeTest, MatchesCredentialsJavaAcsUrlEncoderVector) {
  // aliyun/credentials-java src/test/java/com/aliyun/credentials/utils/AcsURLEncoderTest.java
  // (percentEncodeReturnNormal).
  EXPECT_EQ(percentEncode("123abc!@#$%^&*()-=_+ ~|\\/"),
            "123abc%21%40%23%24%25%5E%26%2A%28%29-%3D_%2B%20~%7C%5C%2F");
}

// Verifies the darabonba-openapi-util GetEncodeParam vector ('/' and space).
TEST(PercentEncodeTest, MatchesOpenApiUtilEncodeParamVector) {
  // aliyun/darabonba-openapi-util golang/service/service_test.go (Test_GetEncodeParam).
  EXPECT_EQ(percentEncode("a/b/c/ test"), "a%2Fb%2Fc%2F%20test");
}

// Verifies the pop-core encode vectors for the sub-delimiters JavaScript leaves alone.
TEST(PercentEncodeTest, MatchesPopCoreEncodeVectors) {
  // aliyun/openapi-core-nodejs-sdk test/rpc.test.js ('encode should ok').
  EXPECT_EQ(percentEncode("str"), "str");
  EXPECT_EQ(percentEncode("str'str"), "str%27str");
  EXPECT_EQ(percentEncode("str(str"), "str%28str");
  EXPECT_EQ(percentEncode("str)str"), "str%29str");
  EXPECT_EQ(percentEncode("str*str"), "str%2Astr");
}

// Verifies that non-ASCII text is encoded byte by byte from its UTF-8 form.
TEST(PercentEncodeTest, EncodesUtf8BytesWithUppercaseHex) {
  // Derived: UTF-8 of U+4E2D U+6587 is E4 B8 AD E6 96 87.
  EXPECT_EQ(percentEncode("中文"), "%E4%B8%AD%E6%96%87");
  EXPECT_EQ(percentEncode(std::string("\x00\x7f\xff", 3)), "%00%7F%FF");
}

// Verifies every byte value: unreserved bytes stay, all others become %XY.
TEST(PercentEncodeTest, EncodesEveryReservedByte) {
  for (int byte = 0; byte < 256; ++byte) {
    const std::string input(1, static_cast<char>(byte));
    const std::string encoded = percentEncode(input);
    const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' || byte == '_' ||
                            byte == '.' || byte == '~';
    if (unreserved) {
      EXPECT_EQ(encoded, input) << byte;
    } else {
      ASSERT_EQ(encoded.size(), 3u) << byte;
      EXPECT_EQ(encoded[0], '%');
      EXPECT_EQ(encoded.substr(1), absl::AsciiStrToUpper(crypto::hexLower(input))) << byte;
    }
  }
}

// ---------------------------------------------------------------------------
// percentDecode

// Verifies that escapes decode in either hex case.
TEST(PercentDecodeTest, DecodesEitherHexCase) {
  EXPECT_EQ(*percentDecode("%E4%b8%aD%e6%96%87", false), "中文");
  EXPECT_EQ(*percentDecode("a%20b%2a%7E", false), "a b*~");
  EXPECT_EQ(*percentDecode("%00", false), std::string(1, '\0'));
  EXPECT_EQ(*percentDecode("", false), "");
}

// Verifies that '+' is a space only when asked for, and %2B is always '+'.
TEST(PercentDecodeTest, PlusIsSpaceOnlyWhenRequested) {
  EXPECT_EQ(*percentDecode("a+b%2Bc", true), "a b+c");
  EXPECT_EQ(*percentDecode("a+b%2Bc", false), "a+b+c");
}

// Verifies that truncated and non-hex escapes are rejected.
TEST(PercentDecodeTest, RejectsMalformedEscapes) {
  for (const char* bad : {"%", "%4", "abc%", "abc%2", "%zz", "%4g", "%g4", "%%41", "% 1"}) {
    EXPECT_THAT(percentDecode(bad, true), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_THAT(percentDecode(bad, false), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

// Verifies decode(encode(x)) == x for every byte and for mixed text.
TEST(PercentDecodeTest, InvertsPercentEncode) {
  std::string all_bytes;
  for (int byte = 0; byte < 256; ++byte) all_bytes.push_back(static_cast<char>(byte));
  for (const std::string& text : {all_bytes, std::string("a b+c/中文~*'()")}) {
    EXPECT_EQ(*percentDecode(percentEncode(text), true), text);
    EXPECT_EQ(*percentDecode(percentEncode(text), false), text);
  }
}

// ---------------------------------------------------------------------------
// parseQueryString

// Verifies the basic name=value&name=value shape.
TEST(ParseQueryStringTest, ParsesPairs) {
  auto params = parseQueryString("Action=GetSecretValue&SecretName=db%2Fpass&Version=2016-01-20");
  ASSERT_THAT(params, IsOk());
  EXPECT_EQ(
      *params,
      (Params{{"Action", "GetSecretValue"}, {"SecretName", "db/pass"}, {"Version", "2016-01-20"}}));
}

// Verifies a name without '=' gets the empty value, and "k=" is empty too.
TEST(ParseQueryStringTest, NameWithoutValueIsEmpty) {
  auto params = parseQueryString("flag&empty=&x=1");
  ASSERT_THAT(params, IsOk());
  EXPECT_EQ(*params, (Params{{"empty", ""}, {"flag", ""}, {"x", "1"}}));
}

// Verifies that a repeated name keeps the last value.
TEST(ParseQueryStringTest, RepeatedNameKeepsLastValue) {
  auto params = parseQueryString("a=1&a=2&a=3");
  ASSERT_THAT(params, IsOk());
  EXPECT_EQ(*params, (Params{{"a", "3"}}));
}

// Verifies that empty input and empty segments yield nothing.
TEST(ParseQueryStringTest, SkipsEmptySegments) {
  EXPECT_THAT(*parseQueryString(""), IsEmpty());
  EXPECT_THAT(*parseQueryString("&&"), IsEmpty());
  EXPECT_EQ(*parseQueryString("&a=1&&b=2&"), (Params{{"a", "1"}, {"b", "2"}}));
}

// Verifies form decoding: '+' is a space, %2B a plus, and only the first '=' splits.
TEST(ParseQueryStringTest, DecodesFormEncoding) {
  auto params = parseQueryString("q=a+b%2Bc&expr=x=y=z&%E4%B8%AD=%E6%96%87&=anonymous");
  ASSERT_THAT(params, IsOk());
  EXPECT_EQ(*params, (Params{{"", "anonymous"}, {"expr", "x=y=z"}, {"q", "a b+c"}, {"中", "文"}}));
}

// Verifies that a malformed escape in a name or a value fails the whole parse.
TEST(ParseQueryStringTest, RejectsMalformedEscapes) {
  EXPECT_THAT(parseQueryString("a=%zz"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(parseQueryString("a%=1"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(parseQueryString("ok=1&bad=%4"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Verifies parse(canonicalQueryString(p)) == p for awkward names and values.
TEST(ParseQueryStringTest, InvertsCanonicalQueryString) {
  const Params params = {{"", ""},
                         {"a b", "c+d"},
                         {"k&=", "v&=%"},
                         {"中文", "\xff\xfe binary"},
                         {"SecurityToken", "CAIS+abc/def=="}};
  EXPECT_EQ(*parseQueryString(canonicalQueryString(params)), params);
}

// ---------------------------------------------------------------------------
// canonicalQueryString

// Verifies the pop-core canonicalize vectors (sorting and joining).
TEST(CanonicalQueryStringTest, MatchesPopCoreCanonicalizeVectors) {
  // aliyun/openapi-core-nodejs-sdk test/rpc.test.js ('canonicalize should ok').
  EXPECT_EQ(canonicalQueryString({}), "");
  EXPECT_EQ(canonicalQueryString({{"key.1", "value"}}), "key.1=value");
  EXPECT_EQ(canonicalQueryString({{"key.1.Domain", "1.com"}}), "key.1.Domain=1.com");
  EXPECT_EQ(canonicalQueryString({{"c", "value"}, {"a", "value"}, {"b", "value"}}),
            "a=value&b=value&c=value");
}

// Verifies the GetURLFormedMap vector with a URL as a value.
TEST(CanonicalQueryStringTest, MatchesGetUrlFormedMapVector) {
  // aliyun/credentials-go credentials/internal/utils/utils_test.go (TestGetURLFormedMap) and
  // aliyun/alibaba-cloud-sdk-go sdk/utils/utils_test.go (TestGetUrlFormedMap).
  EXPECT_EQ(canonicalQueryString({{"key", "value"}}), "key=value");
  EXPECT_EQ(
      canonicalQueryString({{"key", "value"}, {"key2", "http://domain/?key=value&key2=value2"}}),
      "key=value&key2=http%3A%2F%2Fdomain%2F%3Fkey%3Dvalue%26key2%3Dvalue2");
}

// Verifies the darabonba-openapi-util canonical query vector (space, '~', '/', '*', '+').
TEST(CanonicalQueryStringTest, MatchesOpenApiUtilCanonicalQueryVector) {
  // aliyun/darabonba-openapi-util python/tests/test_client.py (test_get_canonical_query_string).
  EXPECT_EQ(canonicalQueryString({{"test", " ~/*-+"}}), "test=%20~%2F%2A-%2B");
}

// Verifies that names sort bytewise (uppercase first) and empty values stay as "k=".
TEST(CanonicalQueryStringTest, SortsBytewiseAndKeepsEmptyValues) {
  EXPECT_EQ(canonicalQueryString({{"a", "1"}, {"B", "2"}, {"empty", ""}, {"_", "3"}}),
            "B=2&_=3&a=1&empty=");
}

// ---------------------------------------------------------------------------
// rpc:: HMAC-SHA1

// The Alibaba "Request signatures" doc example (ECS DescribeRegions).
Params docExampleParams() { return vectors::rpcDocParams(); }

// Verifies the official doc vector, GET: StringToSign and OLeaidS1JvxuMvnyHOwuJ+uX5qY=.
TEST(RpcSignatureTest, MatchesOfficialDocGetVector) {
  // Alibaba Cloud "Request signatures" doc (help.aliyun.com/en/document_detail/130769.html).
  EXPECT_EQ(rpc::stringToSign("GET", docExampleParams()), vectors::kRpcDocGetStringToSign);
  EXPECT_EQ(rpc::signature("GET", docExampleParams(), vectors::kRpcDocSecret),
            vectors::kRpcDocGetSignature);
}

// Verifies the official doc vector with POST: MxbnVAM4w6sft9xjVpe/GCKueuk=.
TEST(RpcSignatureTest, MatchesOfficialDocPostVector) {
  // alibaba-facts.md 4.2 #1 (the doc's params signed with POST; recomputed).
  EXPECT_EQ(rpc::signature("POST", docExampleParams(), vectors::kRpcDocSecret),
            vectors::kRpcDocPostSignature);
}

// Verifies that a Signature parameter already present is left out of the signed string.
TEST(RpcSignatureTest, IgnoresSignatureParameter) {
  Params params = docExampleParams();
  params["Signature"] = "OLeaidS1JvxuMvnyHOwuJ+uX5qY=";
  EXPECT_EQ(rpc::stringToSign("GET", params), rpc::stringToSign("GET", docExampleParams()));
  EXPECT_EQ(rpc::signature("GET", params, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
}

// Verifies the alibaba-cloud-sdk-go composer vectors, with and without SecurityToken.
TEST(RpcSignatureTest, MatchesAlibabaCloudSdkGoComposerVectors) {
  // aliyun/alibaba-cloud-sdk-go sdk/auth/rpc_signature_composer_test.go (TestRpcSignatureComposer).
  Params params = vectors::rpcGoComposerParams();
  EXPECT_EQ(rpc::stringToSign("GET", params), vectors::kRpcGoComposerStringToSign);
  EXPECT_EQ(rpc::signature("GET", params, vectors::kRpcGoComposerSecret),
            vectors::kRpcGoComposerSignature);

  params["SecurityToken"] = vectors::kRpcGoComposerSecurityToken;
  EXPECT_EQ(rpc::signature("GET", params, vectors::kRpcGoComposerSecret),
            vectors::kRpcGoComposerWithTokenSignature);
}

// Verifies the alibaba-cloud-sdk-go buildRpcStringToSign vectors (form + query, nested URL).
TEST(RpcSignatureTest, MatchesAlibabaCloudSdkGoStringToSignVectors) {
  // aliyun/alibaba-cloud-sdk-go sdk/auth/rpc_signature_composer_test.go
  // (TestRpcSignatureComposer_buildRpcStringToSign): form and query params are signed together.
  EXPECT_EQ(rpc::stringToSign("GET", {}), "GET&%2F&");
  EXPECT_EQ(rpc::stringToSign("GET", {{"key", "value"}}), "GET&%2F&key%3Dvalue");
  EXPECT_EQ(rpc::stringToSign("GET", {{"key", "value"}, {"q", "value"}}),
            "GET&%2F&key%3Dvalue%26q%3Dvalue");
  EXPECT_EQ(rpc::stringToSign("GET", {{"key", "value"}, {"q", "http://domain/?q=value&q2=value2"}}),
            "GET&%2F&key%3Dvalue%26q%3Dhttp%253A%252F%252Fdomain%252F%253Fq%253Dvalue%2526q2%253D"
            "value2");
}

// Verifies the credentials-python compose_string_to_sign vector for no params.
TEST(RpcSignatureTest, MatchesCredentialsPythonEmptyVector) {
  // aliyun/credentials-python tests/test_util.py (test_compose_string_to_sign).
  EXPECT_EQ(rpc::stringToSign("GET", {}), "GET&%2F&");
}

// Verifies the tea-rpc-util / darabonba-openapi-util vector XlUyV4sXjOuX5FnjUz9IF9tm5rU=.
TEST(RpcSignatureTest, MatchesTeaRpcUtilVector) {
  // aliyun/alibabacloud-rpc-util-sdk python/tests/test_client.py (test_get_signature_v1),
  // php/tests/RpcUtilsTest.php (testGetSignature); aliyun/darabonba-openapi-util
  // python/tests/test_client.py (test_get_rpc_signature), java ClientTest (getRPCSignatureTest).
  const Params params = vectors::rpcTeaUtilParams();
  EXPECT_EQ(rpc::stringToSign("GET", params), vectors::kRpcTeaUtilStringToSign);
  EXPECT_EQ(rpc::signature("GET", params, vectors::kRpcTeaUtilSecret),
            vectors::kRpcTeaUtilSignature);
}

// Verifies the getRPCSignature vector with an empty method, plus its GET/POST variants.
TEST(RpcSignatureTest, MatchesOpenApiUtilEmptyMethodVector) {
  // aliyun/darabonba-openapi-util golang/service/service_test.go (Test_GetRPCSignature) and
  // ts/test/client.spec.ts ('getRPCSignature should ok'): method "".
  const Params params = {{"test", "ok"}};
  EXPECT_EQ(rpc::stringToSign("", params), "&%2F&test%3Dok");
  EXPECT_EQ(rpc::signature("", params, "accessKeySecret"), "jHx/oHoHNrbVfhncHEvPdHXZwHU=");
  // Derived (alibaba-facts.md 4.2 #3): the same params with GET and POST.
  EXPECT_EQ(rpc::signature("GET", params, "accessKeySecret"), "hs563c5SfRoGIFjN3KNTp5zjTNc=");
  EXPECT_EQ(rpc::signature("POST", params, "accessKeySecret"), "oFDvDnYQTbmyXEAFBl/rBf1Vur4=");
}

// Verifies the tea-rpc-util PHP canonicalisation edge case: every reserved byte, "k=" and 0.
TEST(RpcSignatureTest, MatchesTeaRpcUtilPhpCanonicalisationEdgeCase) {
  // aliyun/alibabacloud-rpc-util-sdk php/tests (testGetStrToSign). The PHP input also has
  // null=null, which PHP drops before signing; Params cannot hold a null, so it is absent here.
  const Params params = {
      {"foo", "bar"},
      {"empty", ""},
      {"number", "0"},
      {"complex", "FF=3iP2yN79-ED6)FU;R(F,mpP/4f8,UY[.3.g+r(806x{5*%/=)O8@4&[]$^rp"}};
  EXPECT_EQ(rpc::stringToSign("GET", params),
            "GET&%2F&complex%3DFF%253D3iP2yN79-ED6%2529FU%253BR%2528F%252CmpP%252F4f8%252CUY%255B"
            ".3.g%252Br%2528806x%257B5%252A%2525%252F%253D%2529O8%25404%2526%255B%255D%2524%255Erp"
            "%26empty%3D%26foo%3Dbar%26number%3D0");
}

// ---------------------------------------------------------------------------
// acs3:: ACS3-HMAC-SHA256

// The "V3 request structure and signature" doc example (ECS RunInstances).
acs3::CanonicalRequestInput docV3Input() {
  acs3::CanonicalRequestInput input;
  input.method = "POST";
  input.path = "/";
  input.query = vectors::acs3DocQuery();
  input.headers = vectors::acs3DocHeaders();
  input.hashed_payload = std::string(acs3::kEmptyPayloadHash);
  return input;
}

// Verifies the official V3 doc vector end to end: canonical request text, hash, signature.
TEST(Acs3SignatureTest, MatchesOfficialDocVector) {
  // Alibaba Cloud "Request syntax and signature method V3"
  // (alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature).
  const acs3::CanonicalRequest canonical = acs3::canonicalRequest(docV3Input());
  EXPECT_EQ(canonical.text, vectors::kAcs3DocCanonicalRequest);
  EXPECT_EQ(canonical.signed_headers, vectors::kAcs3DocSignedHeaders);
  EXPECT_EQ(crypto::hexLower(crypto::sha256(canonical.text)),
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259");
  const std::string string_to_sign = acs3::stringToSign(canonical.text);
  EXPECT_EQ(string_to_sign, vectors::kAcs3DocStringToSign);
  const std::string signature = acs3::signature(vectors::kAcs3DocSecret, string_to_sign);
  EXPECT_EQ(signature, vectors::kAcs3DocSignature);
  EXPECT_EQ(
      acs3::authorizationHeader(vectors::kAcs3DocAccessKeyId, canonical.signed_headers, signature),
      vectors::kAcs3DocAuthorization);
}

// Verifies that header order and name case in the input do not change the result.
TEST(Acs3SignatureTest, SortsHeadersAndLowercasesNames) {
  acs3::CanonicalRequestInput shuffled = docV3Input();
  std::reverse(shuffled.headers.begin(), shuffled.headers.end());
  shuffled.headers[0].first = "X-Acs-Version";
  shuffled.headers[5].first = "Host";
  EXPECT_EQ(acs3::canonicalRequest(shuffled).text, acs3::canonicalRequest(docV3Input()).text);
}

// The darabonba-openapi-util getAuthorization test input: a repeated header name
// in two cases and an empty query value.
acs3::CanonicalRequestInput openApiUtilInput(std::string method) {
  acs3::CanonicalRequestInput input;
  input.method = std::move(method);
  input.path = "/";
  input.query = vectors::acs3OpenApiUtilQuery();
  input.headers = vectors::acs3OpenApiUtilHeaders();
  // SM3("test"), used by the util tests as an opaque payload hash.
  input.hashed_payload = vectors::kAcs3OpenApiUtilPayloadHash;
  return input;
}

// Verifies the repeated-header merge and the darabonba-openapi-util Python vector (GET).
TEST(Acs3SignatureTest, MatchesOpenApiUtilPythonVectorWithRepeatedHeaderMerge) {
  // aliyun/darabonba-openapi-util python/tests/test_client.py (test_get_authorization) at the
  // commit in alibaba-facts.md; canonical query "empty=&test=ok", header "x-acs-test:http,https".
  const acs3::CanonicalRequest canonical = acs3::canonicalRequest(openApiUtilInput("GET"));
  EXPECT_EQ(canonical.text, vectors::kAcs3OpenApiUtilGetCanonicalRequest);
  EXPECT_EQ(canonical.signed_headers, "x-acs-test");
  EXPECT_EQ(acs3::authorizationHeader("acesskey", canonical.signed_headers,
                                      acs3::signature(vectors::kAcs3OpenApiUtilSecret,
                                                      acs3::stringToSign(canonical.text))),
            vectors::kAcs3OpenApiUtilGetAuthorization);
}

// Verifies the darabonba-openapi-util Go vector (empty method string).
TEST(Acs3SignatureTest, MatchesOpenApiUtilGoVector) {
  // aliyun/darabonba-openapi-util golang/service/service_test.go (Test_GetAuthorization).
  const acs3::CanonicalRequest canonical = acs3::canonicalRequest(openApiUtilInput(""));
  EXPECT_EQ(acs3::signature(vectors::kAcs3OpenApiUtilSecret, acs3::stringToSign(canonical.text)),
            vectors::kAcs3OpenApiUtilEmptyMethodSignature);
}

// Verifies that method and path are used literally, reproducing the TS util's JS quirk.
TEST(Acs3SignatureTest, UsesMethodAndPathLiterally) {
  // aliyun/darabonba-openapi-util TS test (alibaba-facts.md 4.4 #4): the JS code turned an unset
  // method into the string "undefined" and an unset path into "". Not a protocol vector; it
  // shows the canonicaliser adds nothing of its own.
  acs3::CanonicalRequestInput input = openApiUtilInput("undefined");
  input.path = "";
  EXPECT_EQ(acs3::signature("secret", acs3::stringToSign(acs3::canonicalRequest(input).text)),
            "0f2d549523cf082c83bb8135b5863614f7fe16ca7c2c7fc537e74d67374eeeac");
}

// Verifies that header values are trimmed and that values of one name are sorted.
TEST(Acs3SignatureTest, TrimsAndSortsHeaderValues) {
  acs3::CanonicalRequestInput input;
  input.method = "GET";
  input.headers = {{"X-Acs-Meta", "  zeta \t"}, {"x-acs-meta", "alpha"}, {"Content-Type", " a/b "}};
  input.hashed_payload = std::string(acs3::kEmptyPayloadHash);
  const acs3::CanonicalRequest canonical = acs3::canonicalRequest(input);
  EXPECT_EQ(canonical.text, absl::StrCat("GET\n/\n\ncontent-type:a/b\nx-acs-meta:alpha,zeta\n\n",
                                         "content-type;x-acs-meta\n", acs3::kEmptyPayloadHash));
}

// Verifies path segment encoding with the darabonba-openapi-util getEncodePath vectors.
TEST(Acs3SignatureTest, EncodesEachPathSegment) {
  // aliyun/darabonba-openapi-util golang/service/service_test.go (Test_GetEncodePath),
  // ts/test/client.spec.ts and java ClientTest (getEncodePath).
  const std::pair<const char*, const char*> cases[] = {
      {"/path/ test", "/path/%20test"},
      {"/path/#test", "/path/%23test"},
      {"/path/\"test", "/path/%22test"},
      {"/path/'test", "/path/%27test"},
      {"/", "/"},
  };
  for (const auto& [path, expected] : cases) {
    acs3::CanonicalRequestInput input;
    input.method = "GET";
    input.path = path;
    const std::string text = acs3::canonicalRequest(input).text;
    const std::vector<std::string> lines = absl::StrSplit(text, '\n');
    ASSERT_GE(lines.size(), 2u);
    EXPECT_EQ(lines[1], expected) << path;
  }
}

// Verifies the empty-payload constant is SHA-256 of nothing.
TEST(Acs3SignatureTest, EmptyPayloadHashIsSha256OfEmptyString) {
  EXPECT_EQ(crypto::hexLower(crypto::sha256("")), acs3::kEmptyPayloadHash);
}

// ---------------------------------------------------------------------------
// acs3::parseAuthorizationHeader

// Verifies that the official doc's Authorization header parses into its parts.
TEST(ParseAuthorizationHeaderTest, ParsesOfficialDocHeader) {
  auto parsed = acs3::parseAuthorizationHeader(vectors::kAcs3DocAuthorization);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->algorithm, "ACS3-HMAC-SHA256");
  EXPECT_EQ(parsed->access_key_id, "YourAccessKeyId");
  EXPECT_THAT(parsed->signed_headers,
              ElementsAre("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date",
                          "x-acs-signature-nonce", "x-acs-version"));
  EXPECT_EQ(parsed->signature, "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
}

// Verifies tolerance of extra spaces and part order; signed names come back lowercase, in order.
TEST(ParseAuthorizationHeaderTest, ToleratesSpacesAndLowercasesNames) {
  auto parsed = acs3::parseAuthorizationHeader(
      "  ACS3-HMAC-SHA256 Signature=abc, SignedHeaders=X-Acs-Date;Host,  Credential=STS.id  ");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->access_key_id, "STS.id");
  EXPECT_THAT(parsed->signed_headers, ElementsAre("x-acs-date", "host"));
  EXPECT_EQ(parsed->signature, "abc");
}

// Verifies that the algorithm is reported as sent, for the caller to check.
TEST(ParseAuthorizationHeaderTest, ReportsOtherAlgorithms) {
  auto parsed =
      acs3::parseAuthorizationHeader("ACS3-HMAC-SM3 Credential=a,SignedHeaders=host,Signature=b");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->algorithm, "ACS3-HMAC-SM3");
}

// Verifies that an empty SignedHeaders list (the TS util with no headers) parses as empty.
TEST(ParseAuthorizationHeaderTest, AcceptsEmptySignedHeaders) {
  auto parsed =
      acs3::parseAuthorizationHeader("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=,Signature=b");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_THAT(parsed->signed_headers, IsEmpty());
}

// Verifies that authorizationHeader output parses back to the same fields.
TEST(ParseAuthorizationHeaderTest, InvertsAuthorizationHeader) {
  auto parsed = acs3::parseAuthorizationHeader(
      acs3::authorizationHeader("LTAI.id", "host;x-acs-date", "0123abcd"));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->algorithm, acs3::kAlgorithm);
  EXPECT_EQ(parsed->access_key_id, "LTAI.id");
  EXPECT_THAT(parsed->signed_headers, ElementsAre("host", "x-acs-date"));
  EXPECT_EQ(parsed->signature, "0123abcd");
}

// Verifies that malformed headers are INVALID_ARGUMENT naming the problem.
TEST(ParseAuthorizationHeaderTest, RejectsMalformedHeaders) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "Authorization must be"},
      {"   ", "Authorization must be"},
      {"ACS3-HMAC-SHA256", "Authorization must be"},
      {" Credential=a,SignedHeaders=host,Signature=b", "Authorization must be"},
      {"ACS3-HMAC-SHA256 SignedHeaders=host,Signature=b", "missing Credential"},
      {"ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=b", "missing Credential"},
      {"ACS3-HMAC-SHA256 Credential=a,Signature=b", "missing SignedHeaders"},
      {"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host", "missing Signature"},
      {"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=", "missing Signature"},
      {"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=b,", "part without"},
      {"ACS3-HMAC-SHA256 Credential=a,,SignedHeaders=host,Signature=b", "part without"},
      {"ACS3-HMAC-SHA256 Credential a,SignedHeaders=host,Signature=b", "part without"},
      {"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=b,Extra=c", "other than"},
      {"ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=b", "repeats"},
      {"ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;;date,Signature=b", "empty name"},
      {"acs LTAI:signature", "part without"},
  };
  for (const auto& [header, message] : cases) {
    EXPECT_THAT(acs3::parseAuthorizationHeader(header),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << "header: '" << header << "'";
  }
}

}  // namespace
}  // namespace credsync::alibaba
