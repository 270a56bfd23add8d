#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/logging.h"
#include "sidecar/identity/oidc_provider.h"
#include "tests/common/status_matchers.h"

namespace credsync::identity {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr absl::string_view kSecret = "StaticDevelopmentSecret0123456789";

class StaticProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::setSinkForTest([this](absl::string_view line) { lines_.emplace_back(line); });
    config_.type = config::IdentityType::kStatic;
    config_.static_access_key_id = "LTAI5tStaticKey0001";
    config_.static_access_key_secret = SecretString(std::string(kSecret));
  }
  void TearDown() override {
    log::setSinkForTest(nullptr);
    for (const std::string& line : lines_) EXPECT_THAT(line, Not(HasSubstr(std::string(kSecret))));
  }

  config::IdentityConfig config_;
  std::vector<std::string> lines_;
};

// Verifies the configured AccessKey is returned as is, every time.
TEST_F(StaticProviderTest, ReturnsConfiguredKey) {
  CredentialProviderPtr provider = makeStaticProvider(config_);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<alibaba::AccessKeyCredentials> credentials = provider->credentials();
    ASSERT_THAT(credentials, IsOk());
    EXPECT_EQ(credentials->access_key_id, "LTAI5tStaticKey0001");
    EXPECT_EQ(credentials->access_key_secret.reveal(), kSecret);
    EXPECT_TRUE(credentials->security_token.empty());
  }
  const IdentityStatus status = provider->status();
  EXPECT_EQ(status.type, "static");
  EXPECT_EQ(status.session_expiration, std::nullopt);
  EXPECT_THAT(status.last_error, IsOk());
}

// Verifies an optional security token is passed through.
TEST_F(StaticProviderTest, PassesSecurityToken) {
  config_.static_security_token = SecretString("CAISstatic-token-0123456789");
  CredentialProviderPtr provider = makeStaticProvider(config_);
  absl::StatusOr<alibaba::AccessKeyCredentials> credentials = provider->credentials();
  ASSERT_THAT(credentials, IsOk());
  EXPECT_EQ(credentials->security_token.reveal(), "CAISstatic-token-0123456789");
  for (const std::string& line : lines_) {
    EXPECT_THAT(line, Not(HasSubstr("CAISstatic-token-0123456789")));
  }
}

// Verifies creation warns once that this is for development, naming the key id only.
TEST_F(StaticProviderTest, WarnsOnceAtCreation) {
  CredentialProviderPtr provider = makeStaticProvider(config_);
  ASSERT_THAT(provider->credentials(), IsOk());
  ASSERT_THAT(provider->credentials(), IsOk());
  ASSERT_THAT(lines_, SizeIs(1));
  EXPECT_THAT(lines_[0], HasSubstr(R"("level":"warn")"));
  EXPECT_THAT(lines_[0], HasSubstr("local development only"));
  EXPECT_THAT(lines_[0], HasSubstr("LTAI5tStaticKey0001"));
}

// Verifies invalidate() changes nothing: there is nothing to refresh.
TEST_F(StaticProviderTest, InvalidateIsNoOp) {
  CredentialProviderPtr provider = makeStaticProvider(config_);
  provider->invalidate();
  absl::StatusOr<alibaba::AccessKeyCredentials> credentials = provider->credentials();
  ASSERT_THAT(credentials, IsOk());
  EXPECT_EQ(credentials->access_key_id, "LTAI5tStaticKey0001");
}

// Verifies a missing id or secret is FAILED_PRECONDITION naming the variables.
TEST_F(StaticProviderTest, MissingKeyIsFailedPrecondition) {
  config_.static_access_key_secret = SecretString();
  CredentialProviderPtr no_secret = makeStaticProvider(config_);
  EXPECT_THAT(no_secret->credentials(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                 HasSubstr("ALIBABA_CLOUD_ACCESS_KEY_SECRET")));
  EXPECT_THAT(no_secret->status().last_error, StatusIs(absl::StatusCode::kFailedPrecondition));

  config_.static_access_key_secret = SecretString(std::string(kSecret));
  config_.static_access_key_id.clear();
  CredentialProviderPtr no_id = makeStaticProvider(config_);
  EXPECT_THAT(no_id->credentials(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                             HasSubstr("ALIBABA_CLOUD_ACCESS_KEY_ID")));
}

}  // namespace
}  // namespace credsync::identity
