#include "tests/emulator/authenticator.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/request_signer.h"
#include "tests/common/simulated_time_source.h"

namespace credsync::emulator {
namespace {

using alibaba::AccessKeyCredentials;
using alibaba::SignatureScheme;
using ::testing::HasSubstr;

class AuthenticatorTest : public ::testing::TestWithParam<SignatureScheme> {
 protected:
  AuthenticatorTest() : world_(time_, "1234567890123456", "cn-hangzhou") {
    key_ = world_.addAccessKey("", "", {"*"});
    Role role;
    role.arn = "acs:ram::1234567890123456:role/reader";
    role.secrets = {"app"};
    world_.addRole(role);
    session_ = world_.issueSession(role, absl::Hours(1));
  }

  AccessKeyCredentials permanent() const { return {key_.id, key_.secret, SecretString()}; }
  AccessKeyCredentials sts() const {
    return {session_.access_key_id, session_.secret, session_.security_token};
  }

  // Signs a GetSecretValue call the way the sidecar does, then turns the wire
  // request back into what the emulator's server sees.
  ApiRequest signedRequest(const AccessKeyCredentials& credentials, absl::Time at,
                           const std::string& nonce = "nonce-1") {
    alibaba::RpcCall call;
    call.endpoint = "https://kms.cn-hangzhou.aliyuncs.com";
    call.action = "GetSecretValue";
    call.version = "2016-01-20";
    call.params = {{"SecretName", "app"}, {"VersionStage", "ACSCurrent"}};
    auto request = alibaba::buildSignedRequest(call, &credentials, GetParam(), at, nonce);
    EXPECT_TRUE(request.ok()) << request.status();
    return toApiRequest(*request);
  }

  static ApiRequest toApiRequest(const http::Request& request) {
    const std::string prefix = "https://kms.cn-hangzhou.aliyuncs.com";
    std::string target = request.url.substr(prefix.size());
    if (target.empty() || target[0] != '/') target = "/" + target;
    std::vector<std::pair<std::string, std::string>> headers = request.headers;
    bool has_host = false;
    for (const auto& header : headers) has_host = has_host || header.first == "host";
    if (!has_host) headers.emplace_back("Host", "kms.cn-hangzhou.aliyuncs.com");
    auto parsed = parseApiRequest(request.method, target, headers, request.body);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return *parsed;
  }

  static std::string errorCode(const std::variant<Principal, ApiError>& outcome) {
    if (const auto* error = std::get_if<ApiError>(&outcome)) return error->code;
    return "OK";
  }

  testing::SimulatedTimeSource time_;
  World world_;
  AccessKey key_;
  Session session_;
};

// Verifies a correctly signed request with a permanent key is accepted and
// yields that key's principal.
TEST_P(AuthenticatorTest, AcceptsPermanentKey) {
  auto outcome = authenticate(signedRequest(permanent(), time_.systemTime()), world_);
  ASSERT_EQ(errorCode(outcome), "OK");
  EXPECT_EQ(std::get<Principal>(outcome).access_key_id, key_.id);
  EXPECT_FALSE(std::get<Principal>(outcome).is_session);
}

// Verifies an STS session with its token is accepted and carries the role's
// permissions.
TEST_P(AuthenticatorTest, AcceptsSessionWithToken) {
  auto outcome = authenticate(signedRequest(sts(), time_.systemTime()), world_);
  ASSERT_EQ(errorCode(outcome), "OK");
  EXPECT_TRUE(std::get<Principal>(outcome).is_session);
  EXPECT_THAT(std::get<Principal>(outcome).secrets, ::testing::ElementsAre("app"));
}

// Verifies a wrong secret is refused with SignatureDoesNotMatch and the
// server's string to sign, as the gateway reports it.
TEST_P(AuthenticatorTest, RejectsWrongSecret) {
  AccessKeyCredentials wrong = permanent();
  wrong.access_key_secret = SecretString("not-the-secret");
  auto outcome = authenticate(signedRequest(wrong, time_.systemTime()), world_);
  ASSERT_EQ(errorCode(outcome), "SignatureDoesNotMatch");
  EXPECT_THAT(std::get<ApiError>(outcome).message, HasSubstr("server string to sign is:"));
  EXPECT_EQ(std::get<ApiError>(outcome).http_status, 400);
}

// Verifies unknown, revoked and disabled keys get the gateway's codes and
// statuses.
TEST_P(AuthenticatorTest, RejectsUnknownRevokedAndDisabledKeys) {
  AccessKeyCredentials unknown{"LTAI5tUNKNOWN", SecretString("x"), SecretString()};
  auto outcome = authenticate(signedRequest(unknown, time_.systemTime()), world_);
  EXPECT_EQ(errorCode(outcome), "InvalidAccessKeyId.NotFound");
  EXPECT_EQ(std::get<ApiError>(outcome).http_status, 404);

  world_.setKeyState(key_.id, KeyState::kDisabled);
  outcome = authenticate(signedRequest(permanent(), time_.systemTime(), "n2"), world_);
  EXPECT_EQ(errorCode(outcome), "InvalidAccessKeyId.Inactive");
  EXPECT_EQ(std::get<ApiError>(outcome).http_status, 400);

  world_.revokeKey(key_.id);
  outcome = authenticate(signedRequest(permanent(), time_.systemTime(), "n3"), world_);
  EXPECT_EQ(errorCode(outcome), "InvalidAccessKeyId.NotFound");
}

// Verifies STS keys need their own, unexpired security token.
TEST_P(AuthenticatorTest, ChecksSecurityToken) {
  AccessKeyCredentials no_token = sts();
  no_token.security_token = SecretString();
  EXPECT_EQ(errorCode(authenticate(signedRequest(no_token, time_.systemTime(), "a"), world_)),
            "MissingSecurityToken");

  AccessKeyCredentials other_token = sts();
  other_token.security_token = SecretString("CAISsomeoneelse");
  EXPECT_EQ(errorCode(authenticate(signedRequest(other_token, time_.systemTime(), "b"), world_)),
            "InvalidSecurityToken.MismatchWithAccessKey");

  time_.advance(absl::Hours(1) + absl::Seconds(1));
  EXPECT_EQ(errorCode(authenticate(signedRequest(sts(), time_.systemTime(), "c"), world_)),
            "InvalidSecurityToken.Expired");
}

// Verifies a timestamp more than 15 minutes away from the server's clock is
// refused, in either direction.
TEST_P(AuthenticatorTest, RejectsSkewedTimestamp) {
  EXPECT_EQ(errorCode(authenticate(
                signedRequest(permanent(), time_.systemTime() - absl::Minutes(16), "a"), world_)),
            "InvalidTimeStamp.Expired");
  EXPECT_EQ(errorCode(authenticate(
                signedRequest(permanent(), time_.systemTime() + absl::Minutes(16), "b"), world_)),
            "InvalidTimeStamp.Expired");
  EXPECT_EQ(errorCode(authenticate(
                signedRequest(permanent(), time_.systemTime() - absl::Minutes(14), "c"), world_)),
            "OK");
}

// Verifies a replayed nonce is refused, and accepted again after the window.
TEST_P(AuthenticatorTest, RejectsReplayedNonce) {
  ApiRequest request = signedRequest(permanent(), time_.systemTime(), "same");
  EXPECT_EQ(errorCode(authenticate(request, world_)), "OK");
  EXPECT_EQ(errorCode(authenticate(request, world_)), "SignatureNonceUsed");
  time_.advance(absl::Minutes(16));
  EXPECT_EQ(errorCode(authenticate(signedRequest(permanent(), time_.systemTime(), "same"), world_)),
            "OK");
}

// Verifies a tampered parameter breaks the signature.
TEST_P(AuthenticatorTest, RejectsTamperedParameter) {
  ApiRequest request = signedRequest(permanent(), time_.systemTime());
  request.params["SecretName"] = "other";
  request.query["SecretName"] = "other";
  if (request.form.count("SecretName")) request.form["SecretName"] = "other";
  EXPECT_EQ(errorCode(authenticate(request, world_)), "SignatureDoesNotMatch");
}

// Verifies requests missing the signature parts are refused before any key
// lookup.
TEST_P(AuthenticatorTest, RejectsUnsignedRequest) {
  auto parsed = parseApiRequest("POST", "/?Action=GetSecretValue&SecretName=app",
                                {{"host", "kms.cn-hangzhou.aliyuncs.com"}}, "");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(errorCode(authenticate(*parsed, world_)), "MissingParameter");
}

INSTANTIATE_TEST_SUITE_P(BothSchemes, AuthenticatorTest,
                         ::testing::Values(SignatureScheme::kAcs3HmacSha256,
                                           SignatureScheme::kRpcHmacSha1));

// Verifies an ACS3 request whose body does not match x-acs-content-sha256 is
// refused.
TEST(AuthenticatorAcs3Test, RejectsBodyHashMismatch) {
  testing::SimulatedTimeSource time;
  World world(time, "1", "cn-hangzhou");
  AccessKey key = world.addAccessKey("", "", {"*"});
  alibaba::RpcCall call{"https://kms.cn-hangzhou.aliyuncs.com",
                        "GetSecretValue",
                        "2016-01-20",
                        {{"SecretName", "app"}},
                        "POST"};
  AccessKeyCredentials credentials{key.id, key.secret, SecretString()};
  auto request = alibaba::buildSignedRequest(call, &credentials, SignatureScheme::kAcs3HmacSha256,
                                             time.systemTime(), "n");
  ASSERT_TRUE(request.ok());
  std::vector<std::pair<std::string, std::string>> headers = request->headers;
  auto parsed = parseApiRequest("POST", request->url.substr(request->url.find('/', 8)), headers,
                                "injected=1");
  ASSERT_TRUE(parsed.ok());
  auto outcome = authenticate(*parsed, world);
  ASSERT_TRUE(std::holds_alternative<ApiError>(outcome));
  EXPECT_EQ(std::get<ApiError>(outcome).code, "InvalidParameter.ContentSha256");
}

}  // namespace
}  // namespace credsync::emulator
