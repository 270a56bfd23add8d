#include "sidecar/alibaba/ecs_metadata_client.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/logging.h"
#include "tests/common/fake_http_client.h"
#include "tests/common/status_matchers.h"

namespace credsync::alibaba {
namespace {

using ::credsync::testing::FakeHttpClient;
using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kEndpoint[] = "http://127.0.0.1:9";
constexpr char kCredentials[] =
    R"({"AccessKeyId":"STS.ecs-key","AccessKeySecret":"ecs-secret-value",)"
    R"("Expiration":"2026-01-01T06:00:00Z","SecurityToken":"ecs-sts-token",)"
    R"("LastUpdated":"2026-01-01T00:00:00Z","Code":"Success"})";

std::optional<std::string> header(const http::Request& request, absl::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

class EcsMetadataClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.endpoint = kEndpoint;
    log::setSinkForTest([this](absl::string_view line) { log_lines_.emplace_back(line); });
  }
  void TearDown() override {
    log::setSinkForTest(nullptr);
    for (const std::string& line : log_lines_) {
      EXPECT_THAT(line, Not(HasSubstr("ecs-secret-value"))) << line;
      EXPECT_THAT(line, Not(HasSubstr("ecs-sts-token"))) << line;
      EXPECT_THAT(line, Not(HasSubstr("metadata-token-value"))) << line;
    }
  }
  absl::StatusOr<StsSession> fetch() {
    return makeEcsMetadataClient(http_, options_)->fetchRoleCredentials();
  }

  EcsMetadataOptions options_;
  FakeHttpClient http_;
  std::vector<std::string> log_lines_;
};

// Verifies the hardened mode: a token PUT with the TTL header, then the
// credentials GET carrying the token, and the answer parsed.
TEST_F(EcsMetadataClientTest, HardenedModeWithConfiguredRole) {
  options_.role_name = "node-role";
  options_.token_ttl = absl::Seconds(300);
  http_.enqueueResponse(200, "metadata-token-value");
  http_.enqueueResponse(200, kCredentials);
  absl::StatusOr<StsSession> session = fetch();
  ASSERT_THAT(session.status(), IsOk());
  EXPECT_EQ(session->credentials.access_key_id, "STS.ecs-key");
  EXPECT_EQ(session->credentials.access_key_secret.reveal(), "ecs-secret-value");
  EXPECT_EQ(session->credentials.security_token.reveal(), "ecs-sts-token");
  EXPECT_EQ(session->expiration, absl::FromUnixSeconds(1767225600 + 6 * 3600));
  const std::vector<http::Request> requests = http_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "PUT");
  EXPECT_EQ(requests[0].url, "http://127.0.0.1:9/latest/api/token");
  EXPECT_EQ(header(requests[0], "x-aliyun-ecs-metadata-token-ttl-seconds"), "300");
  EXPECT_EQ(requests[1].method, "GET");
  EXPECT_EQ(requests[1].url,
            "http://127.0.0.1:9/latest/meta-data/ram/security-credentials/node-role");
  EXPECT_EQ(header(requests[1], "x-aliyun-ecs-metadata-token"), "metadata-token-value");
}

// Verifies the role name is discovered (trimmed) when none is configured,
// with the token on the discovery GET too.
TEST_F(EcsMetadataClientTest, DiscoversRoleName) {
  http_.enqueueResponse(200, "metadata-token-value");
  http_.enqueueResponse(200, "discovered-role\n");
  http_.enqueueResponse(200, kCredentials);
  ASSERT_THAT(fetch().status(), IsOk());
  const std::vector<http::Request> requests = http_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].url, "http://127.0.0.1:9/latest/meta-data/ram/security-credentials/");
  EXPECT_EQ(header(requests[1], "x-aliyun-ecs-metadata-token"), "metadata-token-value");
  EXPECT_EQ(requests[2].url,
            "http://127.0.0.1:9/latest/meta-data/ram/security-credentials/discovered-role");
}

// Verifies a failed token PUT falls back to the normal mode (no token
// header) when allowed, and warns.
TEST_F(EcsMetadataClientTest, FallsBackToNormalModeWhenAllowed) {
  options_.role_name = "node-role";
  http_.enqueueResponse(403, "forbidden");
  http_.enqueueResponse(200, kCredentials);
  ASSERT_THAT(fetch().status(), IsOk());
  const std::vector<http::Request> requests = http_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(header(requests[1], "x-aliyun-ecs-metadata-token"), std::nullopt);
  bool warned = false;
  for (const std::string& line : log_lines_) warned |= absl::StrContains(line, "normal mode");
  EXPECT_TRUE(warned);
}

// Verifies that without the fallback a failed token PUT (HTTP error or
// transport error) is an error and nothing else is requested.
TEST_F(EcsMetadataClientTest, NoFallbackWhenDisabled) {
  options_.role_name = "node-role";
  options_.imdsv1_fallback = false;
  http_.enqueueResponse(404, "");
  EXPECT_THAT(fetch().status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("hardened mode")));
  http_.enqueueStatus(absl::UnavailableError("connection refused"));
  EXPECT_THAT(fetch().status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("connection refused")));
  EXPECT_EQ(http_.requestCount(), 2u);
}

// Verifies an unknown role is NOT_FOUND and other statuses UNAVAILABLE.
TEST_F(EcsMetadataClientTest, HttpErrors) {
  options_.role_name = "node-role";
  http_.enqueueResponse(200, "metadata-token-value");
  http_.enqueueResponse(404, "Not Found");
  EXPECT_THAT(fetch().status(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("node-role")));
  http_.enqueueResponse(200, "metadata-token-value");
  http_.enqueueResponse(500, "oops");
  EXPECT_THAT(fetch().status(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("HTTP 500")));
}

// Verifies a discovered name that could change the path is refused.
TEST_F(EcsMetadataClientTest, RefusesBadDiscoveredRoleName) {
  http_.enqueueResponse(200, "metadata-token-value");
  http_.enqueueResponse(200, "../../latest/api/token");
  EXPECT_THAT(fetch().status(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("role name")));
  EXPECT_EQ(http_.requestCount(), 2u);
}

// Verifies the answer parser: Code must be Success, the credential fields
// present, Expiration a UTC time; messages never quote secrets.
TEST(ParseEcsRoleCredentialsTest, RejectsMalformedAnswers) {
  http::Response response;
  response.status = 200;
  response.body = kCredentials;
  EXPECT_THAT(parseEcsRoleCredentials(response).status(), IsOk());
  const std::pair<std::string, std::string> cases[] = {
      {R"({"Code":"Failed","AccessKeyId":"a","AccessKeySecret":"ecs-secret-value",)"
       R"("SecurityToken":"t","Expiration":"2026-01-01T06:00:00Z"})",
       "Code is \"Failed\""},
      {R"({"Code":"Success","AccessKeyId":"a","SecurityToken":"t",)"
       R"("Expiration":"2026-01-01T06:00:00Z"})",
       "AccessKeySecret is missing"},
      {R"({"Code":"Success","AccessKeyId":"a","AccessKeySecret":"ecs-secret-value",)"
       R"("SecurityToken":"t","Expiration":"tomorrow"})",
       "Expiration"},
      {"not json", "malformed"},
  };
  for (const auto& [body, expected] : cases) {
    response.body = body;
    absl::Status status = parseEcsRoleCredentials(response).status();
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr(expected))) << body;
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("ecs-secret-value")));
  }
}

}  // namespace
}  // namespace credsync::alibaba
