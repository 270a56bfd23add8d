#include "sidecar/alibaba/sts_client.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/alibaba/signature.h"
#include "tests/common/fake_http_client.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"

namespace credsync::alibaba {
namespace {

using ::credsync::testing::FakeHttpClient;
using ::credsync::testing::IsOk;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;
using ::testing::StartsWith;

constexpr absl::string_view kToken =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLXNlY3JldA";
constexpr absl::string_view kSecret = "CVwjCkNzTMupZ8NbTCxCBRq3K16jtcWFTJAyBEv2****";
constexpr absl::string_view kSecurityToken = "CAIShwJ1q6Ft5B2yfSjIr5bSEsj4g7BihPWGWHz****";

// The success example of Alibaba's API doc (alibaba-facts section 1.4).
constexpr absl::string_view kDocResponse = R"({
    "RequestId": "3D57EAD2-8723-1F26-B69C-F8707D8B565D",
    "OIDCTokenInfo": {
        "Subject": "KryrkIdjylZb7agUgCEf****",
        "Issuer": "https://dev-xxxxxx.okta.com",
        "ClientIds": "496271242565057****"
    },
    "AssumedRoleUser": {
        "AssumedRoleId": "33157794895460****",
        "Arn": "acs:ram::113511544585****:role/testoidc/TestOidcAssumedRoleSession"
    },
    "Credentials": {
        "SecurityToken": "CAIShwJ1q6Ft5B2yfSjIr5bSEsj4g7BihPWGWHz****",
        "Expiration": "2021-10-20T04:27:09Z",
        "AccessKeySecret": "CVwjCkNzTMupZ8NbTCxCBRq3K16jtcWFTJAyBEv2****",
        "AccessKeyId": "STS.NUgYrLnoC37mZZCNnAbez****"
    }
})";

// The emulator's shape (tests/emulator/sts_service.cc), with every field it sends.
constexpr absl::string_view kEmulatorResponse =
    R"({"AssumedRoleUser":{"Arn":"acs:ram::1234567890123456:role/credsync-demo/credsync-pod","AssumedRoleId":"312345678901234567:credsync-pod"},"Credentials":{"AccessKeyId":"STS.EMU0123456789","AccessKeySecret":"CVwjCkNzTMupZ8NbTCxCBRq3K16jtcWFTJAyBEv2****","Expiration":"2026-01-01T01:00:00Z","SecurityToken":"CAIShwJ1q6Ft5B2yfSjIr5bSEsj4g7BihPWGWHz****"},"OIDCTokenInfo":{"ClientIds":"sts.aliyuncs.com","ExpirationTime":"2026-01-01T01:00:00Z","Issuer":"https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c-emulator","IssuanceTime":"2026-01-01T00:00:00Z","Subject":"system:serviceaccount:default:demo","VerificationInfo":"Success"},"RequestId":"5C2A1A0E-7F1B-4C7E-9D43-8D1B7F6C2E11","SourceIdentity":""})";

absl::Time utc(int year, int month, int day, int hour, int minute, int second) {
  return absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                         absl::UTCTimeZone());
}

AssumeRoleWithOidcRequest request() {
  AssumeRoleWithOidcRequest request;
  request.role_arn = "acs:ram::1234567890123456:role/credsync-demo";
  request.oidc_provider_arn = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-cdemo";
  request.oidc_token = SecretString(std::string(kToken));
  request.role_session_name = "credsync-pod";
  return request;
}

http::Response response(int status, std::string body) {
  http::Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

std::optional<std::string> headerOf(const http::Request& request, absl::string_view name) {
  for (const auto& [header, value] : request.headers) {
    if (absl::EqualsIgnoreCase(header, name)) return value;
  }
  return std::nullopt;
}

// Every secret the tests use; no error message may contain one.
void expectNoSecrets(const absl::Status& status) {
  for (const absl::string_view secret : {kToken, kSecret, kSecurityToken}) {
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr(std::string(secret))));
    EXPECT_THAT(status.ToString(), Not(HasSubstr(std::string(secret))));
  }
}

class StsClientTest : public ::testing::Test {
 protected:
  StsClientTest() : client_(makeStsClient(http_, time_, "https://sts.cn-hangzhou.aliyuncs.com")) {}

  Params queryOf(const http::Request& request) {
    const size_t question = request.url.find('?');
    if (question == std::string::npos) return {};
    auto params = parseQueryString(absl::string_view(request.url).substr(question + 1));
    EXPECT_THAT(params, IsOk());
    return params.ok() ? *params : Params{};
  }

  FakeHttpClient http_;
  SimulatedTimeSource time_{utc(2026, 1, 1, 0, 0, 0)};
  StsClientPtr client_;
};

// Verifies the call is anonymous POST with the parameters in the form body,
// as the credentials SDKs send it: no AccessKeyId, no Signature, token out of the URL.
TEST_F(StsClientTest, SendsAnonymousFormPost) {
  http_.enqueueResponse(200, std::string(kEmulatorResponse));
  ASSERT_THAT(client_->assumeRoleWithOidc(request()), IsOk());

  const http::Request sent = http_.lastRequest().value();
  EXPECT_EQ(sent.method, "POST");
  EXPECT_THAT(sent.url, StartsWith("https://sts.cn-hangzhou.aliyuncs.com/?"));
  const Params query = queryOf(sent);
  EXPECT_EQ(query.at("Action"), "AssumeRoleWithOIDC");
  EXPECT_EQ(query.at("Version"), "2015-04-01");
  EXPECT_EQ(query.at("Format"), "JSON");
  EXPECT_EQ(query.at("Timestamp"), "2026-01-01T00:00:00Z");
  EXPECT_FALSE(query.at("SignatureNonce").empty());
  for (const char* absent : {"AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
                             "SecurityToken", "OIDCToken", "RoleArn"}) {
    EXPECT_EQ(query.count(absent), 0u) << absent;
  }
  EXPECT_THAT(sent.url, Not(HasSubstr(std::string(kToken))));
  for (const auto& [name, value] : sent.headers) {
    EXPECT_NE(absl::AsciiStrToLower(name), "authorization");
    EXPECT_THAT(value, Not(HasSubstr(std::string(kToken))));
  }

  auto form = parseQueryString(sent.body);
  ASSERT_THAT(form, IsOk());
  EXPECT_EQ(form->at("RoleArn"), "acs:ram::1234567890123456:role/credsync-demo");
  EXPECT_EQ(form->at("OIDCProviderArn"), "acs:ram::1234567890123456:oidc-provider/ack-rrsa-cdemo");
  EXPECT_EQ(form->at("OIDCToken"), kToken);
  EXPECT_EQ(form->at("RoleSessionName"), "credsync-pod");
  EXPECT_EQ(form->at("DurationSeconds"), "3600");
  EXPECT_EQ(form->count("Policy"), 0u);
  EXPECT_EQ(headerOf(sent, "content-type"), "application/x-www-form-urlencoded");
}

// Verifies Policy and a custom duration are sent, and each request has a fresh nonce.
TEST_F(StsClientTest, SendsPolicyDurationAndFreshNonce) {
  http_.enqueueResponse(200, std::string(kEmulatorResponse));
  http_.enqueueResponse(200, std::string(kEmulatorResponse));
  AssumeRoleWithOidcRequest with_policy = request();
  with_policy.policy = R"({"Version":"1","Statement":[]})";
  with_policy.duration = absl::Minutes(15);
  ASSERT_THAT(client_->assumeRoleWithOidc(with_policy), IsOk());
  ASSERT_THAT(client_->assumeRoleWithOidc(with_policy), IsOk());

  const std::vector<http::Request> sent = http_.requests();
  ASSERT_EQ(sent.size(), 2u);
  auto form = parseQueryString(sent[0].body);
  ASSERT_THAT(form, IsOk());
  EXPECT_EQ(form->at("Policy"), with_policy.policy);
  EXPECT_EQ(form->at("DurationSeconds"), "900");
  EXPECT_NE(queryOf(sent[0]).at("SignatureNonce"), queryOf(sent[1]).at("SignatureNonce"));
}

// Verifies empty required inputs fail locally, without a request.
TEST_F(StsClientTest, RejectsEmptyInputsLocally) {
  for (int field = 0; field < 4; ++field) {
    AssumeRoleWithOidcRequest bad = request();
    if (field == 0) bad.role_arn.clear();
    if (field == 1) bad.oidc_provider_arn.clear();
    if (field == 2) bad.role_session_name.clear();
    if (field == 3) bad.oidc_token = SecretString();
    EXPECT_THAT(client_->assumeRoleWithOidc(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_EQ(http_.requestCount(), 0u);
}

// Verifies a bad endpoint is INVALID_ARGUMENT without a request.
TEST_F(StsClientTest, RejectsBadEndpoint) {
  StsClientPtr client = makeStsClient(http_, time_, "sts.aliyuncs.com");
  EXPECT_THAT(client->assumeRoleWithOidc(request()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("STS AssumeRoleWithOIDC")));
  EXPECT_EQ(http_.requestCount(), 0u);
}

// Verifies the API doc's success example parses exactly.
TEST_F(StsClientTest, ParsesDocExample) {
  http_.enqueueResponse(200, std::string(kDocResponse));
  absl::StatusOr<StsSession> session = client_->assumeRoleWithOidc(request());
  ASSERT_THAT(session, IsOk());
  EXPECT_EQ(session->credentials.access_key_id, "STS.NUgYrLnoC37mZZCNnAbez****");
  EXPECT_EQ(session->credentials.access_key_secret.reveal(), kSecret);
  EXPECT_EQ(session->credentials.security_token.reveal(), kSecurityToken);
  EXPECT_EQ(session->expiration, utc(2021, 10, 20, 4, 27, 9));
  EXPECT_EQ(session->assumed_role_arn,
            "acs:ram::113511544585****:role/testoidc/TestOidcAssumedRoleSession");
  EXPECT_EQ(session->request_id, "3D57EAD2-8723-1F26-B69C-F8707D8B565D");
}

// Verifies the emulator's full shape parses, and Expiration with milliseconds too.
TEST_F(StsClientTest, ParsesEmulatorShapeAndMilliseconds) {
  absl::StatusOr<StsSession> session =
      parseAssumeRoleWithOidcResponse(response(200, std::string(kEmulatorResponse)));
  ASSERT_THAT(session, IsOk());
  EXPECT_EQ(session->credentials.access_key_id, "STS.EMU0123456789");
  EXPECT_EQ(session->expiration, utc(2026, 1, 1, 1, 0, 0));

  const std::string millis = absl::StrReplaceAll(
      kEmulatorResponse,
      {{R"("Expiration":"2026-01-01T01:00:00Z")", R"("Expiration":"2024-08-30T07:03:06.117Z")"}});
  session = parseAssumeRoleWithOidcResponse(response(200, millis));
  ASSERT_THAT(session, IsOk());
  EXPECT_EQ(session->expiration, utc(2024, 8, 30, 7, 3, 6) + absl::Milliseconds(117));
}

struct ErrorCase {
  int http_status;
  std::string code;
  std::string message;
  absl::StatusCode expected;
  bool retryable;
};

// Verifies every STS error class maps to its absl code, retryability and
// upstream code, with the message naming the code and request id.
TEST_F(StsClientTest, MapsErrorAnswers) {
  const std::vector<ErrorCase> cases = {
      {400, "AuthenticationFail.OIDCToken.Expired", "This JsonWebToken is expired.",
       absl::StatusCode::kUnauthenticated, false},
      {400, "AuthenticationFail.OIDCToken.Invalid", "The OIDC token is invalid: bad signature",
       absl::StatusCode::kUnauthenticated, false},
      {400, "AuthenticationFail.OIDCToken.AudienceNotMatch", "Invalid audience.",
       absl::StatusCode::kUnauthenticated, false},
      {400, "AuthenticationFail.OIDCToken.IssuerNotMatch",
       "The issuer in the OIDC Token doesn't match the OIDC Provider registered.",
       absl::StatusCode::kUnauthenticated, false},
      {403, "AuthenticationFail.NoPermission", "There is no permission",
       absl::StatusCode::kPermissionDenied, false},
      {404, "EntityNotExist.Role", "The role not exists: acs:ram::1:role/x.",
       absl::StatusCode::kNotFound, false},
      {400, "InvalidParameter.DurationSeconds", "The Min/Max value of DurationSeconds is 900/3600",
       absl::StatusCode::kInvalidArgument, false},
      {400, "MissingParameter", "The input parameter \"RoleArn\" is not supplied.",
       absl::StatusCode::kInvalidArgument, false},
      {400, "Throttling.User", "Request was denied due to user flow control.",
       absl::StatusCode::kUnavailable, true},
      {503, "ServiceUnavailableTemporary", "The service is unavailable.",
       absl::StatusCode::kUnavailable, true},
      {500, "InternalFailure", "Internal failure.", absl::StatusCode::kUnavailable, true},
  };
  for (const ErrorCase& error : cases) {
    http_.enqueueResponse(
        error.http_status,
        absl::StrCat(R"({"RequestId":"REQ-42","HostId":"sts.aliyuncs.com","Code":")", error.code,
                     R"(","Message":")", absl::StrReplaceAll(error.message, {{"\"", "\\\""}}),
                     R"("})"));
    absl::StatusOr<StsSession> session = client_->assumeRoleWithOidc(request());
    EXPECT_THAT(session, StatusIs(error.expected,
                                  HasSubstr(absl::StrCat("STS AssumeRoleWithOIDC: ", error.code))))
        << error.code;
    EXPECT_THAT(std::string(session.status().message()), HasSubstr("(RequestId REQ-42)"));
    EXPECT_EQ(isRetryable(session.status()), error.retryable) << error.code;
    EXPECT_THAT(upstreamCode(session.status()), Optional(error.code));
  }
}

// Verifies transport failures keep their code (and so their retryability).
TEST_F(StsClientTest, KeepsTransportErrors) {
  http_.enqueueStatus(absl::UnavailableError("connect to sts.cn-hangzhou.aliyuncs.com: refused"));
  http_.enqueueStatus(absl::DeadlineExceededError("timeout"));
  http_.enqueueStatus(absl::ResourceExhaustedError("response exceeded cap"));
  EXPECT_THAT(client_->assumeRoleWithOidc(request()),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("STS AssumeRoleWithOIDC: connect to sts")));
  EXPECT_THAT(client_->assumeRoleWithOidc(request()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(client_->assumeRoleWithOidc(request()),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

// Verifies an upstream message echoing the OIDC token is redacted.
TEST_F(StsClientTest, RedactsTokenEchoedInError) {
  http_.enqueueResponse(
      400, absl::StrCat(R"({"Code":"AuthenticationFail.OIDCToken.Invalid","Message":"bad token )",
                        kToken, " (", percentEncode(kToken), R"json()","RequestId":"R"})json"));
  absl::StatusOr<StsSession> session = client_->assumeRoleWithOidc(request());
  EXPECT_THAT(session, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("bad token ***")));
  expectNoSecrets(session.status());
}

// Verifies malformed 200 answers are UNAVAILABLE naming the problem, never
// quoting the body's secrets.
TEST_F(StsClientTest, RejectsMalformedSuccessAnswers) {
  const std::string good(kEmulatorResponse);
  auto replace = [&](absl::string_view from, absl::string_view to) {
    const std::string changed = absl::StrReplaceAll(good, {{from, to}});
    EXPECT_NE(changed, good) << from;
    return changed;
  };
  struct Case {
    std::string body;
    std::string problem;
  };
  std::string deep = R"({"Credentials":)";
  for (int i = 0; i < 5000; ++i) deep += "{\"a\":";
  const std::vector<Case> cases = {
      {"", "the body is empty"},
      {"not json at all", "not valid JSON"},
      {"<?xml version=\"1.0\"?><AssumeRoleWithOIDCResponse/>", "XML or HTML"},
      {good.substr(0, good.size() / 2), "not valid JSON"},
      {"[1,2]", "the body is an array, not a JSON object"},
      {"\"text\"", "the body is a string, not a JSON object"},
      {R"({"RequestId":"x"})", "Credentials is missing"},
      {R"({"Credentials":"x"})", "Credentials is a string, not an object"},
      {deep, "nests deeper than"},
      {absl::StrCat(R"({"Pad":")", std::string((1 << 20) + 1, 'a'), "\"}"),
       "exceeds the 1 MiB limit"},
      {replace(R"("AccessKeyId":"STS.EMU0123456789",)", ""), "Credentials.AccessKeyId is missing"},
      {replace(R"("AccessKeyId":"STS.EMU0123456789")", R"("AccessKeyId":"")"),
       "Credentials.AccessKeyId is empty"},
      {replace(R"("AccessKeyId":"STS.EMU0123456789")", R"("AccessKeyId":12)"),
       "Credentials.AccessKeyId is a number, not a string"},
      {replace(R"("AccessKeyId":"STS.EMU0123456789")", R"("AccessKeyId":"STS.a\r\nX-Evil: 1")"),
       "Credentials.AccessKeyId has characters other than printable ASCII"},
      {replace(absl::StrCat(R"("AccessKeySecret":")", kSecret, "\""), R"("AccessKeySecret":null)"),
       "Credentials.AccessKeySecret is missing"},
      {replace(absl::StrCat(R"("AccessKeySecret":")", kSecret, "\""), R"("AccessKeySecret":[])"),
       "Credentials.AccessKeySecret is an array, not a string"},
      {replace(absl::StrCat(R"("SecurityToken":")", kSecurityToken, "\""), R"("SecurityToken":"")"),
       "Credentials.SecurityToken is empty"},
      {replace(absl::StrCat(R"("SecurityToken":")", kSecurityToken, "\""),
               R"("SecurityToken":{"a":1})"),
       "Credentials.SecurityToken is an object, not a string"},
      {replace(R"("Expiration":"2026-01-01T01:00:00Z",)", ""), "Credentials.Expiration is missing"},
      {replace(R"("Expiration":"2026-01-01T01:00:00Z")", R"("Expiration":1767229200)"),
       "Credentials.Expiration is a number, not a string"},
  };
  for (const Case& test : cases) {
    absl::StatusOr<StsSession> session = parseAssumeRoleWithOidcResponse(response(200, test.body));
    EXPECT_THAT(session, StatusIs(absl::StatusCode::kUnavailable,
                                  AllOf(HasSubstr("STS AssumeRoleWithOIDC: malformed answer: "),
                                        HasSubstr(test.problem))))
        << test.body.substr(0, 200);
    EXPECT_TRUE(isRetryable(session.status()));
    expectNoSecrets(session.status());
  }
}

// Verifies only the two documented Expiration forms are accepted, strictly.
TEST_F(StsClientTest, RejectsBadExpirationFormats) {
  for (const char* bad :
       {"2026-01-01 01:00:00", "2026-01-01T01:00:00", "2026-01-01T01:00:00+08:00",
        "2026-01-01T01:00Z", "2026-13-01T01:00:00Z", "2026-02-30T01:00:00Z", "2026-01-01T24:00:00Z",
        "2026-01-01T01:60:00Z", "2026-01-01T01:00:00.1Z", "2026-01-01T01:00:00.1234Z",
        "2026-01-01t01:00:00z", "２026-01-01T01:00:00Z", ""}) {
    const std::string body =
        absl::StrReplaceAll(kEmulatorResponse, {{"\"2026-01-01T01:00:00Z\",\"SecurityToken\"",
                                                 absl::StrCat("\"", bad, "\",\"SecurityToken\"")}});
    EXPECT_THAT(parseAssumeRoleWithOidcResponse(response(200, body)),
                StatusIs(absl::StatusCode::kUnavailable,
                         HasSubstr("Credentials.Expiration is not a UTC time")))
        << bad;
  }
}

// Verifies a 200 that carries an error document is mapped like an error.
TEST_F(StsClientTest, MapsErrorDocumentInSuccessStatus) {
  EXPECT_THAT(parseAssumeRoleWithOidcResponse(response(
                  200, R"({"Code":"Throttling.User","Message":"flow control","RequestId":"R"})")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Throttling.User")));
}

// Verifies a non-2xx answer without an error document maps by HTTP status.
TEST_F(StsClientTest, MapsBareHttpErrors) {
  EXPECT_THAT(parseAssumeRoleWithOidcResponse(response(502, "<html>Bad Gateway</html>")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("HTTP 502")));
  EXPECT_THAT(parseAssumeRoleWithOidcResponse(response(403, "")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("HTTP 403")));
}

}  // namespace
}  // namespace credsync::alibaba
