#include "tests/emulator/kms_instance_gateway.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "alibaba/dkms/api.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/crypto.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"
#include "tests/emulator/client_key_crypto.h"
#include "tests/unit/emulator/dkms_java_fixture.h"

namespace credsync::emulator {
namespace {

using ::credsync::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fixture = dkms_fixture;

constexpr char kInstance[] = "kst-hzz0001";

class KmsInstanceGatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(world_.createSecret("my-secret", "my-user", 604800, std::nullopt), IsOk());
    ASSERT_THAT(world_.createSecret("other-secret", "other", 604800, std::nullopt), IsOk());
    ClientKeySpec spec;
    spec.key_id = fixture::kJavaFixtureKeyId;
    spec.password = fixture::kJavaFixturePassword;
    spec.private_key_data = fixture::kJavaFixturePrivateKeyData;
    spec.secrets = {"my-secret", "missing-secret"};
    ASSERT_THAT(keys_.create(spec), IsOk());
    auto opened = openClientKey(fixture::kJavaFixturePrivateKeyData, fixture::kJavaFixturePassword);
    ASSERT_THAT(opened, IsOk());
    private_key_pem_ = opened->private_key_pem;
  }

  static std::string body(const std::string& name, const std::string& stage = "ACSCurrent",
                          const std::string& version_id = "") {
    alibaba::dkms::GetSecretValueRequest request;
    request.set_secretname(name);
    request.set_versionstage(stage);
    request.set_versionid(version_id);
    request.set_fetchextendedconfig(true);
    return request.SerializeAsString();
  }

  // A request as the official SDK sends it, signed with the fixture key.
  GatewayRequest signedRequest(const std::string& request_body,
                               const std::string& key_id = fixture::kJavaFixtureKeyId) {
    GatewayRequest request;
    request.method = "POST";
    request.path = "/";
    request.body = request_body;
    request.headers = {
        {"accept", "application/x-protobuf"},
        {"host", "kst-hzz0001.cryptoservice.kms.aliyuncs.com"},
        {"date", fixture::kFullRequestDate},
        {"x-kms-apiversion", "dkms-gcs-0.2"},
        {"x-kms-apiname", "GetSecretValue"},
        {"x-kms-signaturemethod", "RSA_PKCS1_SHA_256"},
        {"x-kms-acccesskeyid", key_id},
        {"content-type", "application/x-protobuf"},
        {"content-sha256", absl::AsciiStrToUpper(crypto::hexLower(crypto::sha256(request_body)))},
    };
    sign(request);
    return request;
  }

  void sign(GatewayRequest& request) {
    request.headers.erase("authorization");
    auto signature = dkmsSign(private_key_pem_, dkmsStringToSign("POST", request.headers));
    ASSERT_THAT(signature, IsOk());
    request.headers.emplace("authorization", "Bearer " + *signature);
  }

  static void setHeader(GatewayRequest& request, const std::string& name,
                        const std::string& value) {
    request.headers.erase(name);
    request.headers.emplace(name, value);
  }

  static alibaba::dkms::Error errorOf(const GatewayAnswer& answer) {
    alibaba::dkms::Error error;
    EXPECT_TRUE(error.ParseFromString(answer.body));
    EXPECT_EQ(error.statuscode(), answer.status);
    EXPECT_EQ(error.errorcode(), answer.code);
    EXPECT_FALSE(error.requestid().empty());
    return error;
  }

  testing::SimulatedTimeSource time_{absl::FromUnixSeconds(1795539600)};  // the §4.2 Date
  World world_{time_, "1234567890123456", "cn-hangzhou"};
  ClientKeyRegistry keys_{world_, ""};
  KmsInstanceGateway gateway_{kInstance, world_, keys_};
  SecretString private_key_pem_;
};

// Verifies the research doc's full request (§4.2), with exactly its headers
// and body and the official fixture's client key, is accepted at its Date,
// and answers the secret as a GetSecretValueResponse.
TEST_F(KmsInstanceGatewayTest, AcceptsResearchFullRequest) {
  ASSERT_EQ(absl::FormatTime(time_.systemTime()), "2026-11-24T17:00:00+00:00");
  GatewayRequest request;
  request.method = "POST";
  request.path = "/";
  request.body = absl::HexStringToBytes(fixture::kFullRequestBodyHex);
  request.headers = {
      {"accept", "application/x-protobuf"},
      {"host", "kst-hzz0001.cryptoservice.kms.aliyuncs.com"},
      {"date", fixture::kFullRequestDate},
      {"user-agent", "AlibabaCloud (linux; amd64) Golang/1.21 kms-gcs-go-sdk-version/0.5.1"},
      {"x-kms-apiversion", "dkms-gcs-0.2"},
      {"x-kms-apiname", "GetSecretValue"},
      {"x-kms-signaturemethod", "RSA_PKCS1_SHA_256"},
      {"x-kms-acccesskeyid", "key_for_unit_test"},
      {"content-type", "application/x-protobuf"},
      {"content-length", "25"},
      {"content-sha256", fixture::kFullRequestContentSha256},
      {"authorization", fixture::kFullRequestAuthorization},
  };
  const GatewayAnswer answer = gateway_.handle(request);
  ASSERT_EQ(answer.status, 200) << answer.code;
  alibaba::dkms::GetSecretValueResponse response;
  ASSERT_TRUE(response.ParseFromString(answer.body));
  EXPECT_EQ(response.secretname(), "my-secret");
  EXPECT_EQ(response.secrettype(), "RAMCredentials");
  EXPECT_EQ(response.secretdatatype(), "text");
  EXPECT_THAT(response.secretdata(), HasSubstr("AccessKeySecret"));
  EXPECT_THAT(response.versionstages(), ElementsAre("ACSCurrent"));
  EXPECT_EQ(response.rotationinterval(), "604800s");
  EXPECT_EQ(response.automaticrotation(), "Enabled");
  EXPECT_THAT(response.extendedconfig(), HasSubstr("my-user"));
  EXPECT_EQ(response.createtime(), "2026-11-24T17:00:00Z");
  EXPECT_FALSE(response.requestid().empty());
}

// Verifies the documented "TOKEN" scheme is accepted as well as "Bearer".
TEST_F(KmsInstanceGatewayTest, AcceptsTokenScheme) {
  GatewayRequest request = signedRequest(body("my-secret"));
  std::string value = request.headers.find("authorization")->second;
  setHeader(request, "authorization", "TOKEN " + value.substr(7));
  EXPECT_EQ(gateway_.handle(request).status, 200);
}

// Verifies ACSPrevious chooses the version it names, VersionId is ignored
// for a RAMCredentials secret (as in KMS; Generic secrets honour it, see
// kms_service_test), and FetchExtendedConfig=false leaves ExtendedConfig out.
TEST_F(KmsInstanceGatewayTest, ResolvesStageAndVersionId) {
  auto rotated = world_.rotateSecret("my-secret", false);
  ASSERT_THAT(rotated, IsOk());
  alibaba::dkms::GetSecretValueResponse response;
  GatewayAnswer answer = gateway_.handle(signedRequest(body("my-secret", "ACSPrevious")));
  ASSERT_EQ(answer.status, 200);
  ASSERT_TRUE(response.ParseFromString(answer.body));
  EXPECT_THAT(response.versionstages(), ElementsAre("ACSPrevious"));
  EXPECT_NE(response.versionid(), rotated->version_id);

  answer = gateway_.handle(signedRequest(body("my-secret", "", "no-such-version")));
  ASSERT_EQ(answer.status, 200);
  ASSERT_TRUE(response.ParseFromString(answer.body));
  EXPECT_EQ(response.versionid(), rotated->version_id);
  EXPECT_THAT(response.secretdata(), HasSubstr(rotated->access_key_id));

  alibaba::dkms::GetSecretValueRequest plain;
  plain.set_secretname("my-secret");
  answer = gateway_.handle(signedRequest(plain.SerializeAsString()));
  ASSERT_EQ(answer.status, 200);
  ASSERT_TRUE(response.ParseFromString(answer.body));
  EXPECT_THAT(response.versionstages(), ElementsAre("ACSCurrent"));
  EXPECT_EQ(response.extendedconfig(), "");
}

// Verifies a signature from another key (here: over another string) is 401
// SignatureNotMatch, and so is any header change after signing.
TEST_F(KmsInstanceGatewayTest, RejectsBadSignature) {
  GatewayRequest request = signedRequest(body("my-secret"));
  request.headers.emplace("x-kms-extra", "signed-by-nobody");
  GatewayAnswer answer = gateway_.handle(request);
  EXPECT_EQ(answer.status, 401);
  EXPECT_EQ(errorOf(answer).errormessage(), "Signature is not matched.");
  request = signedRequest(body("my-secret"));
  setHeader(request, "authorization", "Bearer " + crypto::base64Encode(std::string(256, 'x')));
  EXPECT_EQ(gateway_.handle(request).code, "SignatureNotMatch");
  setHeader(request, "authorization", "Basic abc");
  EXPECT_EQ(errorOf(gateway_.handle(request)).errormessage(),
            "The Param Authorization is invalid.");
}

// Verifies an unknown, a disabled, and another instance's client key each
// get 404 Unauthorized with the documented message.
TEST_F(KmsInstanceGatewayTest, RejectsUnknownDisabledAndForeignKeys) {
  GatewayAnswer answer = gateway_.handle(signedRequest(body("my-secret"), "KAAP.unknown"));
  EXPECT_EQ(answer.status, 404);
  EXPECT_EQ(errorOf(answer).errormessage(),
            "The AccessKey ID \"KAAP.unknown\" does not exist in our records.");
  ASSERT_TRUE(keys_.setState(fixture::kJavaFixtureKeyId, KeyState::kDisabled));
  EXPECT_EQ(gateway_.handle(signedRequest(body("my-secret"))).code, "Unauthorized");
  ASSERT_TRUE(keys_.setState(fixture::kJavaFixtureKeyId, KeyState::kActive));
  EXPECT_EQ(gateway_.handle(signedRequest(body("my-secret"))).status, 200);

  KmsInstanceGateway other("kst-other", world_, keys_);
  ClientKeySpec spec;
  spec.key_id = "KAAP.only-other";
  spec.password = fixture::kJavaFixturePassword;
  spec.private_key_data = fixture::kJavaFixturePrivateKeyData;
  spec.secrets = {"*"};
  spec.instances = {"kst-other"};
  ASSERT_THAT(keys_.create(spec), IsOk());
  EXPECT_EQ(gateway_.handle(signedRequest(body("my-secret"), "KAAP.only-other")).code,
            "Unauthorized");
  EXPECT_EQ(other.handle(signedRequest(body("my-secret"), "KAAP.only-other")).status, 200);
}

// Verifies the ±15 minute window on Date, on the emulator's clock.
TEST_F(KmsInstanceGatewayTest, ChecksDateWindow) {
  time_.advance(absl::Minutes(14));
  EXPECT_EQ(gateway_.handle(signedRequest(body("my-secret"))).status, 200);
  time_.advance(absl::Minutes(2));
  GatewayAnswer answer = gateway_.handle(signedRequest(body("my-secret")));
  EXPECT_EQ(answer.code, "RequestTimeTooSkewed");
  EXPECT_EQ(errorOf(answer).errormessage(),
            "Request time exceeds server time more than 15 minutes.");
  time_.advance(absl::Minutes(-32));
  EXPECT_EQ(gateway_.handle(signedRequest(body("my-secret"))).code, "RequestTimeTooSkewed");
  world_.setClockOffset(absl::Minutes(16));
  EXPECT_EQ(gateway_.handle(signedRequest(body("my-secret"))).status, 200);

  GatewayRequest request = signedRequest(body("my-secret"));
  setHeader(request, "date", "2026-11-24T17:00:00Z");
  answer = gateway_.handle(request);
  EXPECT_EQ(answer.code, "InvalidParam");
  EXPECT_EQ(errorOf(answer).errormessage(), "The Param Date is invalid.");
}

// Verifies content-sha256 must be the upper-case hex SHA-256 of the body.
TEST_F(KmsInstanceGatewayTest, ChecksContentSha256) {
  GatewayRequest request = signedRequest(body("my-secret"));
  setHeader(request, "content-sha256",
            absl::AsciiStrToLower(request.headers.find("content-sha256")->second));
  sign(request);
  GatewayAnswer answer = gateway_.handle(request);
  EXPECT_EQ(answer.status, 400);
  EXPECT_EQ(errorOf(answer).errormessage(), "The Param Content-SHA256 is invalid.");
  request = signedRequest(body("my-secret"));
  request.body = body("other-secret");  // body swapped after signing
  EXPECT_EQ(errorOf(gateway_.handle(request)).errormessage(),
            "The Param Content-SHA256 is invalid.");
}

// Verifies the header checks' codes, statuses and documented messages.
TEST_F(KmsInstanceGatewayTest, ChecksHeaders) {
  struct Case {
    std::string header, value;
    int status;
    std::string code, message;
  };
  const Case cases[] = {
      {"x-kms-apiversion", "dkms-gcs-0.1", 400, "InvalidApiVersion",
       "The ApiVersion \"dkms-gcs-0.1\" is invalid."},
      {"x-kms-apiname", "Encrypt", 400, "InvalidApiName", "The ApiName \"Encrypt\" is invalid."},
      {"x-kms-signaturemethod", "", 400, "InvalidParam",
       "The Param x-kms-signaturemethod is invalid."},
      {"x-kms-signaturemethod", "HMAC-SHA1", 400, "InvalidParam",
       "The Param x-kms-signaturemethod is invalid. message:\"HMAC-SHA1\"."},
      {"x-kms-acccesskeyid", "", 400, "MissingParameter",
       "Parameter x-kms-acccesskeyid does not exist in http header or body."},
      {"content-type", "application/json", 415, "InvalidContentType",
       "Content-Type \"application/json\" is unsupported."},
  };
  for (const Case& c : cases) {
    GatewayRequest request = signedRequest(body("my-secret"));
    setHeader(request, c.header, c.value);
    const GatewayAnswer answer = gateway_.handle(request);
    EXPECT_EQ(answer.status, c.status) << c.header;
    EXPECT_EQ(answer.code, c.code) << c.header;
    EXPECT_EQ(errorOf(answer).errormessage(), c.message) << c.header;
  }
  GatewayRequest request = signedRequest(body("my-secret"));
  request.headers.erase("x-kms-apiversion");
  EXPECT_EQ(gateway_.handle(request).code, "InvalidApiVersion");
}

// Verifies received values echoed in a message are made valid UTF-8 (a
// proto3 string), so the Error still decodes: found by the fuzzer.
TEST_F(KmsInstanceGatewayTest, EchoedValuesStayUtf8) {
  GatewayRequest request = signedRequest(body("my-secret"));
  setHeader(request, "x-kms-apiname", std::string("Get\xff\xc3(\xe2\x82\xac", 9));
  const GatewayAnswer answer = gateway_.handle(request);
  EXPECT_EQ(answer.code, "InvalidApiName");
  EXPECT_EQ(errorOf(answer).errormessage(),
            "The ApiName \"Get\xEF\xBF\xBD\xEF\xBF\xBD(\xE2\x82\xAC\" is invalid.");
  setHeader(request, "x-kms-apiname", "GetSecretValue");
  setHeader(request, "x-kms-acccesskeyid", std::string("KAAP.\xed\xa0\x80", 8));  // a surrogate
  EXPECT_THAT(errorOf(gateway_.handle(request)).errormessage(),
              HasSubstr("KAAP.\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""));
}

// Verifies the client key's secrets limit what it reads (403), and a
// readable but absent secret is 404 Forbidden.ResourceNotFound.
TEST_F(KmsInstanceGatewayTest, ChecksPermissionThenExistence) {
  GatewayAnswer answer = gateway_.handle(signedRequest(body("other-secret")));
  EXPECT_EQ(answer.status, 403);
  EXPECT_EQ(answer.code, "Forbidden.NoPermission");
  EXPECT_EQ(errorOf(answer).errormessage(),
            "This operation for \"other-secret\" is forbidden by permission system.");
  answer = gateway_.handle(signedRequest(body("missing-secret")));
  EXPECT_EQ(answer.status, 404);
  EXPECT_EQ(answer.code, "Forbidden.ResourceNotFound");
  answer = gateway_.handle(signedRequest(body("my-secret", "ACSPending")));
  EXPECT_EQ(answer.code, "InvalidParameter");
  answer = gateway_.handle(signedRequest(std::string("\xff\xff\xff", 3)));
  EXPECT_EQ(answer.code, "InvalidParameter");
}

// Verifies only POST / is the API: other paths 404, other methods 405, and
// a body over 3 MB 413, each with a protobuf Error.
TEST_F(KmsInstanceGatewayTest, RoutesOnlyPostRoot) {
  GatewayRequest request = signedRequest(body("my-secret"));
  request.path = "/v1/secret";
  EXPECT_EQ(errorOf(gateway_.handle(request)).statuscode(), 404);
  request.path = "/";
  request.method = "GET";
  EXPECT_EQ(gateway_.handle(request).status, 405);
  request = signedRequest(std::string(kGatewayMaxBodyBytes + 1, 'a'));
  const GatewayAnswer answer = gateway_.handle(request);
  EXPECT_EQ(answer.status, 413);
  alibaba::dkms::Error error;
  ASSERT_TRUE(error.ParseFromString(answer.body));
  EXPECT_EQ(error.statuscode(), 413);
}

}  // namespace
}  // namespace credsync::emulator
