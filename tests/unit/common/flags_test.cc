#include "sidecar/common/flags.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/status_matchers.h"

namespace credsync {
namespace {

using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;

const std::vector<FlagSpec> kSpecs = {{"config", true}, {"once", false}};

// Verifies both value forms, boolean flags and positional arguments.
TEST(FlagsTest, ParsesForms) {
  auto parsed = parseFlags({"--config", "a.yaml", "--once", "extra"}, kSpecs);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->values.at("config"), "a.yaml");
  EXPECT_EQ(parsed->values.at("once"), "true");
  EXPECT_EQ(parsed->positional, std::vector<std::string>{"extra"});
  auto inline_form = parseFlags({"--config=b.yaml"}, kSpecs);
  ASSERT_TRUE(inline_form.ok());
  EXPECT_EQ(inline_form->values.at("config"), "b.yaml");
}

// Verifies each kind of bad flag names the flag.
TEST(FlagsTest, RejectsBadFlags) {
  EXPECT_THAT(parseFlags({"--nope"}, kSpecs),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--nope: unknown flag")));
  EXPECT_THAT(parseFlags({"--config"}, kSpecs),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--config: needs a value")));
  EXPECT_THAT(parseFlags({"--once=yes"}, kSpecs),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--once: takes no value")));
  EXPECT_THAT(parseFlags({"--config", "a", "--config", "b"}, kSpecs),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("more than once")));
}

}  // namespace
}  // namespace credsync
