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

}  // namespace
}  // namespace credsync
