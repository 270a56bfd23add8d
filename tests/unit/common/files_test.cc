#include "sidecar/common/files.h"

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

namespace credsync {
namespace {

using ::credsync::testing::writeFile;

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using ::testing::HasSubstr;

// Verifies a small file is read whole, up to and including the limit.
TEST(ReadSmallFileTest, ReadsUpToTheLimit) {
  TempDir dir("files");
  writeFile(dir.file("f"), std::string(1024, 'x'));
  absl::StatusOr<std::string> text = readSmallFile(dir.file("f"), 1024, "thing");
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ(*text, std::string(1024, 'x'));
  writeFile(dir.file("empty"), "");
  text = readSmallFile(dir.file("empty"), 1024, "thing");
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ(*text, "");
}

// Verifies each failure is one line naming what and where, with its code.
TEST(ReadSmallFileTest, FailuresNameTheFile) {
  TempDir dir("files");
  writeFile(dir.file("big"), std::string(1025, 'x'));
  EXPECT_THAT(readSmallFile(dir.file("big"), 1024, "client key"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "client key " + dir.file("big") + ": larger than 1 KiB"));
  EXPECT_THAT(readSmallFile(dir.file("big"), 1 << 20, "config file"), IsOk());
  EXPECT_THAT(readSmallFile(dir.file("big"), 1000, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("larger than 1000 bytes")));
  EXPECT_THAT(readSmallFile(dir.file("missing"), 1024, "config file"),
              StatusIs(absl::StatusCode::kNotFound,
                       "config file " + dir.file("missing") + ": No such file or directory"));
  EXPECT_THAT(readSmallFile(dir.path(), 1024, "config file"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(": not a regular file")));
  if (::geteuid() != 0) {  // root reads anything
    writeFile(dir.file("locked"), "secret");
    ASSERT_EQ(::chmod(dir.file("locked").c_str(), 0), 0);
    EXPECT_THAT(readSmallFile(dir.file("locked"), 1024, "password file"),
                StatusIs(absl::StatusCode::kPermissionDenied));
  }
}

}  // namespace
}  // namespace credsync
