#include "sidecar/alibaba/response_parsing.h"

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/status_matchers.h"

namespace credsync::alibaba::internal {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

absl::Time utc(int year, int month, int day, int hour, int minute, int second) {
  return absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                         absl::UTCTimeZone());
}

// Verifies well-formed JSON of every kind parses.
TEST(ParseJsonBoundedTest, ParsesWellFormedDocuments) {
  std::optional<nlohmann::json> object = parseJsonBounded(R"({"a":[1,{"b":"c"}]})");
  ASSERT_TRUE(object.has_value());
  EXPECT_EQ((*object)["a"][1]["b"], "c");
  EXPECT_THAT(parseJsonBounded("[]"), Optional(nlohmann::json::array()));
  EXPECT_THAT(parseJsonBounded(" 42 "), Optional(nlohmann::json(42)));
  EXPECT_THAT(parseJsonBounded("null"), Optional(nlohmann::json(nullptr)));
}

// Verifies anything but one well-formed document is nullopt, never an
// exception.
TEST(ParseJsonBoundedTest, RefusesMalformedDocuments) {
  EXPECT_EQ(parseJsonBounded(""), std::nullopt);
  EXPECT_EQ(parseJsonBounded("{"), std::nullopt);
  EXPECT_EQ(parseJsonBounded(R"({"a":1}{"b":2})"), std::nullopt);
  EXPECT_EQ(parseJsonBounded(R"({"a":1} trailing)"), std::nullopt);
  EXPECT_EQ(parseJsonBounded("{'a':1}"), std::nullopt);
  EXPECT_EQ(parseJsonBounded("\"\xff\xfe\""), std::nullopt);  // not UTF-8
  EXPECT_EQ(parseJsonBounded("<Error/>"), std::nullopt);
}

// Verifies the size bound is inclusive and checked before parsing.
TEST(ParseJsonBoundedTest, RefusesOversizeText) {
  const std::string text = R"({"a":"0123456789"})";  // 18 bytes
  EXPECT_TRUE(parseJsonBounded(text, text.size()).has_value());
  EXPECT_EQ(parseJsonBounded(text, text.size() - 1), std::nullopt);
  // The default bound is 1 MiB: a valid string document just over it is refused.
  const std::string huge = absl::StrCat("\"", std::string(kMaxResponseBodyBytes, 'a'), "\"");
  EXPECT_EQ(parseJsonBounded(huge), std::nullopt);
}

// Verifies the depth bound is inclusive, also for a custom bound.
TEST(ParseJsonBoundedTest, RefusesDeepNesting) {
  EXPECT_TRUE(parseJsonBounded(nested(kMaxJsonDepth)).has_value());
  EXPECT_EQ(parseJsonBounded(nested(kMaxJsonDepth + 1)), std::nullopt);
  EXPECT_EQ(parseJsonBounded(nested(100000)), std::nullopt);
  EXPECT_TRUE(parseJsonBounded(R"({"a":{"b":1}})", kMaxResponseBodyBytes, 2).has_value());
  EXPECT_EQ(parseJsonBounded(R"({"a":{"b":[1]}})", kMaxResponseBodyBytes, 2), std::nullopt);
}

// Verifies a JSON object answer is handed back as parsed.
TEST(ParseJsonAnswerTest, ReturnsObject) {
  absl::StatusOr<nlohmann::json> answer =
      parseJsonAnswer("GetSecretValue", R"({"RequestId":"R1","SecretName":"db"})");
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ((*answer)["SecretName"], "db");
}

// Verifies each kind of malformed answer is UNAVAILABLE "<action>: malformed
// answer: <problem>", and the problem names what is wrong.
TEST(ParseJsonAnswerTest, NamesTheProblem) {
  const auto malformed = [](const std::string& problem) {
    return StatusIs(absl::StatusCode::kUnavailable,
                    HasSubstr(absl::StrCat("AssumeRoleWithOIDC: malformed answer: ", problem)));
  };
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", ""), malformed("the body is empty"));
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", " \r\n\t"), malformed("the body is empty"));
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", "<Error><Code>X</Code></Error>"),
              malformed("the body is XML or HTML, not JSON (29 bytes)"));
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", "\n  <html>bad gateway</html>"),
              malformed("the body is XML or HTML, not JSON (27 bytes)"));
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", nested(kMaxJsonDepth + 1)),
              malformed("the body nests deeper than 32 levels"));
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", R"({"Credentials":)"),
              malformed("the body is not valid JSON (15 bytes)"));
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", "[1]"),
              malformed("the body is an array, not a JSON object"));
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", R"("text")"),
              malformed("the body is a string, not a JSON object"));
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", "null"),
              malformed("the body is null, not a JSON object"));
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", "3.5"),
              malformed("the body is a number, not a JSON object"));
  EXPECT_THAT(parseJsonAnswer("AssumeRoleWithOIDC", std::string(kMaxResponseBodyBytes + 1, ' ')),
              malformed("the body of 1048577 bytes exceeds the 1 MiB limit"));
}

// Verifies a malformed answer's message never quotes the body, which may
// hold a secret (a truncated credentials answer).
TEST(ParseJsonAnswerTest, NeverQuotesTheBody) {
  for (const char* body : {R"({"AccessKeySecret":"secret-value-1")", R"(["secret-value-1"])",
                           R"("secret-value-1")", R"(<x>secret-value-1</x>)"}) {
    absl::StatusOr<nlohmann::json> answer = parseJsonAnswer("STS", body);
    EXPECT_THAT(answer, StatusIs(absl::StatusCode::kUnavailable, Not(HasSubstr("secret-value"))))
        << body;
  }
}

// Verifies a valid field is moved out and the document's copy emptied.
TEST(TakeCredentialFieldTest, MovesValueOut) {
  nlohmann::json object = {{"AccessKeySecret", "s3cr3t~!{}"}};
  absl::StatusOr<std::string> value =
      takeCredentialField(object, "Credentials", "AccessKeySecret", 64);
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(*value, "s3cr3t~!{}");
  EXPECT_EQ(object["AccessKeySecret"], "");
}

// Verifies a missing or null field is "<where>.<name> is missing", and a
// value of another type names that type.
TEST(TakeCredentialFieldTest, MissingAndWrongTypes) {
  nlohmann::json object = {{"Null", nullptr},      {"Number", 12},
                           {"Bool", true},         {"Array", nlohmann::json::array({"a"})},
                           {"Object", {{"a", 1}}}, {"Float", 1.5}};
  const auto take = [&](const char* name) {
    return takeCredentialField(object, "Credentials", name, 64);
  };
  EXPECT_THAT(take("Absent"),
              StatusIs(absl::StatusCode::kInvalidArgument, Eq("Credentials.Absent is missing")));
  EXPECT_THAT(take("Null"),
              StatusIs(absl::StatusCode::kInvalidArgument, Eq("Credentials.Null is missing")));
  EXPECT_THAT(take("Number"), StatusIs(absl::StatusCode::kInvalidArgument,
                                       Eq("Credentials.Number is a number, not a string")));
  EXPECT_THAT(take("Float"), StatusIs(absl::StatusCode::kInvalidArgument,
                                      Eq("Credentials.Float is a number, not a string")));
  EXPECT_THAT(take("Bool"), StatusIs(absl::StatusCode::kInvalidArgument,
                                     Eq("Credentials.Bool is a boolean, not a string")));
  EXPECT_THAT(take("Array"), StatusIs(absl::StatusCode::kInvalidArgument,
                                      Eq("Credentials.Array is an array, not a string")));
  EXPECT_THAT(take("Object"), StatusIs(absl::StatusCode::kInvalidArgument,
                                       Eq("Credentials.Object is an object, not a string")));
}

// Verifies empty, overlong and non-printable values are refused without
// quoting them, and the document's copy is wiped either way.
TEST(TakeCredentialFieldTest, RefusesBadValuesWithoutQuotingThem) {
  struct Case {
    std::string value;
    std::string problem;
  };
  const Case cases[] = {
      {"", "Credentials.Token is empty"},
      {std::string(65, 'x'), "Credentials.Token is longer than 64 bytes"},
      {"secret with space", "Credentials.Token has characters other than printable ASCII"},
      {"secret\nline", "Credentials.Token has characters other than printable ASCII"},
      {"secret\x7f", "Credentials.Token has characters other than printable ASCII"},
      {"secret\xc3\xa9", "Credentials.Token has characters other than printable ASCII"},
  };
  for (const Case& c : cases) {
    nlohmann::json object = {{"Token", c.value}};
    EXPECT_THAT(takeCredentialField(object, "Credentials", "Token", 64),
                StatusIs(absl::StatusCode::kInvalidArgument, Eq(c.problem)))
        << c.value;
    EXPECT_EQ(object["Token"], "") << c.value;
  }
  nlohmann::json exact = {{"Token", std::string(64, 'x')}};
  EXPECT_THAT(takeCredentialField(exact, "Credentials", "Token", 64), IsOk());
}

// Verifies the shared message shape of a malformed answer.
TEST(MalformedAnswerTest, IsUnavailableWithActionAndProblem) {
  EXPECT_THAT(malformedAnswer("GetSecretValue", "SecretData is missing"),
              StatusIs(absl::StatusCode::kUnavailable,
                       Eq("GetSecretValue: malformed answer: SecretData is missing")));
}

// Verifies both forms the official SDKs accept parse to the right instant.
TEST(ParseUtcTimestampTest, ParsesBothForms) {
  EXPECT_THAT(parseUtcTimestamp("2026-01-01T00:45:00Z"), Optional(utc(2026, 1, 1, 0, 45, 0)));
  EXPECT_THAT(parseUtcTimestamp("2024-02-29T23:59:59Z"), Optional(utc(2024, 2, 29, 23, 59, 59)));
  EXPECT_THAT(parseUtcTimestamp("2026-07-15T08:30:05.250Z"),
              Optional(utc(2026, 7, 15, 8, 30, 5) + absl::Milliseconds(250)));
  EXPECT_THAT(parseUtcTimestamp("1970-01-01T00:00:00.000Z"), Optional(absl::UnixEpoch()));
}

// Verifies other layouts, zones and precisions are refused.
TEST(ParseUtcTimestampTest, RefusesOtherLayouts) {
  for (const char* text : {
           "",
           "2026-01-01",
           "2026-01-01T00:00:00",        // no zone
           "2026-01-01T00:00:00z",       // lower-case zone
           "2026-01-01T00:00:00+08:00",  // offset
           "2026-01-01 00:00:00Z",       // space for T
           "2026/01/01T00:00:00Z",
           "2026-01-01T00-00-00Z",
           "2026-01-01T00:00:00.5Z",  // one fractional digit
           "2026-01-01T00:00:00.123456Z",
           "2026-01-01T00:00:00,123Z",
           "2026-01-01T00:00:00.12aZ",
           "+026-01-01T00:00:00Z",
           "2026-0a-01T00:00:00Z",
           "2026-01-01T 0:00:00Z",
           " 2026-01-01T00:00:00Z",
       }) {
    EXPECT_EQ(parseUtcTimestamp(text), std::nullopt) << text;
  }
}

// Verifies out-of-range fields are refused rather than normalized.
TEST(ParseUtcTimestampTest, RefusesOutOfRangeFields) {
  for (const char* text : {
           "2026-13-01T00:00:00Z",
           "2026-00-10T00:00:00Z",
           "2026-02-30T00:00:00Z",
           "2025-02-29T00:00:00Z",  // not a leap year
           "2026-04-31T00:00:00Z",
           "2026-01-00T00:00:00Z",
           "2026-01-01T24:00:00Z",
           "2026-01-01T00:60:00Z",
           "2026-01-01T00:00:60Z",
       }) {
    EXPECT_EQ(parseUtcTimestamp(text), std::nullopt) << text;
  }
}

// Verifies only bytes 0x21-0x7E count as visible ASCII.
TEST(IsVisibleAsciiTest, AcceptsOnlyPrintableNonSpace) {
  EXPECT_TRUE(isVisibleAscii("STS.NUx/+=~!"));
  EXPECT_TRUE(isVisibleAscii(std::string(1, '\x21')));
  EXPECT_TRUE(isVisibleAscii(std::string(1, '\x7e')));
  EXPECT_TRUE(isVisibleAscii(""));  // callers check emptiness themselves
  EXPECT_FALSE(isVisibleAscii(" "));
  EXPECT_FALSE(isVisibleAscii("a\tb"));
  EXPECT_FALSE(isVisibleAscii(std::string("a\0b", 3)));
  EXPECT_FALSE(isVisibleAscii("\x7f"));
  EXPECT_FALSE(isVisibleAscii("\x80"));
  EXPECT_FALSE(isVisibleAscii("caf\xc3\xa9"));
}

// Verifies every string, at any depth, is emptied and nothing else changes.
TEST(WipeJsonStringsTest, EmptiesEveryString) {
  nlohmann::json document = {
      {"Secret", "s3cr3t"},
      {"Count", 3},
      {"Nested", {{"Token", "t0k3n"}, {"List", {"a", 1, true, nullptr, {{"Deep", "d33p"}}}}}},
  };
  wipeJsonStrings(document);
  const nlohmann::json expected = {
      {"Secret", ""},
      {"Count", 3},
      {"Nested", {{"Token", ""}, {"List", {"", 1, true, nullptr, {{"Deep", ""}}}}}},
  };
  EXPECT_EQ(document, expected);
}

// Verifies JsonWiper wipes its document when it goes out of scope, and not
// before.
TEST(JsonWiperTest, WipesAtScopeExit) {
  nlohmann::json document = {{"Secret", "s3cr3t"}};
  {
    const JsonWiper wiper(document);
    EXPECT_EQ(document["Secret"], "s3cr3t");
  }
  EXPECT_EQ(document["Secret"], "");
}

// Verifies every JSON kind has its name with the article the messages use.
TEST(JsonTypeNameTest, NamesEveryKind) {
  EXPECT_STREQ(jsonTypeName(nlohmann::json(nullptr)), "null");
  EXPECT_STREQ(jsonTypeName(nlohmann::json::object()), "an object");
  EXPECT_STREQ(jsonTypeName(nlohmann::json::array()), "an array");
  EXPECT_STREQ(jsonTypeName(nlohmann::json("x")), "a string");
  EXPECT_STREQ(jsonTypeName(nlohmann::json(false)), "a boolean");
  EXPECT_STREQ(jsonTypeName(nlohmann::json(-1)), "a number");
  EXPECT_STREQ(jsonTypeName(nlohmann::json(1u)), "a number");
  EXPECT_STREQ(jsonTypeName(nlohmann::json(0.5)), "a number");
  EXPECT_STREQ(jsonTypeName(nlohmann::json::binary({1, 2})), "binary data");
  EXPECT_STREQ(jsonTypeName(nlohmann::json(nlohmann::json::value_t::discarded)), "invalid");
}

}  // namespace
}  // namespace credsync::alibaba::internal
