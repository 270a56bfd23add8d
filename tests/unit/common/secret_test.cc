#include "sidecar/common/secret.h"

#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace credsync {
namespace {

// Verifies that streaming a secret prints "***", never the value.
TEST(SecretStringTest, PrintsAsterisks) {
  const SecretString secret("hunter2");
  std::ostringstream out;
  out << "token=" << secret;
  EXPECT_EQ(out.str(), "token=***");
  // GoogleTest's own printer (used in failure messages) goes through operator<< too.
  EXPECT_EQ(::testing::PrintToString(secret), "***");
}

// Verifies reveal(), size() and empty() on a value and on a default instance.
TEST(SecretStringTest, RevealsValueOnlyOnRequest) {
  const SecretString secret("hunter2");
  EXPECT_EQ(secret.reveal(), "hunter2");
  EXPECT_EQ(secret.size(), 7u);
  EXPECT_FALSE(secret.empty());

  const SecretString none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(none.reveal(), "");
}

// Verifies equals() and operator== compare whole values.
TEST(SecretStringTest, EqualsComparesWholeValue) {
  const SecretString secret("hunter2");
  EXPECT_TRUE(secret.equals("hunter2"));
  EXPECT_FALSE(secret.equals("hunter3"));
  EXPECT_FALSE(secret.equals("hunter"));
  EXPECT_FALSE(secret.equals("hunter22"));
  EXPECT_FALSE(secret.equals(""));
  EXPECT_TRUE(SecretString().equals(""));
  EXPECT_TRUE(secret == SecretString("hunter2"));
  EXPECT_FALSE(secret == SecretString("other"));
}

// Verifies that copies hold the same value independently of the original.
TEST(SecretStringTest, CopiesAreIndependent) {
  SecretString original("hunter2");
  SecretString copy(original);
  EXPECT_EQ(copy.reveal(), "hunter2");
  EXPECT_EQ(original.reveal(), "hunter2");

  SecretString assigned("previous value that is long enough to live on the heap");
  assigned = original;
  EXPECT_EQ(assigned.reveal(), "hunter2");
  EXPECT_EQ(original.reveal(), "hunter2");

  original = SecretString("changed");
  EXPECT_EQ(copy.reveal(), "hunter2");
  EXPECT_EQ(assigned.reveal(), "hunter2");
}

// Verifies that self-assignment keeps the value.
TEST(SecretStringTest, SelfAssignmentKeepsValue) {
  SecretString secret("hunter2");
  SecretString& alias = secret;
  secret = alias;
  EXPECT_EQ(secret.reveal(), "hunter2");
  secret = std::move(alias);
  EXPECT_EQ(secret.reveal(), "hunter2");
}

// Verifies that move construction transfers the value and leaves the source empty.
TEST(SecretStringTest, MoveConstructionEmptiesSource) {
  for (const std::string& value : {std::string("short"), std::string(100, 'x')}) {
    SecretString source(value);
    SecretString target(std::move(source));
    EXPECT_EQ(target.reveal(), value);
    EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): the contract under test.
  }
}

// Verifies that move assignment transfers the value and leaves the source empty.
TEST(SecretStringTest, MoveAssignmentEmptiesSource) {
  for (const std::string& value : {std::string("short"), std::string(100, 'x')}) {
    SecretString source(value);
    SecretString target("old value");
    target = std::move(source);
    EXPECT_EQ(target.reveal(), value);
    EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): the contract under test.
  }
}

// Verifies that the type cannot be built implicitly from a plain string.
TEST(SecretStringTest, ConstructionFromStringIsExplicit) {
  static_assert(std::is_constructible_v<SecretString, std::string>);
  static_assert(!std::is_convertible_v<std::string, SecretString>);
  static_assert(std::is_nothrow_move_constructible_v<SecretString>);
  static_assert(std::is_nothrow_move_assignable_v<SecretString>);
}

// Verifies that wipeString clears short (inline) and long (heap) strings.
TEST(SecretStringTest, WipeStringClearsValue) {
  for (std::string value : {std::string("short"), std::string(100, 'x')}) {
    wipeString(value);
    EXPECT_TRUE(value.empty());
  }
  std::string empty;
  wipeString(empty);
  EXPECT_TRUE(empty.empty());
}

}  // namespace
}  // namespace credsync
