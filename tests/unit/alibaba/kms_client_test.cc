#include "sidecar/alibaba/kms_client.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/alibaba/signature.h"
#include "sidecar/common/crypto.h"
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;
using ::testing::StartsWith;

constexpr absl::string_view kSessionSecret = "StsSessionSecret0123456789abcdef";
constexpr absl::string_view kSessionToken = "CAIS+session/token=0123456789abcdefghijklmnop";
constexpr absl::string_view kManagedSecret = "ManagedKeySecretValue0123456789";
constexpr absl::string_view kEndpoint = "https://kms.cn-hangzhou.aliyuncs.com";

absl::Time utc(int year, int month, int day, int hour, int minute, int second) {
  return absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                         absl::UTCTimeZone());
}

AccessKeyCredentials session() {
  AccessKeyCredentials credentials;
  credentials.access_key_id = "STS.NSessionKeyId";
  credentials.access_key_secret = SecretString(std::string(kSessionSecret));
  credentials.security_token = SecretString(std::string(kSessionToken));
  return credentials;
}

// A GetSecretValue answer exactly as the emulator builds it
// (tests/emulator/kms_service.cc).
nlohmann::json emulatorAnswer() {
  nlohmann::json secret_data = {{"AccessKeyId", "LTAI5tManagedKey0001"},
                                {"AccessKeySecret", std::string(kManagedSecret)},
                                {"GenerateTimestamp", "2026-01-01T00:00:00Z"}};
  nlohmann::json extended = {{"SecretSubType", "RamUserAccessKey"}, {"UserName", "demo-app"}};
  return {
      {"RequestId", "7E1C4A44-6E0B-4D4B-9C7B-8A1E2B3C4D5E"},
      {"SecretName", "acs/ram/user/demo-app"},
      {"SecretType", "RAMCredentials"},
      {"SecretData", secret_data.dump()},
      {"SecretDataType", "text"},
      {"VersionId", "v0001"},
      {"VersionStages", {{"VersionStage", {"ACSCurrent"}}}},
      {"CreateTime", "2025-12-01T00:00:00Z"},
      {"LastRotationDate", "2026-01-01T00:00:00Z"},
      {"NextRotationDate", "2026-01-08T00:00:00Z"},
      {"RotationInterval", "604800s"},
      {"AutomaticRotation", "Enabled"},
      {"ExtendedConfig", extended.dump()},
  };
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

Params queryOf(const http::Request& request) {
  const size_t question = request.url.find('?');
  if (question == std::string::npos) return {};
  auto params = parseQueryString(absl::string_view(request.url).substr(question + 1));
  EXPECT_THAT(params, IsOk());
  return params.ok() ? *params : Params{};
}

void expectNoSecrets(const absl::Status& status) {
  for (const absl::string_view secret : {kSessionSecret, kSessionToken, kManagedSecret}) {
    EXPECT_THAT(status.ToString(), Not(HasSubstr(std::string(secret))));
    EXPECT_THAT(status.ToString(), Not(HasSubstr(percentEncode(secret))));
  }
}

SecretValue ramSecret(std::string data) {
  SecretValue value;
  value.secret_type = "RAMCredentials";
  value.secret_data_type = "text";
  value.secret_data = SecretString(std::move(data));
  return value;
}

class KmsClientTest : public ::testing::Test {
 protected:
  absl::StatusOr<SecretValue> fetch(SignatureScheme scheme, std::string stage = "ACSCurrent") {
    KmsClientPtr client = makeKmsClient(http_, time_, scheme);
    GetSecretValueRequest request;
    request.endpoint = std::string(kEndpoint);
    request.secret_name = "acs/ram/user/demo-app";
    request.version_stage = std::move(stage);
    return client->getSecretValue(request, session());
  }

  FakeHttpClient http_;
  SimulatedTimeSource time_{utc(2026, 1, 2, 3, 4, 5)};
};

// Verifies the ACS3 request: parameters in the query, the security token in
// x-acs-security-token, and a signature a gateway can recompute.
TEST_F(KmsClientTest, SignsAcs3WithSecurityToken) {
  http_.enqueueResponse(200, emulatorAnswer().dump());
  ASSERT_THAT(fetch(SignatureScheme::kAcs3HmacSha256), IsOk());

  const http::Request sent = http_.lastRequest().value();
  EXPECT_EQ(sent.method, "POST");
  EXPECT_THAT(sent.url, StartsWith("https://kms.cn-hangzhou.aliyuncs.com/?"));
  const Params query = queryOf(sent);
  EXPECT_EQ(query.at("SecretName"), "acs/ram/user/demo-app");
  EXPECT_EQ(query.at("VersionStage"), "ACSCurrent");
  EXPECT_EQ(query.at("FetchExtendedConfig"), "true");
  EXPECT_EQ(headerOf(sent, "x-acs-action"), "GetSecretValue");
  EXPECT_EQ(headerOf(sent, "x-acs-version"), "2016-01-20");
  EXPECT_EQ(headerOf(sent, "x-acs-date"), "2026-01-02T03:04:05Z");
  EXPECT_EQ(headerOf(sent, "x-acs-security-token"), kSessionToken);
  EXPECT_EQ(headerOf(sent, "x-acs-accesskey-id"), "STS.NSessionKeyId");

  auto authorization = acs3::parseAuthorizationHeader(headerOf(sent, "Authorization").value());
  ASSERT_THAT(authorization, IsOk());
  EXPECT_EQ(authorization->access_key_id, "STS.NSessionKeyId");
  acs3::CanonicalRequestInput input;
  input.method = sent.method;
  input.query = query;
  for (const std::string& name : authorization->signed_headers) {
    input.headers.emplace_back(name, headerOf(sent, name).value());
  }
  input.hashed_payload = crypto::hexLower(crypto::sha256(sent.body));
  EXPECT_EQ(
      authorization->signature,
      acs3::signature(kSessionSecret, acs3::stringToSign(acs3::canonicalRequest(input).text)));
  EXPECT_THAT(authorization->signed_headers, ::testing::Contains("x-acs-security-token"));
}

// Verifies the HMAC-SHA1 RPC request: SecurityToken and Signature in the
// query, business parameters in the form body, signature over both.
TEST_F(KmsClientTest, SignsRpcWithSecurityToken) {
  http_.enqueueResponse(200, emulatorAnswer().dump());
  ASSERT_THAT(fetch(SignatureScheme::kRpcHmacSha1, "ACSPrevious"), IsOk());

  const http::Request sent = http_.lastRequest().value();
  Params params = queryOf(sent);
  EXPECT_EQ(params.at("Action"), "GetSecretValue");
  EXPECT_EQ(params.at("AccessKeyId"), "STS.NSessionKeyId");
  EXPECT_EQ(params.at("SecurityToken"), kSessionToken);
  EXPECT_EQ(params.at("SignatureMethod"), "HMAC-SHA1");
  auto form = parseQueryString(sent.body);
  ASSERT_THAT(form, IsOk());
  EXPECT_EQ(form->at("SecretName"), "acs/ram/user/demo-app");
  EXPECT_EQ(form->at("VersionStage"), "ACSPrevious");
  EXPECT_EQ(form->at("FetchExtendedConfig"), "true");
  const std::string signature = params.at("Signature");
  params.insert(form->begin(), form->end());
  EXPECT_EQ(signature, rpc::signature("POST", params, kSessionSecret));
}

// Verifies every request carries a fresh random nonce.
TEST_F(KmsClientTest, UsesFreshNoncePerRequest) {
  http_.enqueueResponse(200, emulatorAnswer().dump());
  http_.enqueueResponse(200, emulatorAnswer().dump());
  ASSERT_THAT(fetch(SignatureScheme::kAcs3HmacSha256), IsOk());
  ASSERT_THAT(fetch(SignatureScheme::kAcs3HmacSha256), IsOk());
  const std::vector<http::Request> sent = http_.requests();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_NE(headerOf(sent[0], "x-acs-signature-nonce"), headerOf(sent[1], "x-acs-signature-nonce"));
}

// Verifies an empty secret name or a bad endpoint fails locally.
TEST_F(KmsClientTest, RejectsBadInputsLocally) {
  KmsClientPtr client = makeKmsClient(http_, time_, SignatureScheme::kAcs3HmacSha256);
  GetSecretValueRequest request;
  request.endpoint = std::string(kEndpoint);
  EXPECT_THAT(client->getSecretValue(request, session()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SecretName is empty")));
  request.secret_name = "x";
  request.endpoint = "ftp://kms";
  EXPECT_THAT(client->getSecretValue(request, session()),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("KMS GetSecretValue: ")));
  EXPECT_EQ(http_.requestCount(), 0u);
}

// Verifies the emulator's full answer is parsed field by field.
TEST_F(KmsClientTest, ParsesFullAnswer) {
  http_.enqueueResponse(200, emulatorAnswer().dump());
  absl::StatusOr<SecretValue> value = fetch(SignatureScheme::kAcs3HmacSha256);
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->secret_name, "acs/ram/user/demo-app");
  EXPECT_EQ(value->secret_type, "RAMCredentials");
  EXPECT_EQ(value->secret_data_type, "text");
  EXPECT_EQ(value->version_id, "v0001");
  EXPECT_THAT(value->version_stages, ElementsAre("ACSCurrent"));
  EXPECT_EQ(value->create_time, utc(2025, 12, 1, 0, 0, 0));
  EXPECT_EQ(value->last_rotation_date, utc(2026, 1, 1, 0, 0, 0));
  EXPECT_EQ(value->next_rotation_date, utc(2026, 1, 8, 0, 0, 0));
  EXPECT_EQ(value->rotation_interval, absl::Hours(24 * 7));
  EXPECT_EQ(value->automatic_rotation, "Enabled");
  EXPECT_EQ(value->request_id, "7E1C4A44-6E0B-4D4B-9C7B-8A1E2B3C4D5E");
  EXPECT_EQ(nlohmann::json::parse(value->extended_config)["SecretSubType"], "RamUserAccessKey");

  absl::StatusOr<RamCredentials> credentials = parseRamCredentials(*value);
  ASSERT_THAT(credentials, IsOk());
  EXPECT_EQ(credentials->access_key_id, "LTAI5tManagedKey0001");
  EXPECT_EQ(credentials->access_key_secret.reveal(), kManagedSecret);
  EXPECT_EQ(credentials->generate_timestamp, utc(2026, 1, 1, 0, 0, 0));
}

// Verifies the doc's Generic example parses (no dates) and is refused as RAM credentials.
TEST_F(KmsClientTest, ParsesDocExampleButRefusesGeneric) {
  absl::StatusOr<SecretValue> value = parseGetSecretValueResponse(response(200, R"({
	"SecretName": "secret001",
	"VersionId": "00000000000000000000000000000001",
	"SecretData": "testdata1",
	"SecretType": "Generic",
	"SecretDataType": "binary",
	"VersionStages": {"VersionStage": ["ACSCurrent"]},
	"CreateTime": "2020-07-23T11:56:29Z",
	"RequestId": "6a3e9c36-1150-4881-84d3-eb8672fcafad"
})"));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->secret_name, "secret001");
  EXPECT_EQ(value->secret_data.reveal(), "testdata1");
  EXPECT_EQ(value->next_rotation_date, std::nullopt);
  EXPECT_EQ(value->rotation_interval, std::nullopt);
  EXPECT_THAT(parseRamCredentials(*value),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("SecretType is Generic, not RAMCredentials")));
}

// Verifies empty or null optional fields read as "not set".
TEST_F(KmsClientTest, TreatsEmptyOptionalFieldsAsUnset) {
  nlohmann::json answer = emulatorAnswer();
  answer["NextRotationDate"] = "";
  answer["LastRotationDate"] = nullptr;
  answer["RotationInterval"] = "";
  answer.erase("CreateTime");
  answer.erase("VersionStages");
  answer["ExtendedConfig"] = {{"SecretSubType", "RamUserAccessKey"}};
  absl::StatusOr<SecretValue> value = parseGetSecretValueResponse(response(200, answer.dump()));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->next_rotation_date, std::nullopt);
  EXPECT_EQ(value->last_rotation_date, std::nullopt);
  EXPECT_EQ(value->rotation_interval, std::nullopt);
  EXPECT_EQ(value->create_time, std::nullopt);
  EXPECT_TRUE(value->version_stages.empty());
  EXPECT_EQ(value->extended_config, R"({"SecretSubType":"RamUserAccessKey"})");
}

struct ErrorCase {
  int http_status;
  std::string code;
  absl::StatusCode expected;
  bool retryable;
};

// Verifies KMS and gateway error answers map to absl codes and retryability.
TEST_F(KmsClientTest, MapsErrorAnswers) {
  const std::vector<ErrorCase> cases = {
      {404, "Forbidden.ResourceNotFound", absl::StatusCode::kNotFound, false},
      {403, "Forbidden.NoPermission", absl::StatusCode::kPermissionDenied, false},
      {400, "InvalidParameter", absl::StatusCode::kInvalidArgument, false},
      {404, "InvalidAccessKeyId.NotFound", absl::StatusCode::kUnauthenticated, false},
      {400, "InvalidAccessKeyId.Inactive", absl::StatusCode::kUnauthenticated, false},
      {400, "InvalidSecurityToken.Expired", absl::StatusCode::kUnauthenticated, false},
      {400, "InvalidSecurityToken.MismatchWithAccessKey", absl::StatusCode::kUnauthenticated,
       false},
      {400, "MissingSecurityToken", absl::StatusCode::kUnauthenticated, false},
      {400, "Rejected.Throttling", absl::StatusCode::kUnavailable, true},
      {503, "ServiceUnavailableTemporary", absl::StatusCode::kUnavailable, true},
      {500, "InternalFailure", absl::StatusCode::kUnavailable, true},
  };
  for (const ErrorCase& error : cases) {
    http_.enqueueResponse(error.http_status,
                          nlohmann::json{{"RequestId", "REQ-9"},
                                         {"HostId", "kms.cn-hangzhou.aliyuncs.com"},
                                         {"Code", error.code},
                                         {"Message", "upstream says no"},
                                         {"Recommend", "https://api.aliyun.com/troubleshoot?q=x"}}
                              .dump());
    absl::StatusOr<SecretValue> value = fetch(SignatureScheme::kAcs3HmacSha256);
    EXPECT_THAT(value,
                StatusIs(error.expected, absl::StrCat("KMS GetSecretValue: ", error.code,
                                                      ": upstream says no (RequestId REQ-9)")));
    EXPECT_EQ(isRetryable(value.status()), error.retryable) << error.code;
    EXPECT_THAT(upstreamCode(value.status()), Optional(error.code));
  }
}

// Verifies SignatureDoesNotMatch's echoed RPC string to sign, which holds
// the security token, never reaches the error message.
TEST_F(KmsClientTest, RedactsStringToSignAndSecrets) {
  const std::string string_to_sign =
      absl::StrCat("POST&%2F&AccessKeyId%3DSTS.NSessionKeyId%26SecurityToken%3D",
                   percentEncode(percentEncode(kSessionToken)));
  http_.enqueueResponse(
      400, nlohmann::json{{"Code", "SignatureDoesNotMatch"},
                          {"Message", absl::StrCat("Specified signature is not matched with our "
                                                   "calculation. server string to sign is:",
                                                   string_to_sign)},
                          {"RequestId", "R"}}
               .dump());
  http_.enqueueResponse(
      400, nlohmann::json{{"Code", "InvalidParameter"},
                          {"Message", absl::StrCat("echo ", kSessionToken, " ", kSessionSecret)}}
               .dump());
  absl::StatusOr<SecretValue> value = fetch(SignatureScheme::kRpcHmacSha1);
  EXPECT_THAT(value,
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("[string to sign omitted]")));
  expectNoSecrets(value.status());
  value = fetch(SignatureScheme::kRpcHmacSha1);
  EXPECT_THAT(value, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("echo *** ***")));
  expectNoSecrets(value.status());
}

// Verifies transport failures keep their code.
TEST_F(KmsClientTest, KeepsTransportErrors) {
  http_.enqueueStatus(absl::UnavailableError("reset by peer"));
  EXPECT_THAT(fetch(SignatureScheme::kAcs3HmacSha256),
              StatusIs(absl::StatusCode::kUnavailable, "KMS GetSecretValue: reset by peer"));
}

// Verifies malformed 200 answers are UNAVAILABLE naming the field, never quoting SecretData.
TEST_F(KmsClientTest, RejectsMalformedAnswers) {
  struct Case {
    std::string body;
    std::string problem;
  };
  auto with = [](const char* field, nlohmann::json value) {
    nlohmann::json answer = emulatorAnswer();
    answer[field] = std::move(value);
    return answer.dump();
  };
  auto without = [](const char* field) {
    nlohmann::json answer = emulatorAnswer();
    answer.erase(field);
    return answer.dump();
  };
  const std::string good = emulatorAnswer().dump();
  std::string deep = R"({"SecretName":"x","VersionStages":)";
  for (int i = 0; i < 10000; ++i) deep += "[";
  const std::vector<Case> cases = {
      {"", "the body is empty"},
      {"<KMS><SecretName>x</SecretName></KMS>", "XML or HTML"},
      {good.substr(0, good.size() / 2), "not valid JSON"},
      {"null", "the body is null, not a JSON object"},
      {deep, "nests deeper than 32"},
      {absl::StrCat(R"({"P":")", std::string((1 << 20) + 10, 'p'), "\"}"), "exceeds the 1 MiB"},
      {without("SecretName"), "SecretName is missing"},
      {with("SecretName", ""), "SecretName is empty"},
      {with("SecretName", 7), "SecretName is a number, not a string"},
      {with("SecretName", "bad\nname"), "SecretName is longer than"},
      {without("SecretData"), "SecretData is missing"},
      {with("SecretData", nlohmann::json::object()), "SecretData is an object, not a string"},
      {without("VersionId"), "VersionId is missing"},
      {with("VersionId", true), "VersionId is a boolean, not a string"},
      {with("SecretType", nlohmann::json::array()), "SecretType is an array, not a string"},
      {with("RequestId", 5), "RequestId is a number, not a string"},
      {with("VersionStages", "ACSCurrent"), "VersionStages is a string, not an object"},
      {with("VersionStages", {{"VersionStage", "ACSCurrent"}}),
       "VersionStages.VersionStage is a string, not an array"},
      {with("VersionStages", {{"VersionStage", {1}}}),
       "VersionStages.VersionStage[] is a number, not a string"},
      {with("NextRotationDate", "2026-01-08 00:00:00"), "NextRotationDate is not a UTC time"},
      {with("NextRotationDate", 1767830400), "NextRotationDate is a number, not a string"},
      {with("CreateTime", "yesterday"), "CreateTime is not a UTC time"},
      {with("LastRotationDate", "2026-02-30T00:00:00Z"), "LastRotationDate is not a UTC time"},
      {with("RotationInterval", "604800"), "RotationInterval is not a number of seconds"},
      {with("RotationInterval", "7d"), "RotationInterval is not a number of seconds"},
      {with("RotationInterval", "-5s"), "RotationInterval is not a number of seconds"},
      {with("RotationInterval", "99999999999999999999s"),
       "RotationInterval is not a number of seconds"},
      {with("RotationInterval", 604800), "RotationInterval is a number, not a string"},
      {with("ExtendedConfig", 1), "ExtendedConfig is a number, not a string"},
  };
  for (const Case& test : cases) {
    absl::StatusOr<SecretValue> value = parseGetSecretValueResponse(response(200, test.body));
    EXPECT_THAT(value, StatusIs(absl::StatusCode::kUnavailable,
                                AllOf(HasSubstr("KMS GetSecretValue: malformed answer: "),
                                      HasSubstr(test.problem))))
        << test.body.substr(0, 200);
    expectNoSecrets(value.status());
  }
}

// Verifies a 200 carrying an error document is mapped as an error, and a
// bare non-2xx answer by its HTTP status.
TEST_F(KmsClientTest, MapsErrorDocumentsOutsideTheUsualPlace) {
  EXPECT_THAT(parseGetSecretValueResponse(
                  response(200, R"({"Code":"Rejected.Throttling","Message":"slow down"})")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Rejected.Throttling")));
  EXPECT_THAT(parseGetSecretValueResponse(response(504, "gateway timeout")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("HTTP 504")));
}

// Verifies strict RAMCredentials parsing: each bad SecretData names the
// field and never quotes the data.
TEST_F(KmsClientTest, ParseRamCredentialsIsStrict) {
  const std::string marker = "SECRETMARKER0123456789";
  struct Case {
    std::string data;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {"", "SecretData is empty"},
      {absl::StrCat("not json ", marker), "SecretData is not a JSON document"},
      {absl::StrCat(R"({"AccessKeyId":"A","AccessKeySecret":")", marker), "not a JSON document"},
      {absl::StrCat(R"(["AccessKeyId","A","AccessKeySecret",")", marker, "\"]"),
       "SecretData is an array, not a JSON object"},
      {absl::StrCat(R"({"AccessKeySecret":")", marker, "\"}"), "SecretData.AccessKeyId is missing"},
      {absl::StrCat(R"({"AccessKeyId":"","AccessKeySecret":")", marker, "\"}"),
       "SecretData.AccessKeyId is empty"},
      {absl::StrCat(R"({"AccessKeyId":12,"AccessKeySecret":")", marker, "\"}"),
       "SecretData.AccessKeyId is a number, not a string"},
      {absl::StrCat(R"({"AccessKeyId":"LTAI\n[evil]","AccessKeySecret":")", marker, "\"}"),
       "SecretData.AccessKeyId has characters other than printable ASCII"},
      {absl::StrCat(R"({"AccessKeyId":")", std::string(129, 'A'), R"(","AccessKeySecret":")",
                    marker, "\"}"),
       "SecretData.AccessKeyId is longer than 128 bytes"},
      {R"({"AccessKeyId":"LTAI"})", "SecretData.AccessKeySecret is missing"},
      {R"({"AccessKeyId":"LTAI","AccessKeySecret":null})", "SecretData.AccessKeySecret is missing"},
      {R"({"AccessKeyId":"LTAI","AccessKeySecret":""})", "SecretData.AccessKeySecret is empty"},
      {R"({"AccessKeyId":"LTAI","AccessKeySecret":["x"]})",
       "SecretData.AccessKeySecret is an array, not a string"},
      {absl::StrCat(R"({"AccessKeyId":"LTAI","AccessKeySecret":")", marker, " with space\"}"),
       "SecretData.AccessKeySecret has characters other than printable ASCII"},
      {absl::StrCat(R"({"AccessKeyId":"LTAI","AccessKeySecret":")", marker,
                    R"(","GenerateTimestamp":"2023-03-25 10:42:40"})"),
       "SecretData.GenerateTimestamp is not a UTC time"},
      {absl::StrCat(R"({"AccessKeyId":"LTAI","AccessKeySecret":")", marker,
                    R"(","GenerateTimestamp":1679740960})"),
       "SecretData.GenerateTimestamp is a number, not a string"},
      {absl::StrCat(std::string(100, '{'), marker), "SecretData is not a JSON document"},
      {std::string(70 * 1024, ' '), "SecretData is larger than 65536 bytes"},
  };
  for (const Case& test : cases) {
    absl::StatusOr<RamCredentials> parsed = parseRamCredentials(ramSecret(test.data));
    EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(test.problem)))
        << test.data.substr(0, 200);
    EXPECT_THAT(std::string(parsed.status().message()), Not(HasSubstr(marker)));
  }
}

// Verifies the documented SecretData example and its optional parts.
TEST_F(KmsClientTest, ParseRamCredentialsAcceptsDocumentedShapes) {
  absl::StatusOr<RamCredentials> parsed = parseRamCredentials(ramSecret(
      R"({"AccessKeyId":"Adfdsfd","AccessKeySecret":"fdsfdsf","GenerateTimestamp": "2023-03-25T10:42:40Z"})"));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->access_key_id, "Adfdsfd");
  EXPECT_EQ(parsed->access_key_secret.reveal(), "fdsfdsf");
  EXPECT_EQ(parsed->generate_timestamp, utc(2023, 3, 25, 10, 42, 40));

  parsed = parseRamCredentials(ramSecret(
      R"({"AccessKeyId":"A","AccessKeySecret":"S","GenerateTimestamp":"","ExpireTimestamp":"x","refreshInterval":"3600s"})"));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->generate_timestamp, std::nullopt);

  SecretValue untyped = ramSecret(R"({"AccessKeyId":"A","AccessKeySecret":"S"})");
  untyped.secret_data_type.clear();
  EXPECT_THAT(parseRamCredentials(untyped), IsOk());
}

// Verifies the secret type and data type must be RAMCredentials and text.
TEST_F(KmsClientTest, ParseRamCredentialsChecksTypes) {
  SecretValue value = ramSecret(R"({"AccessKeyId":"A","AccessKeySecret":"S"})");
  value.secret_type = "";
  EXPECT_THAT(parseRamCredentials(value),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SecretType is missing")));
  value.secret_type = "Rds\n";
  EXPECT_THAT(parseRamCredentials(value), StatusIs(absl::StatusCode::kInvalidArgument,
                                                   HasSubstr("SecretType is not RAMCredentials")));
  value.secret_type = "RAMCredentials";
  value.secret_data_type = "binary";
  EXPECT_THAT(parseRamCredentials(value), StatusIs(absl::StatusCode::kInvalidArgument,
                                                   HasSubstr("SecretDataType is not text")));
}

}  // namespace
}  // namespace credsync::alibaba
