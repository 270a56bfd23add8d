#include "sidecar/common/name_rules.h"

#include <string>

#include "gtest/gtest.h"

namespace credsync {
namespace {

// Verifies role-name validation.
TEST(IsValidEcsRoleNameTest, Accepts) {
  EXPECT_TRUE(isValidEcsRoleName("EcsRamRole-1.a_b"));
  EXPECT_FALSE(isValidEcsRoleName(""));
  EXPECT_FALSE(isValidEcsRoleName("a/b"));
  EXPECT_FALSE(isValidEcsRoleName(std::string(65, 'a')));
}

// Verifies what counts as this machine's loopback: only literal addresses
// and "localhost", never a name DNS could point elsewhere.
TEST(IsLoopbackHostTest, OnlyLiteralLoopback) {
  for (const char* host :
       {"127.0.0.1", "127.255.255.254", "127.1.2.3", "localhost", "LocalHost", "::1", "[::1]"}) {
    EXPECT_TRUE(isLoopbackHost(host)) << host;
  }
  for (const char* host : {"",
                           "128.0.0.1",
                           "10.0.0.1",
                           "0.0.0.0",
                           "127.0.0",
                           "127.0.0.1.5",
                           "127.0.0.1.",
                           "0177.0.0.1",
                           "127.000.0.1",
                           "127.0.0.256",
                           "127.0.0.-1",
                           "127.0.0.1a",
                           "localhost.",
                           "localhost.evil",
                           "127.0.0.1.nip.io",
                           "[::2]",
                           "::",
                           "[::1",
                           "evil.example",
                           "169.254.100.200"}) {
    EXPECT_FALSE(isLoopbackHost(host)) << host;
  }
}

// Verifies the host of an authority, with and without a port.
TEST(AuthorityHostTest, DropsThePort) {
  EXPECT_EQ(authorityHost("127.0.0.1:8190"), "127.0.0.1");
  EXPECT_EQ(authorityHost("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(authorityHost("[::1]:8190"), "[::1]");
  EXPECT_EQ(authorityHost("[::1]"), "[::1]");
  EXPECT_EQ(authorityHost("localhost:1"), "localhost");
  EXPECT_EQ(authorityHost(""), "");
}

}  // namespace
}  // namespace credsync
