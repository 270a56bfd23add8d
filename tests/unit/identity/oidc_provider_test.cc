#include "sidecar/identity/oidc_provider.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/signature.h"
#include "sidecar/alibaba/sts_client.h"
#include "tests/common/captured_log.h"
#include "tests/common/fake_http_client.h"
#include "tests/common/fake_random.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"

namespace credsync::identity {
namespace {

using ::credsync::testing::CapturedLog;
using ::credsync::testing::FakeHttpClient;
using ::credsync::testing::FakeRandom;
using ::credsync::testing::IsOk;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

std::string formatTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// The OIDC identity's own part: the token file and the AssumeRoleWithOIDC
// request. The session caching it shares with the ECS RAM role identity is
// tested in session_provider_test.cc.
class OidcProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "oidc_provider_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    token_path_ = dir_ + "/token";
    writeToken("eyJhbGciOiJSUzI1NiJ9.first-token.signature");

    config_.role_arn = "acs:ram::1234567890123456:role/credsync-demo";
    config_.oidc_provider_arn = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-cdemo";
    config_.oidc_token_file = token_path_;
    config_.role_session_name = "credsync-pod";
    config_.session_duration = absl::Hours(1);

    // Answers like STS: a new key per exchange, expiring an hour from now.
    http_.setHandler([this](const http::Request& request) { return answer(request); });
  }

  void TearDown() override {
    // No secret of any exchange, nor any OIDC token, reached a log line.
    for (const std::string& line : log_.lines()) {
      EXPECT_THAT(line, Not(HasSubstr("secret-"))) << line;
      EXPECT_THAT(line, Not(HasSubstr("token-"))) << line;
      for (const std::string& token : tokens_written_) {
        EXPECT_THAT(line, Not(HasSubstr(token))) << line;
      }
    }
    std::filesystem::remove_all(dir_);
  }

  absl::StatusOr<http::Response> answer(const http::Request& request) {
    const int n = ++exchanges_;
    http::Response response;
    response.status = 200;
    response.body = absl::StrCat(
        R"({"RequestId":"R)", n,
        R"(","AssumedRoleUser":{"Arn":"acs:ram::1:role/credsync-demo/credsync-pod"},)",
        R"("Credentials":{"AccessKeyId":"STS.KEY)", n, R"(","AccessKeySecret":"secret-)", n,
        R"(-0123456789","SecurityToken":"token-)", n, R"(-abcdefghijklmnop","Expiration":")",
        formatTime(time_.systemTime() + absl::Hours(1)), R"("}})");
    return response;
  }

  void writeToken(const std::string& token) {
    tokens_written_.push_back(token);
    // Written aside and renamed into place, as the kubelet swaps it.
    const std::string temporary = token_path_ + ".tmp";
    std::ofstream(temporary) << token;
    std::filesystem::rename(temporary, token_path_);
  }

  // The OIDCToken sent in the n-th (0-based) request's form body.
  std::string sentToken(size_t n) {
    const std::vector<http::Request> requests = http_.requests();
    EXPECT_GT(requests.size(), n);
    if (requests.size() <= n) return "";
    auto form = alibaba::parseQueryString(requests[n].body);
    EXPECT_THAT(form, IsOk());
    return form.ok() ? form->at("OIDCToken") : "";
  }

  std::string keyId(const absl::StatusOr<alibaba::AccessKeyCredentials>& credentials) {
    return credentials.ok() ? credentials->access_key_id : credentials.status().ToString();
  }

  CredentialProviderPtr makeProvider() { return makeOidcProvider(config_, *sts_, time_, random_); }

  CapturedLog log_;
  std::string dir_;
  std::string token_path_;
  std::vector<std::string> tokens_written_;
  config::IdentityConfig config_;
  SimulatedTimeSource time_;
  FakeHttpClient http_;
  alibaba::StsClientPtr sts_ = alibaba::makeStsClient(http_, time_, "https://sts.aliyuncs.com");
  FakeRandom random_{0.0};
  std::atomic<int> exchanges_{0};
};

// Verifies the first call exchanges the token, later calls reuse the
// session, and status() describes it as an OIDC identity.
TEST_F(OidcProviderTest, ExchangesOnceAndCachesSession) {
  CredentialProviderPtr provider = makeProvider();
  absl::StatusOr<alibaba::AccessKeyCredentials> credentials = provider->credentials();
  ASSERT_THAT(credentials, IsOk());
  EXPECT_EQ(credentials->access_key_id, "STS.KEY1");
  EXPECT_EQ(credentials->access_key_secret.reveal(), "secret-1-0123456789");
  EXPECT_EQ(credentials->security_token.reveal(), "token-1-abcdefghijklmnop");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_EQ(http_.requestCount(), 1u);
  EXPECT_EQ(random_.draws(), 1);

  const IdentityStatus status = provider->status();
  EXPECT_EQ(status.type, "oidc");
  EXPECT_EQ(status.session_expiration, time_.systemTime() + absl::Hours(1));
  EXPECT_EQ(status.last_success, time_.systemTime());
  EXPECT_THAT(status.last_error, IsOk());
}

// Verifies the request carries the configured role, provider, session name,
// duration and policy.
TEST_F(OidcProviderTest, SendsConfiguredParameters) {
  config_.policy = R"({"Statement":[]})";
  config_.session_duration = absl::Minutes(20);
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  auto form = alibaba::parseQueryString(http_.lastRequest()->body);
  ASSERT_THAT(form, IsOk());
  EXPECT_EQ(form->at("RoleArn"), config_.role_arn);
  EXPECT_EQ(form->at("OIDCProviderArn"), config_.oidc_provider_arn);
  EXPECT_EQ(form->at("RoleSessionName"), "credsync-pod");
  EXPECT_EQ(form->at("DurationSeconds"), "1200");
  EXPECT_EQ(form->at("Policy"), config_.policy);
  EXPECT_EQ(form->at("OIDCToken"), "eyJhbGciOiJSUzI1NiJ9.first-token.signature");
}

// Verifies the token file is read anew for every exchange, including after
// invalidate(), so the kubelet's rotated token is always the one sent.
TEST_F(OidcProviderTest, ReReadsTokenFileOnEveryExchange) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  writeToken("eyJhbGciOiJSUzI1NiJ9.second-token.signature\n");
  time_.advance(absl::Minutes(46));
  ASSERT_THAT(provider->credentials(), IsOk());
  writeToken("eyJhbGciOiJSUzI1NiJ9.third-token.signature");
  provider->invalidate();
  ASSERT_THAT(provider->credentials(), IsOk());
  ASSERT_EQ(http_.requestCount(), 3u);
  EXPECT_EQ(sentToken(0), "eyJhbGciOiJSUzI1NiJ9.first-token.signature");
  EXPECT_EQ(sentToken(1), "eyJhbGciOiJSUzI1NiJ9.second-token.signature");
  EXPECT_EQ(sentToken(2), "eyJhbGciOiJSUzI1NiJ9.third-token.signature");
}

// Verifies a missing, empty or unreadable token file is FAILED_PRECONDITION
// naming the path, and nothing is sent.
TEST_F(OidcProviderTest, TokenFileProblemsAreFailedPrecondition) {
  std::filesystem::remove(token_path_);
  CredentialProviderPtr provider = makeProvider();
  EXPECT_THAT(provider->credentials(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(absl::StrCat(token_path_, ": does not exist"))));

  writeToken("  \n");
  EXPECT_THAT(provider->credentials(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(absl::StrCat(token_path_, ": is empty"))));

  config_.oidc_token_file = dir_;  // a directory: opens, cannot be read
  CredentialProviderPtr directory = makeProvider();
  EXPECT_THAT(directory->credentials(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                 HasSubstr(absl::StrCat(dir_, ": cannot read"))));

  config_.oidc_token_file = token_path_;
  writeToken(std::string(70 * 1024, 'a'));
  CredentialProviderPtr huge = makeProvider();
  EXPECT_THAT(huge->credentials(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("larger than")));
  EXPECT_EQ(http_.requestCount(), 0u);
  EXPECT_THAT(provider->status().last_error, StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Verifies an empty configured session name falls back to "credsync".
TEST_F(OidcProviderTest, DefaultsSessionName) {
  config_.role_session_name.clear();
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  EXPECT_EQ(alibaba::parseQueryString(http_.lastRequest()->body)->at("RoleSessionName"),
            "credsync");
}

}  // namespace
}  // namespace credsync::identity
