#include "sidecar/alibaba/api_error.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/signature.h"
#include "tests/common/status_matchers.h"

namespace credsync::alibaba {
namespace {

using ::credsync::testing::StatusIs;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;
using ::testing::StartsWith;

// The emulator's error shape (tests/emulator/README.md), which is the real
// gateway's: RequestId, HostId, Code, Message, Recommend.
constexpr absl::string_view kNotFoundBody =
    R"({"RequestId": "6A3E9C36-1150-4881-84D3-EB8672FCAFAD", "HostId": "kms.cn-hangzhou.aliyuncs.com",
        "Code": "Forbidden.ResourceNotFound", "Message": "Resource not found",
        "Recommend": "https://api.aliyun.com/troubleshoot?q=Forbidden.ResourceNotFound&product=Kms&requestId=6A3E9C36-1150-4881-84D3-EB8672FCAFAD"})";

ApiErrorInfo info(int status, std::string code, std::string message = "message",
                  std::string request_id = "REQ-1") {
  ApiErrorInfo error;
  error.http_status = status;
  error.code = std::move(code);
  error.message = std::move(message);
  error.request_id = std::move(request_id);
  return error;
}

// Verifies the emulator's JSON error body is parsed into code, message and request id.
TEST(ApiErrorTest, ParsesJsonErrorBody) {
  const auto parsed = parseApiErrorBody(kNotFoundBody, 404);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->http_status, 404);
  EXPECT_EQ(parsed->code, "Forbidden.ResourceNotFound");
  EXPECT_EQ(parsed->message, "Resource not found");
  EXPECT_EQ(parsed->request_id, "6A3E9C36-1150-4881-84D3-EB8672FCAFAD");
}

// Verifies the real alidns capture from alibaba-facts section 7 parses.
TEST(ApiErrorTest, ParsesRealDeletedKeyCapture) {
  const auto parsed = parseApiErrorBody(
      R"({"RequestId": "0B12DE1A-2304-5E86-AAFD-B0206BDECD01", "Message": "Specified access key is not found.",
          "Recommend": "https://api.aliyun.com/troubleshoot?q=InvalidAccessKeyId.NotFound&product=Alidns&requestId=0B12DE1A-2304-5E86-AAFD-B0206BDECD01",
          "HostId": "alidns.aliyuncs.com", "Code": "InvalidAccessKeyId.NotFound"})",
      404);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->code, "InvalidAccessKeyId.NotFound");
  EXPECT_EQ(parsed->message, "Specified access key is not found.");
}

// Verifies the XML <Error> form (with prolog and entities) parses.
TEST(ApiErrorTest, ParsesXmlErrorBody) {
  const auto parsed = parseApiErrorBody(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><RequestId>ABC-1</RequestId>"
      "<HostId>sts.aliyuncs.com</HostId><Code>AuthenticationFail.NoPermission</Code>"
      "<Message>Parameter &quot;OIDCProviderArn&quot; is not valid &amp; &#60;bad&#x3E;</Message>"
      "</Error>",
      400);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->code, "AuthenticationFail.NoPermission");
  EXPECT_EQ(parsed->message, "Parameter \"OIDCProviderArn\" is not valid & <bad>");
  EXPECT_EQ(parsed->request_id, "ABC-1");
}

// Verifies OSS-style XML (403 InvalidAccessKeyId) parses too.
TEST(ApiErrorTest, ParsesOssStyleXml) {
  const auto parsed = parseApiErrorBody(
      "<?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code><Message>The OSS Access Key Id "
      "you provided does not exist in our records.</Message><RequestId>R</RequestId>"
      "<OSSAccessKeyId>LTAI</OSSAccessKeyId></Error>",
      403);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->code, "InvalidAccessKeyId");
}

// Verifies bodies that are not error documents give nullopt.
TEST(ApiErrorTest, RejectsNonErrorBodies) {
  const std::vector<std::string> bodies = {
      "",
      "   ",
      "Service Unavailable",
      "<html><body>502 Bad Gateway</body></html>",
      "[]",
      "{}",
      R"({"Message": "no code"})",
      R"({"Code": 404, "Message": "numeric code"})",
      R"({"Code": "", "Message": "empty code"})",
      R"({"Code": "Truncated)",
      "<Error><Message>no code</Message></Error>",
      "<Error><Code>Unclosed",
      std::string(200, '[') + std::string(200, ']'),
      absl::StrCat(R"({"Code": "Big", "Message": ")", std::string(2 << 20, 'x'), "\"}"),
  };
  for (const std::string& body : bodies) {
    EXPECT_FALSE(parseApiErrorBody(body, 500).has_value()) << body.substr(0, 80);
  }
}

// Verifies a nested-but-bounded document still parses and a hostile depth does not.
TEST(ApiErrorTest, BoundsNestingDepth) {
  const std::string shallow = R"({"Code": "X", "Detail": {"a": [[{"b": 1}]]}})";
  EXPECT_TRUE(parseApiErrorBody(shallow, 400).has_value());
  std::string deep = R"({"Code": "X", "Detail": )";
  for (int i = 0; i < 100000; ++i) deep += "[";
  EXPECT_FALSE(parseApiErrorBody(deep, 400).has_value());
}

// Verifies the message is cut to a bounded length on a UTF-8 boundary and
// control characters cannot forge log lines.
TEST(ApiErrorTest, BoundsAndCleansMessage) {
  std::string long_message;
  for (int i = 0; i < 400; ++i) long_message += "\xE4\xBD\xA0";  // "你"
  const auto parsed =
      parseApiErrorBody(absl::StrCat(R"({"Code": "X", "Message": ")", long_message, "\"}"), 400);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_LE(parsed->message.size(), 515u);
  EXPECT_THAT(parsed->message, EndsWith("\xE4\xBD\xA0..."));

  const auto forged = parseApiErrorBody(
      R"({"Code": "X\nY", "Message": "line one\n{\"level\":\"error\"}\r\u0000end", "RequestId": "a b\nc"})",
      400);
  ASSERT_TRUE(forged.has_value());
  EXPECT_EQ(forged->message.find('\n'), std::string::npos);
  EXPECT_EQ(forged->message.find('\r'), std::string::npos);
  EXPECT_EQ(forged->message.find('\0'), std::string::npos);
  EXPECT_EQ(forged->code, "X_Y");
  EXPECT_EQ(forged->request_id, "a_b_c");
}

// Verifies an echoed string to sign (which in the RPC scheme contains the
// security token, percent-encoded twice) is dropped, and listed secrets are
// redacted in every form.
TEST(ApiErrorTest, RedactsSecretsAndStringToSign) {
  const std::string token = "CAIS+token/with=chars0123456789";
  const std::string secret = "AccessKeySecretValue0123";
  const std::string string_to_sign = absl::StrCat("POST&%2F&AccessKeyId%3DSTS.x%26SecurityToken%3D",
                                                  percentEncode(percentEncode(token)));
  const std::string body = absl::StrCat(
      R"({"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched with our calculation. server string to sign is:)",
      string_to_sign, R"(", "RequestId": "R"})");
  const absl::string_view redact[] = {token, secret};
  const auto parsed = parseApiErrorBody(body, 400, redact);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->message,
            "Specified signature is not matched with our calculation. [string to sign omitted]");

  const std::string echo =
      absl::StrCat(R"({"Code": "InvalidParameter", "Message": "bad token )", token, " or ",
                   percentEncode(token), " or ", secret, R"(", "RequestId": ")", secret, "\"}");
  const auto redacted = parseApiErrorBody(echo, 400, redact);
  ASSERT_TRUE(redacted.has_value());
  EXPECT_EQ(redacted->message, "bad token *** or *** or ***");
  EXPECT_THAT(redacted->request_id, Not(HasSubstr(secret)));
  // Too-short "secrets" (and empty ones) are not hunted for.
  const absl::string_view tiny[] = {"", "a"};
  EXPECT_EQ(parseApiErrorBody(R"({"Code": "X", "Message": "a b"})", 400, tiny)->message, "a b");
}

struct Mapping {
  int http_status;
  std::string code;
  absl::StatusCode expected;
  bool retryable;
};

// Verifies every documented code class maps to its absl code and retryability.
TEST(ApiErrorTest, MapsCodesToAbslCodes) {
  const std::vector<Mapping> mappings = {
      // Throttling and server trouble: retry.
      {400, "Throttling.User", absl::StatusCode::kUnavailable, true},
      {400, "Rejected.Throttling", absl::StatusCode::kUnavailable, true},
      {400, "Throttling", absl::StatusCode::kUnavailable, true},
      {503, "ServiceUnavailableTemporary", absl::StatusCode::kUnavailable, true},
      {500, "InternalFailure", absl::StatusCode::kUnavailable, true},
      {500, "InternalError", absl::StatusCode::kUnavailable, true},
      // Permissions.
      {403, "Forbidden.NoPermission", absl::StatusCode::kPermissionDenied, false},
      {403, "Forbidden.InDebt", absl::StatusCode::kPermissionDenied, false},
      {403, "NoPermission", absl::StatusCode::kPermissionDenied, false},
      {403, "AuthenticationFail.NoPermission", absl::StatusCode::kPermissionDenied, false},
      {400, "AuthenticationFail.NoPermission", absl::StatusCode::kPermissionDenied, false},
      // Not found.
      {404, "Forbidden.ResourceNotFound", absl::StatusCode::kNotFound, false},
      {404, "Forbidden.KeyNotFound", absl::StatusCode::kNotFound, false},
      {404, "EntityNotExist.Role", absl::StatusCode::kNotFound, false},
      // Authentication.
      {404, "InvalidAccessKeyId.NotFound", absl::StatusCode::kUnauthenticated, false},
      {400, "InvalidAccessKeyId.Inactive", absl::StatusCode::kUnauthenticated, false},
      {403, "InvalidAccessKeyId", absl::StatusCode::kUnauthenticated, false},
      {400, "SignatureDoesNotMatch", absl::StatusCode::kUnauthenticated, false},
      {400, "InvalidSecurityToken.Expired", absl::StatusCode::kUnauthenticated, false},
      {400, "InvalidSecurityToken.Malformed", absl::StatusCode::kUnauthenticated, false},
      {400, "InvalidSecurityToken.MismatchWithAccessKey", absl::StatusCode::kUnauthenticated,
       false},
      {400, "MissingSecurityToken", absl::StatusCode::kUnauthenticated, false},
      {400, "AuthenticationFail.OIDCToken.Expired", absl::StatusCode::kUnauthenticated, false},
      {400, "AuthenticationFail.OIDCToken.Invalid", absl::StatusCode::kUnauthenticated, false},
      {400, "AuthenticationFail.OIDCToken.AudienceNotMatch", absl::StatusCode::kUnauthenticated,
       false},
      {400, "AuthenticationFail.OIDCToken.IssuerNotMatch", absl::StatusCode::kUnauthenticated,
       false},
      // Caller mistakes.
      {400, "MissingParameter", absl::StatusCode::kInvalidArgument, false},
      {400, "MissingRoleArn", absl::StatusCode::kInvalidArgument, false},
      {400, "InvalidParameter", absl::StatusCode::kInvalidArgument, false},
      {400, "InvalidParameter.DurationSeconds", absl::StatusCode::kInvalidArgument, false},
      {400, "InvalidTimeStamp.Expired", absl::StatusCode::kInvalidArgument, false},
      {400, "SignatureNonceUsed", absl::StatusCode::kInvalidArgument, false},
      {400, "InvalidVersion", absl::StatusCode::kInvalidArgument, false},
      // Unknown codes fall back to the HTTP status.
      {502, "SomethingNew", absl::StatusCode::kUnavailable, true},
      {429, "SomethingNew", absl::StatusCode::kUnavailable, true},
      {401, "SomethingNew", absl::StatusCode::kUnauthenticated, false},
      {403, "SomethingNew", absl::StatusCode::kPermissionDenied, false},
      {404, "SomethingNew", absl::StatusCode::kNotFound, false},
      {409, "SomethingNew", absl::StatusCode::kInvalidArgument, false},
      {302, "SomethingNew", absl::StatusCode::kUnavailable, true},
      {200, "SomethingNew", absl::StatusCode::kUnavailable, true},
  };
  for (const Mapping& mapping : mappings) {
    const absl::Status status =
        statusFromApiError("KMS GetSecretValue", info(mapping.http_status, mapping.code));
    EXPECT_EQ(status.code(), mapping.expected) << mapping.code << " " << mapping.http_status;
    EXPECT_EQ(isRetryable(status), mapping.retryable) << mapping.code;
    EXPECT_THAT(upstreamCode(status), Optional(mapping.code));
  }
}

// Verifies the message format "<action>: <Code>: <Message> (RequestId <id>)".
TEST(ApiErrorTest, FormatsMessage) {
  EXPECT_EQ(statusFromApiError("KMS GetSecretValue",
                               info(404, "Forbidden.ResourceNotFound", "Resource not found", "R1"))
                .message(),
            "KMS GetSecretValue: Forbidden.ResourceNotFound: Resource not found (RequestId R1)");
  EXPECT_EQ(statusFromApiError("STS AssumeRoleWithOIDC", info(400, "X", "", "")).message(),
            "STS AssumeRoleWithOIDC: X");
  const absl::Status bare = statusFromApiError("STS AssumeRoleWithOIDC", info(503, "", "", ""));
  EXPECT_EQ(bare.message(), "STS AssumeRoleWithOIDC: HTTP 503");
  EXPECT_EQ(upstreamCode(bare), std::nullopt);
  EXPECT_TRUE(isRetryable(bare));
}

// Verifies a non-2xx answer without an error document still maps by HTTP status.
TEST(ApiErrorTest, StatusFromErrorResponseWithoutDocument) {
  const absl::Status gateway =
      statusFromErrorResponse("KMS GetSecretValue", 502, "<html>Bad Gateway</html>");
  EXPECT_THAT(gateway,
              StatusIs(absl::StatusCode::kUnavailable,
                       "KMS GetSecretValue: HTTP 502: the answer is not an error document"));
  EXPECT_THAT(statusFromErrorResponse("KMS GetSecretValue", 403, ""),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("empty answer")));
  const absl::Status parsed = statusFromErrorResponse("KMS GetSecretValue", 404, kNotFoundBody);
  EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kNotFound, HasSubstr("Resource not found")));
  EXPECT_THAT(upstreamCode(parsed), Optional(std::string("Forbidden.ResourceNotFound")));
}

// Verifies withContext prefixes the message and keeps code and upstream code.
TEST(ApiErrorTest, WithContextKeepsCodeAndPayload) {
  const absl::Status original = statusFromApiError("KMS GetSecretValue", info(400, "Throttling"));
  const absl::Status wrapped = withContext(original, "profile default");
  EXPECT_EQ(wrapped.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(wrapped.message()), StartsWith("profile default: KMS"));
  EXPECT_THAT(upstreamCode(wrapped), Optional(std::string("Throttling")));
  EXPECT_TRUE(withContext(absl::OkStatus(), "x").ok());
}

// Verifies the one throttling rule, on codes and on whole answers (what the
// HTTP layer's outcome metric is handed): the families STS, ECS and KMS use,
// whatever the HTTP status, JSON or XML; not a code that merely contains the
// word, not a malformed or oversized body.
TEST(ApiErrorTest, ThrottlingRule) {
  for (const char* code : {"Throttling", "Throttling.User", "Throttling.Api", "Rejected.Throttling",
                           "ServiceUnavailableTemporary"}) {
    EXPECT_TRUE(isThrottlingCode(code)) << code;
    EXPECT_EQ(statusFromApiError("X", info(400, code)).code(), absl::StatusCode::kUnavailable)
        << code;
    // The quota codes ask for a longer backoff; ServiceUnavailableTemporary
    // is a 503 and is retried like one.
    EXPECT_EQ(isThrottled(statusFromApiError("X", info(400, code))),
              std::string(code) != "ServiceUnavailableTemporary")
        << code;
  }
  for (const char* code : {"UserThrottling", "Forbidden", "InvalidParameter", "ServiceUnavailable",
                           "InternalFailure", ""}) {
    EXPECT_FALSE(isThrottlingCode(code)) << code;
    EXPECT_FALSE(isThrottled(statusFromApiError("X", info(503, code)))) << code;
  }
  // A bare 429 says "slow down" whatever its body.
  EXPECT_TRUE(isThrottled(statusFromErrorResponse("X", 429, "")));
  const auto json = [](const std::string& code) {
    return "{\"RequestId\":\"5E4F\",\"HostId\":\"kms.cn-hangzhou.aliyuncs.com\",\"Code\":\"" +
           code + "\",\"Message\":\"m\"}";
  };
  struct Case {
    int status;
    std::string body;
    bool throttled;
  };
  const std::vector<Case> cases = {
      {400, json("Throttling.User"), true},
      {403, json("Throttling.Api"), true},
      {400, json("Rejected.Throttling"), true},
      {500, json("Rejected.Throttling"), true},
      {503, json("ServiceUnavailableTemporary"), true},
      {400, "<Error><Code>Throttling.User</Code><Message>m</Message></Error>", true},
      {400, json("UserThrottling"), false},
      {400, json("InvalidParameter"), false},
      {500, json("InternalFailure"), false},
      {400, "{\"Code\":42}", false},
      {400, "[\"Throttling\"]", false},
      {400, "{\"Code\":\"Throttling", false},
      {400, std::string(100, '[') + std::string(100, ']'), false},
      {502, "<html>bad gateway</html>", false},
      {400, "", false},
      {400, "{\"Code\":\"Throttling.User\",\"Pad\":\"" + std::string(128 * 1024, 'x') + "\"}",
       false},
  };
  for (const Case& test : cases) {
    EXPECT_EQ(isThrottlingResponse(test.status, test.body), test.throttled)
        << test.status << " " << test.body.substr(0, 80);
  }
}

}  // namespace
}  // namespace credsync::alibaba
