#include "sidecar/alibaba/dkms_client.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "alibaba/dkms/api.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/api_error.h"
#include "tests/common/fake_client_key_source.h"
#include "tests/common/fake_http_client.h"
#include "tests/common/read_file.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"

namespace credsync::alibaba {
namespace {

using ::credsync::testing::FakeHttpClient;
using ::credsync::testing::FixedClientKey;
using ::credsync::testing::IsOk;
using ::credsync::testing::readFile;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kEndpoint[] = "https://kst-hzz65f176a0ogplgq.cryptoservice.kms.aliyuncs.com";
constexpr char kSecretData[] = R"({"AccessKeyId":"LTAI5t","AccessKeySecret":"TOPSECRETVALUE"})";
// docs/research/kms-instance-api.md §4.2: the request body, and the
// Authorization the official Python string-to-sign code gives with the Java
// SDK's client key at 2026-11-24 17:00:00 GMT.
constexpr char kBodyHex[] = "0a096d792d736563726574120a41435343757272656e742001";
constexpr char kVectorAuthorization[] =
    "Bearer AIoe+17+tpjCGg7ECDx/sch/vmff82psWu6W4RuVEgVqvxtd4RXnhAHQ7/1ThDo5i/lg7lq0TOgN5D1RFXqe/"
    "m4zxWqJuzrOrmfs5yUbAH029rcdRfBI9kDYAFJGPeLKAZURVvjAmX+V/mZ5vp2gasjV5DoZ+y2oKsrKti/"
    "tKlJsPnLHkMMxqHe+VPDnZEoIoLcdQxAwFuZ50ff52RsxwKMtZFnkk8IDQIdlUlGP8TjY68QsceTaZFW0zUVMsEX2c+"
    "EDGcXa6GlV3yLpvcRp5TX2dPJCf9bbViwrKLABN1aUPx6bDBMIH/Mm0v5phLFXdm1+I0A74fQBJecOniuXcw==";

std::string toHex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// The value of a request header; empty when absent.
std::string header(const http::Request& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "";
}

ClientKey javaSdkClientKey() {
  absl::StatusOr<ClientKey> key = ClientKey::loadFile(
      absl::StrCat(CREDSYNC_ALIBABA_TESTDATA, "/java_sdk_client_key.json"), SecretString("1234"));
  EXPECT_THAT(key, IsOk());
  return *std::move(key);
}

dkms::GetSecretValueResponse fullAnswer() {
  dkms::GetSecretValueResponse answer;
  answer.set_secretname("my-secret");
  answer.set_secrettype("RAMCredentials");
  answer.set_secretdata(kSecretData);
  answer.set_secretdatatype("text");
  answer.add_versionstages("ACSCurrent");
  answer.set_versionid("00000000000000000000000000000001");
  answer.set_createtime("2020-07-23T11:56:29Z");
  answer.set_requestid("6a3e9c36-1150-4881-84d3-eb8672fcafad");
  answer.set_lastrotationdate("2026-11-20T08:22:03Z");
  answer.set_nextrotationdate("2026-11-27T08:22:03.123Z");
  answer.set_extendedconfig(R"({"SecretSubType":"RamUserAccessKey"})");
  answer.set_automaticrotation("Enabled");
  answer.set_rotationinterval("604800s");
  return answer;
}

http::Response okResponse(const dkms::GetSecretValueResponse& answer) {
  http::Response response;
  response.status = 200;
  response.body = answer.SerializeAsString();
  return response;
}

http::Response errorResponse(int status, const std::string& code, const std::string& message) {
  dkms::Error error;
  error.set_statuscode(status);
  error.set_errorcode(code);
  error.set_errormessage(message);
  error.set_requestid("req-1");
  http::Response response;
  response.status = status;
  response.body = error.SerializeAsString();
  return response;
}

class DkmsClientTest : public ::testing::Test {
 protected:
  SimulatedTimeSource time_{
      absl::FromCivil(absl::CivilSecond(2026, 11, 24, 17, 0, 0), absl::UTCTimeZone())};
  FakeHttpClient http_;
  FixedClientKey key_{javaSdkClientKey()};
  DkmsClientPtr client_ = makeDkmsClient(http_, key_, time_);
};

// Verifies the whole request against the §4.2 vector: POST /, the protobuf
// body, every header, and the Authorization the official string-to-sign
// code gives (the RSA signature is deterministic).
TEST_F(DkmsClientTest, RequestMatchesFullRequestVector) {
  http_.enqueueResponse(okResponse(fullAnswer()));
  ASSERT_THAT(client_->getSecretValue({kEndpoint, "my-secret", "ACSCurrent"}), IsOk());
  const std::optional<http::Request> request = http_.lastRequest();
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->url, absl::StrCat(kEndpoint, "/"));
  EXPECT_EQ(toHex(request->body), kBodyHex);
  using Header = std::pair<std::string, std::string>;
  EXPECT_THAT(
      request->headers,
      ElementsAre(Header{"accept", "application/x-protobuf"},
                  Header{"date", "Tue, 24 Nov 2026 17:00:00 GMT"},
                  Header{"x-kms-apiversion", "dkms-gcs-0.2"},
                  Header{"x-kms-apiname", "GetSecretValue"},
                  Header{"x-kms-signaturemethod", "RSA_PKCS1_SHA_256"},
                  Header{"x-kms-acccesskeyid", "key_for_unit_test"},
                  Header{"content-type", "application/x-protobuf"},
                  Header{"content-sha256",
                         "83ECECE04B659A2FA82D982946D681EE3A0C4A763E5A02B415872938C1DF1ECC"},
                  Header{"authorization", kVectorAuthorization}));
}

// Verifies the date follows the injected clock.
TEST_F(DkmsClientTest, DateFromTimeSource) {
  time_.advance(absl::Hours(24) + absl::Seconds(5));
  http_.enqueueResponse(okResponse(fullAnswer()));
  ASSERT_THAT(client_->getSecretValue({kEndpoint, "my-secret", "ACSCurrent"}), IsOk());
  EXPECT_EQ(http_.lastRequest()->headers[1].second, "Wed, 25 Nov 2026 17:00:05 GMT");
}

// Verifies each request signs with the key the source holds at that moment,
// so a client key replaced on disk is used from the next request on.
TEST_F(DkmsClientTest, SignsWithTheCurrentKey) {
  absl::StatusOr<ClientKey> replacement = ClientKey::fromPrivateKeyPemForTest(
      "KAAP.replacement",
      SecretString(readFile(absl::StrCat(CREDSYNC_ALIBABA_TESTDATA, "/java_sdk_test_key.pem"))));
  ASSERT_THAT(replacement, IsOk());
  http_.enqueueResponse(okResponse(fullAnswer()));
  http_.enqueueResponse(okResponse(fullAnswer()));
  ASSERT_THAT(client_->getSecretValue({kEndpoint, "my-secret", "ACSCurrent"}), IsOk());
  const std::string first_authorization = header(*http_.lastRequest(), "authorization");
  key_.replace(*std::move(replacement));
  ASSERT_THAT(client_->getSecretValue({kEndpoint, "my-secret", "ACSCurrent"}), IsOk());
  EXPECT_EQ(header(*http_.lastRequest(), "x-kms-acccesskeyid"), "KAAP.replacement");
  EXPECT_NE(header(*http_.lastRequest(), "authorization"), first_authorization);
}

// Verifies every field of a full answer lands in SecretValue.
TEST_F(DkmsClientTest, ParsesFullAnswer) {
  http_.enqueueResponse(okResponse(fullAnswer()));
  absl::StatusOr<SecretValue> value =
      client_->getSecretValue({kEndpoint, "my-secret", "ACSCurrent"});
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->secret_name, "my-secret");
  EXPECT_EQ(value->secret_type, "RAMCredentials");
  EXPECT_EQ(value->secret_data.reveal(), kSecretData);
  EXPECT_EQ(value->secret_data_type, "text");
  EXPECT_THAT(value->version_stages, ElementsAre("ACSCurrent"));
  EXPECT_EQ(value->version_id, "00000000000000000000000000000001");
  EXPECT_EQ(value->create_time, absl::FromUnixSeconds(1595505389));
  EXPECT_EQ(value->next_rotation_date,
            absl::FromCivil(absl::CivilSecond(2026, 11, 27, 8, 22, 3), absl::UTCTimeZone()) +
                absl::Milliseconds(123));
  EXPECT_EQ(value->rotation_interval, absl::Hours(24 * 7));
  EXPECT_EQ(value->automatic_rotation, "Enabled");
  EXPECT_EQ(value->extended_config, R"({"SecretSubType":"RamUserAccessKey"})");
  EXPECT_EQ(value->request_id, "6a3e9c36-1150-4881-84d3-eb8672fcafad");
  ASSERT_THAT(parseRamCredentials(*value), IsOk());
}

// Verifies the endpoint must be an https URL and the name non-empty, before
// anything is sent.
TEST_F(DkmsClientTest, RejectsBadRequests) {
  EXPECT_THAT(client_->getSecretValue({"http://kst-1.cryptoservice.kms.aliyuncs.com", "s"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("https")));
  EXPECT_THAT(client_->getSecretValue({"https://kst-1.example/path", "s"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client_->getSecretValue({kEndpoint, ""}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SecretName")));
  EXPECT_EQ(http_.requestCount(), 0u);
}

// Verifies transport failures keep their code, with the action in front.
TEST_F(DkmsClientTest, TransportErrorKeepsCode) {
  http_.enqueueStatus(absl::UnavailableError("connect to kst-1 failed"));
  EXPECT_THAT(
      client_->getSecretValue({kEndpoint, "s"}),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("KMS instance GetSecretValue: connect")));
}

struct ErrorCase {
  int http_status;
  const char* code;
  absl::StatusCode expected;
};

// Verifies the research §6 error table maps as documented in dkms_client.h,
// and that the upstream code travels as the payload.
TEST(ParseDkmsResponseTest, ErrorMapping) {
  const ErrorCase cases[] = {
      {404, "Unauthorized", absl::StatusCode::kUnauthenticated},
      {401, "SignatureNotMatch", absl::StatusCode::kUnauthenticated},
      {400, "RequestTimeTooSkewed", absl::StatusCode::kInvalidArgument},
      {400, "Rejected.Throttling", absl::StatusCode::kUnavailable},
      {429, "Rejected.Throttling", absl::StatusCode::kUnavailable},
      {500, "InternalFailure", absl::StatusCode::kUnavailable},
      {503, "ServiceUnavailableTemporary", absl::StatusCode::kUnavailable},
      {502, "SomethingNew", absl::StatusCode::kUnavailable},
      {404, "Forbidden.ResourceNotFound", absl::StatusCode::kNotFound},
      {404, "Forbidden.KeyNotFound", absl::StatusCode::kNotFound},
      {403, "Forbidden.NoPermission", absl::StatusCode::kPermissionDenied},
      {400, "InvalidParam", absl::StatusCode::kInvalidArgument},
      {400, "MissingParameter", absl::StatusCode::kInvalidArgument},
      {415, "InvalidContentType", absl::StatusCode::kInvalidArgument},
  };
  for (const ErrorCase& error : cases) {
    const absl::Status status =
        parseDkmsGetSecretValueResponse(errorResponse(error.http_status, error.code, "msg"))
            .status();
    EXPECT_EQ(status.code(), error.expected) << error.code << " " << status;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr(absl::StrCat("KMS instance GetSecretValue: ", error.code,
                                       ": msg (RequestId req-1)")));
    EXPECT_EQ(upstreamCode(status), error.code);
  }
}

// Verifies a body that is no protobuf Error still gives a status by the
// HTTP code, and a POP-style JSON error is understood.
TEST(ParseDkmsResponseTest, NonProtobufErrorBodies) {
  http::Response html{503, {}, "<html><body>Bad gateway</body></html>"};
  EXPECT_THAT(parseDkmsGetSecretValueResponse(html),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("HTTP 503")));
  http::Response empty{401, {}, ""};
  EXPECT_THAT(parseDkmsGetSecretValueResponse(empty),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("HTTP 401")));
  http::Response json{403, {}, R"({"Code":"Forbidden.NoPermission","Message":"no"})"};
  EXPECT_THAT(parseDkmsGetSecretValueResponse(json),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("Forbidden.NoPermission")));
}

// Verifies error messages are cleaned and redacted like POP errors.
TEST(ParseDkmsResponseTest, ErrorMessageRedactedAndOneLine) {
  const absl::string_view redact[] = {"TOPSECRETVALUE"};
  const absl::Status status =
      parseDkmsGetSecretValueResponse(
          errorResponse(400, "InvalidParam", "bad TOPSECRETVALUE\nforged line"), redact)
          .status();
  EXPECT_THAT(std::string(status.message()),
              AllOf(Not(HasSubstr("TOPSECRETVALUE")), Not(HasSubstr("\n")), HasSubstr("***")));
}

// Verifies strict parsing of 2xx answers: each problem is UNAVAILABLE naming
// the field, and SecretData never appears in the message.
TEST(ParseDkmsResponseTest, StrictSuccessParsing) {
  struct Case {
    const char* expected;
    void (*mutate)(dkms::GetSecretValueResponse&);
  };
  const Case cases[] = {
      {"SecretName is missing", [](auto& a) { a.clear_secretname(); }},
      {"SecretData is missing", [](auto& a) { a.clear_secretdata(); }},
      {"VersionId is missing", [](auto& a) { a.clear_versionid(); }},
      {"SecretName is longer", [](auto& a) { a.set_secretname("my secret"); }},
      {"SecretType is longer", [](auto& a) { a.set_secrettype(std::string(200, 'x')); }},
      {"VersionStages[]", [](auto& a) { a.add_versionstages(""); }},
      {"CreateTime is not a UTC time", [](auto& a) { a.set_createtime("2020-02-30T00:00:00Z"); }},
      {"NextRotationDate is not", [](auto& a) { a.set_nextrotationdate("tomorrow"); }},
      {"RotationInterval", [](auto& a) { a.set_rotationinterval("7d"); }},
      {"RotationInterval", [](auto& a) { a.set_rotationinterval("s"); }},
  };
  for (const Case& test : cases) {
    dkms::GetSecretValueResponse answer = fullAnswer();
    test.mutate(answer);
    EXPECT_THAT(parseDkmsGetSecretValueResponse(okResponse(answer)),
                StatusIs(absl::StatusCode::kUnavailable,
                         AllOf(HasSubstr("KMS instance GetSecretValue: malformed answer"),
                               HasSubstr(test.expected), Not(HasSubstr("TOPSECRETVALUE")))))
        << test.expected;
  }
}

// Verifies empty optional fields mean "not set", as in the OpenAPI parser.
TEST(ParseDkmsResponseTest, EmptyOptionalFields) {
  dkms::GetSecretValueResponse answer;
  answer.set_secretname("s");
  answer.set_secretdata("d");
  answer.set_versionid("v1");
  absl::StatusOr<SecretValue> value = parseDkmsGetSecretValueResponse(okResponse(answer));
  ASSERT_THAT(value, IsOk());
  EXPECT_FALSE(value->create_time.has_value());
  EXPECT_FALSE(value->rotation_interval.has_value());
  EXPECT_TRUE(value->version_stages.empty());
}

// Verifies a 2xx that is not protobuf, empty or oversized is UNAVAILABLE.
TEST(ParseDkmsResponseTest, UnparsableSuccess) {
  EXPECT_THAT(parseDkmsGetSecretValueResponse({200, {}, "\xff\xff\xff"}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("not a GetSecretValueResponse")));
  EXPECT_THAT(parseDkmsGetSecretValueResponse({200, {}, ""}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("empty")));
  EXPECT_THAT(parseDkmsGetSecretValueResponse({200, {}, std::string((1 << 20) + 1, 'a')}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("1 MiB")));
}

// Verifies the request body is the §4.2 protobuf, with ACSCurrent by default.
TEST(DkmsRequestBodyTest, DefaultStage) {
  EXPECT_EQ(toHex(dkmsGetSecretValueRequestBody({kEndpoint, "my-secret", ""})), kBodyHex);
}

}  // namespace
}  // namespace credsync::alibaba
