#include "sidecar/server/pod_token.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

namespace credsync::server {
namespace {

using ::credsync::testing::writeFile;

using ::credsync::testing::IsOk;
using ::credsync::testing::readFile;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

struct stat statOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info;
}

class PodTokenTest : public ::testing::Test {
 protected:
  absl::StatusOr<SecretString> load(const std::string& token_file) {
    return loadOrCreatePodToken(token_file, dir_.file("generated"), 0640, std::nullopt);
  }

  TempDir dir_{"pod_token_test"};
};

// Verifies a configured token file is read with surrounding whitespace
// dropped, and nothing is generated.
TEST_F(PodTokenTest, ReadsTokenFileTrimmed) {
  const std::string path = dir_.file("token");
  writeFile(path, "  \tS3cret-Token_0123456789~!\r\n\n");
  absl::StatusOr<SecretString> token = load(path);
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(token->reveal(), "S3cret-Token_0123456789~!");
  EXPECT_FALSE(std::filesystem::exists(dir_.file("generated")));

  // Exactly 16 and 4096 characters are accepted.
  writeFile(path, std::string(16, 'a'));
  EXPECT_THAT(load(path), IsOk());
  writeFile(path, std::string(4096, 'b'));
  token = load(path);
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(token->size(), 4096u);
}

// Verifies a token file that is missing, too short, too long, or holds
// invisible characters is refused with one line naming the path and never
// the file's content.
TEST_F(PodTokenTest, RefusesBadTokenFiles) {
  const std::string path = dir_.file("token");
  const auto expectRefused = [&](const std::string& content, absl::StatusCode code) {
    SCOPED_TRACE(content.substr(0, 40));
    const absl::StatusOr<SecretString> token = load(path);
    EXPECT_THAT(token, StatusIs(code, AllOf(HasSubstr(path), Not(HasSubstr("\n")))));
    if (content.size() >= 8) {
      EXPECT_THAT(std::string(token.status().message()), Not(HasSubstr(content.substr(0, 8))));
    }
  };

  expectRefused("", absl::StatusCode::kFailedPrecondition);  // missing

  writeFile(path, "");
  expectRefused("", absl::StatusCode::kInvalidArgument);
  writeFile(path, "short-token-15c\n");
  expectRefused("short-token-15c", absl::StatusCode::kInvalidArgument);
  writeFile(path, "two words in one token\n");
  expectRefused("two words in one token", absl::StatusCode::kInvalidArgument);
  writeFile(path, std::string("token-with-nul-") + '\0' + "-inside");
  expectRefused("token-with-nul-", absl::StatusCode::kInvalidArgument);
  writeFile(path, "token-with-\xc3\xa9-non-ascii");
  expectRefused("token-with-\xc3\xa9-non-ascii", absl::StatusCode::kInvalidArgument);
  writeFile(path, std::string(4097, 'c'));
  expectRefused(std::string(4097, 'c'), absl::StatusCode::kInvalidArgument);
  // Oversized even when the excess is whitespace: the file is not a token.
  writeFile(path, std::string(20, 'd') + std::string(5000, ' '));
  expectRefused(std::string(20, 'd'), absl::StatusCode::kInvalidArgument);

  EXPECT_FALSE(std::filesystem::exists(dir_.file("generated")));
}

// Verifies a generated token is 64 lowercase hex characters (32 random
// bytes), written with the given mode, and is what the file holds.
TEST_F(PodTokenTest, GeneratesHexTokenWithMode) {
  for (const uint32_t mode : {0640u, 0600u}) {
    const std::string path = dir_.file("generated-" + std::to_string(mode));
    absl::StatusOr<SecretString> token = loadOrCreatePodToken("", path, mode, std::nullopt);
    ASSERT_THAT(token, IsOk());
    EXPECT_THAT(token->reveal(), MatchesRegex("[0-9a-f]{64}"));
    EXPECT_EQ(readFile(path), token->reveal() + "\n");
    EXPECT_EQ(statOf(path).st_mode & 07777, mode);
  }
}

// Verifies the token file is given the configured group.
TEST_F(PodTokenTest, GeneratedTokenHasGroup) {
  const std::string path = dir_.file("generated");
  ASSERT_THAT(loadOrCreatePodToken("", path, 0640, ::getgid()), IsOk());
  EXPECT_EQ(statOf(path).st_gid, ::getgid());
}

// Verifies a second start replaces the token by rename: a new token, a new
// file (a reader holding the old one still sees the old token whole), and no
// temporary left behind, even one a crash left before.
TEST_F(PodTokenTest, SecondGenerationReplacesAtomically) {
  const std::string path = dir_.file("generated");
  absl::StatusOr<SecretString> first = loadOrCreatePodToken("", path, 0640, std::nullopt);
  ASSERT_THAT(first, IsOk());
  std::ifstream old_reader(path);
  const ino_t first_inode = statOf(path).st_ino;

  writeFile(path + ".tmp", "left by a crash");
  absl::StatusOr<SecretString> second = loadOrCreatePodToken("", path, 0600, std::nullopt);
  ASSERT_THAT(second, IsOk());
  EXPECT_NE(first->reveal(), second->reveal());
  EXPECT_EQ(readFile(path), second->reveal() + "\n");
  EXPECT_NE(statOf(path).st_ino, first_inode);
  EXPECT_EQ(statOf(path).st_mode & 07777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  std::string old_content;
  std::getline(old_reader, old_content);
  EXPECT_EQ(old_content, first->reveal());
}

// Verifies a token that cannot be written is an error naming the path, and
// leaves no temporary.
TEST_F(PodTokenTest, UnwritableDirectoryIsAnError) {
  const std::string path = dir_.file("missing-dir/generated");
  EXPECT_THAT(loadOrCreatePodToken("", path, 0640, std::nullopt),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(path)));
}

}  // namespace
}  // namespace credsync::server
