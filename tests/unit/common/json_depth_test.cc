#include "sidecar/common/json_depth.h"

#include <string>

#include "gtest/gtest.h"

namespace credsync {
namespace {

// Verifies scalars have depth 0 and each array or object level counts one,
// the bound being inclusive.
TEST(JsonDepthTest, CountsNestingLevels) {
  EXPECT_TRUE(jsonDepthWithin("", 0));
  EXPECT_TRUE(jsonDepthWithin("42", 0));
  EXPECT_TRUE(jsonDepthWithin(R"("text")", 0));
  EXPECT_FALSE(jsonDepthWithin("[]", 0));
  EXPECT_TRUE(jsonDepthWithin("[]", 1));
  EXPECT_TRUE(jsonDepthWithin(R"({"a":[1,2],"b":{"c":3}})", 2));
  EXPECT_FALSE(jsonDepthWithin(R"({"a":[1,2],"b":{"c":[3]}})", 2));
  EXPECT_TRUE(jsonDepthWithin(R"({"a":[1,2],"b":{"c":[3]}})", 3));
}

// Verifies siblings do not add up: depth is the deepest path, not a count.
TEST(JsonDepthTest, SiblingsDoNotAccumulate) {
  std::string siblings;
  for (int i = 0; i < 1000; ++i) siblings += "[[]],";
  EXPECT_TRUE(jsonDepthWithin("[" + siblings + "[]]", 3));
  EXPECT_FALSE(jsonDepthWithin("[" + siblings + "[]]", 2));
}

// Verifies brackets inside strings do not count, including after escaped
// quotes and escaped backslashes.
TEST(JsonDepthTest, IgnoresBracketsInStrings) {
  EXPECT_TRUE(jsonDepthWithin(R"({"a":"[[[[{{{{"})", 1));
  EXPECT_TRUE(jsonDepthWithin(R"({"a":"say \"[[[\" twice"})", 1));
  // The string ends after \\ : the brackets that follow are real.
  EXPECT_FALSE(jsonDepthWithin(R"({"a":"back\\"}[[[)", 1));
  EXPECT_TRUE(jsonDepthWithin(R"({"a":"back\\"}[[[)", 4));
  // An unterminated string swallows the rest.
  EXPECT_TRUE(jsonDepthWithin(R"(["open [[[[[)", 1));
}

// Verifies extra closers never drive the depth below zero, so they cannot
// buy room for deeper nesting later.
TEST(JsonDepthTest, UnbalancedClosersDoNotBuyDepth) {
  EXPECT_FALSE(jsonDepthWithin("]]]]]]]][[[", 2));
  EXPECT_TRUE(jsonDepthWithin("]]]]]]]][[", 2));
  EXPECT_FALSE(jsonDepthWithin("}}}}{{{", 2));
}

// Verifies hostile nesting is refused, arrays and objects mixed.
TEST(JsonDepthTest, RefusesHostileNesting) {
  EXPECT_FALSE(jsonDepthWithin(std::string(1000000, '['), 32));
  std::string mixed;
  for (int i = 0; i < 20; ++i) mixed += R"({"a":[)";
  EXPECT_FALSE(jsonDepthWithin(mixed, 39));
  EXPECT_TRUE(jsonDepthWithin(mixed, 40));
}

// Verifies jsonShapeWithin counts objects, arrays and commas outside
// strings, the bound inclusive, and still bounds depth.
TEST(JsonDepthTest, ShapeCountsNodes) {
  EXPECT_TRUE(jsonShapeWithin("42", 1, 0));
  EXPECT_TRUE(jsonShapeWithin(R"({"a":[1,2]})", 2, 3));  // { [ ,
  EXPECT_FALSE(jsonShapeWithin(R"({"a":[1,2]})", 2, 2));
  EXPECT_TRUE(jsonShapeWithin(R"({"a":"{[,,,]}"})", 1, 1));  // inside a string
  EXPECT_FALSE(jsonShapeWithin("[[[]]]", 2, 100));
  std::string empties = "[";
  for (int i = 0; i < 1000; ++i) empties += "{},";
  empties += "{}]";
  EXPECT_TRUE(jsonShapeWithin(empties, 2, 2002));
  EXPECT_FALSE(jsonShapeWithin(empties, 2, 2001));
}

}  // namespace
}  // namespace credsync
