#include "sidecar/http/client.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace credsync::http {
namespace {

using ::testing::Optional;

// Verifies header() matches names case-insensitively and returns the first of
// repeated headers.
TEST(ResponseTest, HeaderLookupIsCaseInsensitiveAndFirstWins) {
  Response response;
  response.headers = {{"Content-Type", "application/json"},
                      {"x-acs-request-id", "first"},
                      {"X-Acs-Request-Id", "second"}};

  EXPECT_THAT(response.header("content-type"), Optional(std::string("application/json")));
  EXPECT_THAT(response.header("CONTENT-TYPE"), Optional(std::string("application/json")));
  EXPECT_THAT(response.header("X-ACS-REQUEST-ID"), Optional(std::string("first")));
}

// Verifies a missing header is nullopt, and a header whose name merely starts
// with the wanted name does not match.
TEST(ResponseTest, MissingHeaderIsNullopt) {
  Response response;
  response.headers = {{"Content-Length", "3"}};

  EXPECT_EQ(response.header("Content"), std::nullopt);
  EXPECT_EQ(response.header("Content-Length-Extra"), std::nullopt);
  EXPECT_EQ(Response().header("Content-Length"), std::nullopt);
}

}  // namespace
}  // namespace credsync::http
