#include "sidecar/output/credentials_ini.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/name_rules.h"
#include "tests/common/status_matchers.h"

namespace credsync::output {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

IniProfile profile(std::string name, std::string id, std::string secret) {
  return IniProfile{std::move(name), std::move(id), SecretString(std::move(secret))};
}

// Verifies the exact text of a single profile: the five lines every SDK needs.
TEST(CredentialsIniTest, RendersOneProfileExactly) {
  absl::StatusOr<SecretString> ini = renderCredentialsIni(
      {profile("default", "LTAI5tExampleKeyId000000", "ExampleSecret0123456789abcdefAB")});
  ASSERT_THAT(ini, IsOk());
  EXPECT_EQ(ini->reveal(),
            "[default]\n"
            "enable = true\n"
            "type = access_key\n"
            "access_key_id = LTAI5tExampleKeyId000000\n"
            "access_key_secret = ExampleSecret0123456789abcdefAB\n");
}

// Verifies that profiles keep the given order and are separated by one blank line.
TEST(CredentialsIniTest, RendersProfilesInOrderSeparatedByBlankLine) {
  absl::StatusOr<SecretString> ini = renderCredentialsIni({
      profile("default", "LTAI5tDefault", "secretDefault"),
      profile("billing-prod_2", "LTAI5tBilling", "secretB+/2"),
      profile("Zeta", "LTAI5tZeta", "secretZeta"),
  });
  ASSERT_THAT(ini, IsOk());
  EXPECT_EQ(ini->reveal(),
            "[default]\n"
            "enable = true\n"
            "type = access_key\n"
            "access_key_id = LTAI5tDefault\n"
            "access_key_secret = secretDefault\n"
            "\n"
            "[billing-prod_2]\n"
            "enable = true\n"
            "type = access_key\n"
            "access_key_id = LTAI5tBilling\n"
            "access_key_secret = secretB+/2\n"
            "\n"
            "[Zeta]\n"
            "enable = true\n"
            "type = access_key\n"
            "access_key_id = LTAI5tZeta\n"
            "access_key_secret = secretZeta\n");
}

// Verifies that the rendered file prints as *** (it holds secrets).
TEST(CredentialsIniTest, ResultIsASecret) {
  absl::StatusOr<SecretString> ini = renderCredentialsIni({profile("default", "id", "hunter2")});
  ASSERT_THAT(ini, IsOk());
  EXPECT_EQ(::testing::PrintToString(*ini), "***");
}

// Verifies that punctuation no parser treats specially passes through unchanged.
TEST(CredentialsIniTest, AcceptsOrdinaryPunctuationAndLiteralLookalikes) {
  const std::string secret = "a+b/c:d!e$f@g{h}i(j)k<l>m?n,o&p*q^r~s|t.u_v-w";
  for (const std::string& value :
       {secret, std::string("True"), std::string("nulls"), std::string("x y"), std::string("0")}) {
    SCOPED_TRACE(value);
    absl::StatusOr<SecretString> ini = renderCredentialsIni({profile("p", value, value)});
    ASSERT_THAT(ini, IsOk());
    EXPECT_THAT(ini->reveal(), HasSubstr(absl::StrCat("access_key_secret = ", value, "\n")));
  }
}

// Verifies that an empty profile list is refused rather than publishing an empty file.
TEST(CredentialsIniTest, RefusesNoProfiles) {
  EXPECT_THAT(renderCredentialsIni({}), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Verifies every class of refused profile name, each named in the message.
TEST(CredentialsIniTest, RefusesNamesParsersReadDifferently) {
  const std::vector<std::string> names = {
      "",    "a.b",       "a b",      "a/b",         "[x]",     "x]",        "a=b", "a;b",
      "a#b", "tab\there", "nl\nhere", "caf\xc3\xa9", "DEFAULT", "__proto__", "a%b",
  };
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    EXPECT_THAT(validateIniProfileName(name), StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(renderCredentialsIni({profile("ok", "id", "secret"), profile(name, "id", "s")}),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("profile #2")));
  }
  for (const char* name : {"default", "Default", "prod", "a-b_C9", "DEFAULTS", "__proto"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(validateIniProfileName(name), IsOk());
  }
}

// Verifies that a profile name given twice is refused.
TEST(CredentialsIniTest, RefusesDuplicateNames) {
  EXPECT_THAT(renderCredentialsIni({profile("default", "id1", "s1"), profile("prod", "id2", "s2"),
                                    profile("default", "id3", "s3")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("\"default\""), HasSubstr("more than once"))));
}

struct BadValue {
  std::string value;
  std::string problem;  // a substring of the message naming the class
};

std::vector<BadValue> badValues() {
  std::vector<BadValue> values = {
      {"", "is empty"},
      {" Zq9LeadingSpace", "whitespace"},
      {"Zq9TrailingSpace ", "whitespace"},
      {"Zq9\tTab", "control character"},
      {"Zq9\nNewline", "control character"},
      {"Zq9\rReturn", "control character"},
      {std::string("Zq9\0Nul", 7), "control character"},
      {"Zq9\x7f"
       "Delete",
       "control character"},
      {"Zq9\xc3\xa9"
       "Accent",
       "non-ASCII"},
      {"Zq9\xa0"
       "NoBreakSpace",
       "non-ASCII"},
      {"true", "Node"},
      {"false", "Node"},
      {"null", "Node"},
  };
  for (const char special : std::string("#;%[]=\"'\\`")) {
    values.push_back({absl::StrCat("Zq9", std::string(1, special), "Special"), "quoting"});
  }
  values.push_back({"\"Zq9Quoted\"", "quoting"});
  values.push_back({"`Zq9Backtick`", "quoting"});
  return values;
}

// Verifies every refused value class, in both the id and the secret, and that
// the message names the profile and field but never contains the value.
TEST(CredentialsIniTest, RefusesValuesParsersReadDifferently) {
  for (const BadValue& bad : badValues()) {
    SCOPED_TRACE(::testing::PrintToString(bad.value));
    absl::StatusOr<SecretString> as_secret =
        renderCredentialsIni({profile("prod-1", "LTAI5tGoodId", bad.value)});
    EXPECT_THAT(as_secret, StatusIs(absl::StatusCode::kInvalidArgument,
                                    AllOf(HasSubstr("\"prod-1\""), HasSubstr("access_key_secret"),
                                          HasSubstr(bad.problem))));
    absl::StatusOr<SecretString> as_id =
        renderCredentialsIni({profile("prod-1", bad.value, "GoodSecret")});
    EXPECT_THAT(as_id, StatusIs(absl::StatusCode::kInvalidArgument,
                                AllOf(HasSubstr("\"prod-1\""), HasSubstr("access_key_id"),
                                      HasSubstr(bad.problem))));
    // The literals (true, ...) are named in the message as a class, so only
    // the distinctive values can be checked for absence.
    if (absl::StrContains(bad.value, "Zq9")) {
      EXPECT_THAT(std::string(as_secret.status().message()), Not(HasSubstr(bad.value)));
      EXPECT_THAT(std::string(as_id.status().message()), Not(HasSubstr(bad.value)));
    }
  }
}

// Verifies with Python's own configparser (stdlib, default interpolation)
// that both profiles of a rendered file read back with every value unchanged.
TEST(CredentialsIniTest, PythonConfigParserReadsValuesUnchanged) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 not installed";
  }
  absl::StatusOr<SecretString> ini = renderCredentialsIni({
      profile("default", "LTAI5tAAAAAAAAAAAAAAAAAA", "s3cr3t+/:!$@{x}(y)<z>?,&*^~|.-_"),
      profile("billing", "LTAI5tBBBBBBBBBBBBBBBBBB", "Another Secret With Spaces Inside"),
  });
  ASSERT_THAT(ini, IsOk());

  std::string dir = ::testing::TempDir() + "credentials_ini_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string ini_path = dir + "/credentials.ini";
  const std::string script_path = dir + "/read.py";
  std::ofstream(ini_path, std::ios::binary) << ini->reveal();
  std::ofstream(script_path) << "import configparser, sys\n"
                                "parser = configparser.ConfigParser()\n"
                                "assert parser.read(sys.argv[1]) == [sys.argv[1]]\n"
                                "for section in parser.sections():\n"
                                "    for key in parser[section]:\n"
                                "        print(section, key, parser[section][key], sep='\\t')\n";

  FILE* pipe = popen(absl::StrCat("python3 ", script_path, " ", ini_path).c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (size_t count = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, count);
  const int status = pclose(pipe);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_EQ(output,
            "default\tenable\ttrue\n"
            "default\ttype\taccess_key\n"
            "default\taccess_key_id\tLTAI5tAAAAAAAAAAAAAAAAAA\n"
            "default\taccess_key_secret\ts3cr3t+/:!$@{x}(y)<z>?,&*^~|.-_\n"
            "billing\tenable\ttrue\n"
            "billing\ttype\taccess_key\n"
            "billing\taccess_key_id\tLTAI5tBBBBBBBBBBBBBBBBBB\n"
            "billing\taccess_key_secret\tAnother Secret With Spaces Inside\n");
}

// Verifies the reader finds each profile's id in what the writer renders.
TEST(CredentialsIniTest, ReadsBackTheIdOfEachRenderedProfile) {
  absl::StatusOr<SecretString> ini =
      renderCredentialsIni({profile("default", "LTAI5tFirst", "SecretOne"),
                            profile("reports", "LTAI5tSecond", "SecretTwo")});
  ASSERT_THAT(ini, IsOk());
  EXPECT_EQ(readIniAccessKeyId(ini->reveal(), "default").value(), "LTAI5tFirst");
  EXPECT_EQ(readIniAccessKeyId(ini->reveal(), "reports").value(), "LTAI5tSecond");
}

// Verifies the reader takes what SDK parsers take: comments, indentation,
// no spaces around '=', CRLF line ends, other keys and sections around it.
TEST(CredentialsIniTest, ReadsTheIdAsSdkParsersDo) {
  const std::string text =
      "# written by hand\r\n"
      "[other]\r\n"
      "access_key_id = LTAI5tOther\r\n"
      "\r\n"
      "  [default]  \r\n"
      "; a comment\r\n"
      "type=access_key\r\n"
      "  access_key_id=LTAI5tMine  \r\n"
      "access_key_secret = s\r\n";
  EXPECT_EQ(readIniAccessKeyId(text, "default").value(), "LTAI5tMine");
  EXPECT_EQ(readIniAccessKeyId(text, "other").value(), "LTAI5tOther");
}

// Verifies a missing section or key is NOT_FOUND and a repeated one
// INVALID_ARGUMENT, naming the profile and never the file's content.
TEST(CredentialsIniTest, ReadingRefusesMissingAndRepeatedEntries) {
  const std::string secret = "TopSecretValue0123456789";
  EXPECT_THAT(readIniAccessKeyId("[a]\naccess_key_secret = " + secret + "\n", "b"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("profile \"b\": no such section")));
  EXPECT_THAT(readIniAccessKeyId("[a]\naccess_key_secret = " + secret + "\n", "a"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no access_key_id")));
  EXPECT_THAT(readIniAccessKeyId("[a]\naccess_key_id =\n", "a"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(readIniAccessKeyId("[a]\naccess_key_id = x\naccess_key_id = y\n", "a"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("appears twice")));
  EXPECT_THAT(readIniAccessKeyId("[a]\naccess_key_id = x\n[a]\naccess_key_id = y\n", "a"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("section appears twice")));
  absl::StatusOr<std::string> missing =
      readIniAccessKeyId("[a]\naccess_key_secret = " + secret + "\n", "a");
  EXPECT_THAT(std::string(missing.status().message()), Not(HasSubstr(secret)));
}

}  // namespace
}  // namespace credsync::output
