#include "tests/emulator/api_request.h"

#include "gtest/gtest.h"

namespace credsync::emulator {
namespace {

// Verifies GET requests carry everything in the query.
TEST(ApiRequestTest, GetWithQuery) {
  auto request = parseApiRequest(
      "GET", "/?Action=AssumeRoleWithOIDC&Version=2015-04-01&RoleArn=acs%3Aram%3A%3A1%3Arole%2Fr",
      {{"Host", "sts.aliyuncs.com"}}, "");
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->action, "AssumeRoleWithOIDC");
  EXPECT_EQ(request->version, "2015-04-01");
  EXPECT_EQ(*request->param("RoleArn"), "acs:ram::1:role/r");
  EXPECT_EQ(*request->header("host"), "sts.aliyuncs.com");
}

// Verifies POST splits parameters between query and form body, and both are
// visible as params while the query stays separate for ACS3.
TEST(ApiRequestTest, PostSplitsQueryAndForm) {
  auto request =
      parseApiRequest("POST", "/?Action=AssumeRoleWithOIDC&Version=2015-04-01&Format=JSON",
                      {{"Content-Type", "application/x-www-form-urlencoded"}},
                      "RoleArn=r&OIDCToken=a.b.c&RoleSessionName=my+session");
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->query.size(), 3u);
  EXPECT_EQ(request->form.size(), 3u);
  EXPECT_EQ(*request->param("RoleSessionName"), "my session");
  EXPECT_EQ(*request->param("Format"), "JSON");
}

// Verifies the V3 form takes the action and version from x-acs-* headers.
TEST(ApiRequestTest, V3HeadersNameTheAction) {
  auto request =
      parseApiRequest("POST", "/?SecretName=app",
                      {{"x-acs-action", "GetSecretValue"}, {"X-Acs-Version", "2016-01-20"}}, "");
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->action, "GetSecretValue");
  EXPECT_EQ(request->version, "2016-01-20");
  EXPECT_EQ(request->path, "/");
}

// Verifies broken percent-encoding is an error rather than a guess.
TEST(ApiRequestTest, RejectsBrokenEncoding) {
  EXPECT_FALSE(parseApiRequest("GET", "/?a=%zz", {}, "").ok());
  EXPECT_FALSE(
      parseApiRequest("POST", "/", {{"content-type", "application/x-www-form-urlencoded"}}, "a=%4")
          .ok());
}

// Verifies a body of another content type is not parsed as a form.
TEST(ApiRequestTest, IgnoresNonFormBody) {
  auto request = parseApiRequest("POST", "/", {{"content-type", "application/json"}}, "{\"a\":1}");
  ASSERT_TRUE(request.ok());
  EXPECT_TRUE(request->form.empty());
}

}  // namespace
}  // namespace credsync::emulator
