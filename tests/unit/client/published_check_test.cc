#include "sidecar/client/published_check.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

namespace credsync::client {
namespace {

using ::credsync::testing::writeFile;

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecret[] = "SecretThatMustNeverBeShown0123";

std::string iniWith(const std::string& profile, const std::string& id) {
  return "[" + profile + "]\nenable = true\ntype = access_key\naccess_key_id = " + id +
         "\naccess_key_secret = " + kSecret + "\n";
}

credsync::v1::ProfileStatus* addRamProfile(credsync::v1::GetStatusResponse& status,
                                           const std::string& name, const std::string& id) {
  credsync::v1::ProfileStatus* profile = status.add_profiles();
  profile->set_name(name);
  profile->set_kind(credsync::v1::PROFILE_KIND_RAM_CREDENTIALS);
  profile->set_required(true);
  profile->set_written(!id.empty());
  profile->set_access_key_id(id);
  return profile;
}

credsync::v1::GetStatusResponse readyStatus() {
  credsync::v1::GetStatusResponse status;
  status.set_ready(true);
  status.set_generation(4);
  return status;
}

class PublishedCheckTest : public ::testing::Test {
 protected:
  TempDir dir_{"published_check"};
  std::string ini_ = dir_.file("credentials.ini");
};

// Verifies a ready sidecar whose key is in the file passes, and the line
// names the generation, the profile, its id and the file, never the secret.
TEST_F(PublishedCheckTest, PassesWhenTheFileHoldsThePublishedKey) {
  credsync::v1::GetStatusResponse status = readyStatus();
  addRamProfile(status, "default", "LTAI5tPublished");
  writeFile(ini_, iniWith("default", "LTAI5tPublished"));
  absl::StatusOr<std::string> line = checkPublished(status, ini_);
  ASSERT_THAT(line, IsOk());
  EXPECT_EQ(*line, "ready, generation 4: default AccessKey LTAI5tPublished in " + ini_);
  EXPECT_THAT(*line, Not(HasSubstr(kSecret)));
}

// Verifies a sidecar that is not ready fails, naming the unwritten profile
// and its last error.
TEST_F(PublishedCheckTest, FailsWhenNotReady) {
  credsync::v1::GetStatusResponse status;
  credsync::v1::ProfileStatus* profile = addRamProfile(status, "default", "");
  profile->mutable_last_error()->set_message("KMS unreachable");
  EXPECT_THAT(checkPublished(status, ini_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("not ready"), HasSubstr("profile default"),
                             HasSubstr("KMS unreachable"))));
}

// Verifies a file holding another key than the published one fails, naming
// both ids (a stale file, or a writer other than credsync).
TEST_F(PublishedCheckTest, FailsWhenTheFileHoldsAnotherKey) {
  credsync::v1::GetStatusResponse status = readyStatus();
  addRamProfile(status, "default", "LTAI5tPublished");
  writeFile(ini_, iniWith("default", "LTAI5tStale"));
  absl::StatusOr<std::string> result = checkPublished(status, ini_);
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kFailedPrecondition,
                               AllOf(HasSubstr("LTAI5tStale"), HasSubstr("LTAI5tPublished"))));
  EXPECT_THAT(std::string(result.status().message()), Not(HasSubstr(kSecret)));
}

// Verifies a missing file, or one without the profile's section, fails.
TEST_F(PublishedCheckTest, FailsWhenTheFileOrSectionIsMissing) {
  credsync::v1::GetStatusResponse status = readyStatus();
  addRamProfile(status, "default", "LTAI5tPublished");
  EXPECT_THAT(checkPublished(status, ini_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(ini_)));
  writeFile(ini_, iniWith("other", "LTAI5tPublished"));
  EXPECT_THAT(checkPublished(status, ini_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no such section")));
}

// Verifies a generic-only sidecar needs no credentials.ini, only the files
// its profiles name, beside where credentials.ini would be.
TEST_F(PublishedCheckTest, GenericProfilesNeedTheirFilesOnly) {
  credsync::v1::GetStatusResponse status = readyStatus();
  credsync::v1::ProfileStatus* generic = status.add_profiles();
  generic->set_name("db");
  generic->set_kind(credsync::v1::PROFILE_KIND_GENERIC);
  generic->set_written(true);
  generic->add_files("db.username");
  generic->add_files("db.password");
  writeFile(dir_.file("db.username"), "app");
  EXPECT_THAT(checkPublished(status, ini_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("profile db"), HasSubstr("db.password is missing"))));
  writeFile(dir_.file("db.password"), "x");
  absl::StatusOr<std::string> line = checkPublished(status, ini_);
  ASSERT_THAT(line, IsOk());
  EXPECT_EQ(*line, "ready, generation 4: db (generic) 2 files");
}

// Verifies profiles that are not written (optional ones) are skipped.
TEST_F(PublishedCheckTest, SkipsProfilesNotWritten) {
  credsync::v1::GetStatusResponse status = readyStatus();
  addRamProfile(status, "optional", "")->set_required(false);
  absl::StatusOr<std::string> line = checkPublished(status, ini_);
  ASSERT_THAT(line, IsOk());
  EXPECT_EQ(*line, "ready, generation 4: no profile written");
}

}  // namespace
}  // namespace credsync::client
