#include "sidecar/common/logging.h"

#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/secret.h"
#include "tests/common/status_matchers.h"

namespace credsync::log {
namespace {

using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::SizeIs;

// Secrets must not be loggable: log::info("x", {{"k", secret}}) must not compile.
static_assert(!std::is_constructible_v<Value, const SecretString&>);
static_assert(!std::is_constructible_v<Value, SecretString&&>);
static_assert(!std::is_convertible_v<const SecretString&, Value>);

// Captures every line through setSinkForTest and restores the logger's defaults after.
class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setLevel(Level::kInfo);
    setComponent("credsync");
    setSinkForTest([this](absl::string_view line) { lines_.emplace_back(line); });
  }
  void TearDown() override {
    setSinkForTest(nullptr);
    setLevel(Level::kInfo);
    setComponent("credsync");
  }

  nlohmann::json onlyLine() {
    EXPECT_THAT(lines_, SizeIs(1));
    if (lines_.empty()) return nlohmann::json::object();
    return nlohmann::json::parse(lines_.front());
  }

  std::vector<std::string> lines_;
};

// Verifies one JSON object per line with time, level, component, msg and fields.
TEST_F(LoggingTest, WritesOneJsonObjectPerLine) {
  info("credentials refreshed", {{"profile", "default"},
                                 {"attempt", 3},
                                 {"expires_in_seconds", 3599L},
                                 {"ratio", 0.5},
                                 {"degraded", false},
                                 {"name", std::string("kms")}});
  ASSERT_THAT(lines_, SizeIs(1));
  EXPECT_THAT(lines_[0], Not(HasSubstr("\n")));
  const nlohmann::json line = onlyLine();
  EXPECT_THAT(line["time"].get<std::string>(),
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"));
  EXPECT_EQ(line["level"], "info");
  EXPECT_EQ(line["component"], "credsync");
  EXPECT_EQ(line["msg"], "credentials refreshed");
  EXPECT_EQ(line["profile"], "default");
  EXPECT_EQ(line["attempt"], 3);
  EXPECT_EQ(line["expires_in_seconds"], 3599);
  EXPECT_EQ(line["ratio"], 0.5);
  EXPECT_EQ(line["degraded"], false);
  EXPECT_EQ(line["name"], "kms");
}

// Verifies that a Status field is written as its text form.
TEST_F(LoggingTest, WritesStatusAsText) {
  warn("fetch failed", {{"error", absl::UnavailableError("connection reset")}});
  const nlohmann::json line = onlyLine();
  EXPECT_EQ(line["level"], "warn");
  EXPECT_THAT(line["error"].get<std::string>(), HasSubstr("connection reset"));
  EXPECT_THAT(line["error"].get<std::string>(), HasSubstr("UNAVAILABLE"));
}

// Verifies each level's name in the output.
TEST_F(LoggingTest, WritesLevelNames) {
  setLevel(Level::kDebug);
  debug("d");
  info("i");
  warn("w");
  error("e");
  ASSERT_THAT(lines_, SizeIs(4));
  EXPECT_EQ(nlohmann::json::parse(lines_[0])["level"], "debug");
  EXPECT_EQ(nlohmann::json::parse(lines_[1])["level"], "info");
  EXPECT_EQ(nlohmann::json::parse(lines_[2])["level"], "warn");
  EXPECT_EQ(nlohmann::json::parse(lines_[3])["level"], "error");
}

// Verifies that lines below the configured level are dropped.
TEST_F(LoggingTest, FiltersBelowLevel) {
  setLevel(Level::kWarn);
  debug("dropped");
  info("dropped");
  warn("kept");
  error("kept too");
  ASSERT_THAT(lines_, SizeIs(2));
  EXPECT_EQ(nlohmann::json::parse(lines_[0])["msg"], "kept");
  EXPECT_EQ(nlohmann::json::parse(lines_[1])["msg"], "kept too");
}

// Verifies that the default level is info: debug lines are dropped.
TEST_F(LoggingTest, DefaultLevelDropsDebug) {
  debug("dropped");
  EXPECT_THAT(lines_, IsEmpty());
}

// Verifies that quotes, backslashes, newlines and control bytes are escaped.
TEST_F(LoggingTest, EscapesQuotesAndNewlines) {
  const std::string nasty = "say \"hi\"\\ then\nnew line\r\tand \x01";
  info(nasty, {{"body", nasty}});
  ASSERT_THAT(lines_, SizeIs(1));
  EXPECT_THAT(lines_[0], Not(HasSubstr("\n")));
  EXPECT_THAT(lines_[0], Not(HasSubstr("\r")));
  const nlohmann::json line = onlyLine();
  EXPECT_EQ(line["msg"], nasty);
  EXPECT_EQ(line["body"], nasty);
}

// Verifies that invalid UTF-8 is replaced and the line stays valid JSON.
TEST_F(LoggingTest, ReplacesInvalidUtf8) {
  info("bad \xff\xfe bytes", {{"field", "\xc3("}, {"fine", "中文"}});
  ASSERT_THAT(lines_, SizeIs(1));
  nlohmann::json line;
  ASSERT_NO_THROW(line = nlohmann::json::parse(lines_[0]));
  EXPECT_EQ(line["msg"], "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes");  // U+FFFD twice
  EXPECT_THAT(line["field"].get<std::string>(), HasSubstr("\xEF\xBF\xBD"));
  EXPECT_EQ(line["fine"], "中文");
}

// Verifies that setComponent changes the component of later lines.
TEST_F(LoggingTest, SetComponentNamesLines) {
  setComponent("emulator");
  info("started");
  EXPECT_EQ(onlyLine()["component"], "emulator");
}

// Verifies that setSinkForTest(nullptr) sends lines back to stderr.
TEST_F(LoggingTest, NullSinkRestoresStderr) {
  setSinkForTest(nullptr);
  ::testing::internal::CaptureStderr();
  info("to stderr", {{"k", "v"}});
  const std::string captured = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(lines_, IsEmpty());
  EXPECT_THAT(captured, HasSubstr("\"msg\":\"to stderr\""));
  EXPECT_EQ(nlohmann::json::parse(captured)["k"], "v");
}

// Verifies level names parse case-insensitively and unknown names are rejected.
TEST(LogLevelTest, ParsesNames) {
  EXPECT_EQ(*parseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*parseLevel("INFO"), Level::kInfo);
  EXPECT_EQ(*parseLevel("Warn"), Level::kWarn);
  EXPECT_EQ(*parseLevel("warning"), Level::kWarn);
  EXPECT_EQ(*parseLevel("error"), Level::kError);
  EXPECT_THAT(parseLevel("verbose"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(parseLevel(""), StatusIs(absl::StatusCode::kInvalidArgument));
  for (const Level level : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    EXPECT_EQ(*parseLevel(levelName(level)), level);
  }
}

}  // namespace
}  // namespace credsync::log
