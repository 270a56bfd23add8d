#include "sidecar/output/atomic_writer.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"

namespace credsync::output {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;

using Contents = std::map<std::string, std::string>;  // file name -> plain content

std::map<std::string, SecretString> secrets(const Contents& contents) {
  std::map<std::string, SecretString> files;
  for (const auto& [name, content] : contents) files.emplace(name, SecretString(content));
  return files;
}

// The whole file, or nullopt when it cannot be opened.
std::optional<std::string> readFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string content;
  char buffer[4096];
  ssize_t count;
  while ((count = read(fd, buffer, sizeof(buffer))) > 0) content.append(buffer, count);
  close(fd);
  return content;
}

std::string linkTarget(const std::string& path) {
  char target[4096];
  const ssize_t length = readlink(path.c_str(), target, sizeof(target));
  return length < 0 ? std::string("<not a link>") : std::string(target, length);
}

struct stat lstatOf(const std::string& path) {
  struct stat info {};
  EXPECT_EQ(lstat(path.c_str(), &info), 0) << path;
  return info;
}

mode_t permissions(const std::string& path) { return lstatOf(path).st_mode & 07777; }

class AtomicWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "atomic_writer_test.XXXXXX";
    ASSERT_NE(mkdtemp(root_.data()), nullptr);
    dir_ = root_ + "/out";
    options_.directory = dir_;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Moves the test to tmpfs when there is one: the production volume is an
  // emptyDir with medium Memory, where a publish is fastest and so the
  // window for a reader race narrowest to hit and most likely to show.
  void useMemoryFilesystemIfAvailable() {
    std::string shm = "/dev/shm/atomic_writer_test.XXXXXX";
    if (access("/dev/shm", W_OK) != 0 || mkdtemp(shm.data()) == nullptr) return;
    std::filesystem::remove_all(root_);
    root_ = shm;
    dir_ = root_ + "/out";
    options_.directory = dir_;
  }

  OutputWriterPtr makeWriter() {
    absl::StatusOr<OutputWriterPtr> writer = makeAtomicWriter(options_, time_);
    EXPECT_THAT(writer, IsOk());
    return writer.ok() ? *std::move(writer) : nullptr;
  }

  PublishResult publishOk(OutputWriter& writer, const Contents& contents) {
    time_.advance(absl::Seconds(1));
    absl::StatusOr<PublishResult> result = writer.publish(secrets(contents));
    EXPECT_THAT(result, IsOk());
    return result.ok() ? *result : PublishResult{};
  }

  std::set<std::string> entries() const {
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }
  std::string dataDir() const { return linkTarget(dir_ + "/..data"); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // What a reader sees under the visible names: each readable name's content.
  Contents visibleContents(const std::set<std::string>& names) const {
    Contents seen;
    for (const std::string& name : names) {
      if (std::optional<std::string> content = readFile(path(name))) seen[name] = *content;
    }
    return seen;
  }
  // The set `..data` points to (the hidden .generation aside).
  Contents dataContents() const {
    Contents seen;
    for (const auto& entry : std::filesystem::directory_iterator(path("..data"))) {
      const std::string name = entry.path().filename().string();
      if (name != ".generation") seen[name] = readFile(entry.path().string()).value_or("<?>");
    }
    return seen;
  }
  // Exactly ..data, its timestamped directory, the superseded ones still in
  // their grace (`retired`), the links of `published`, and `others`.
  void expectCleanLayout(const Contents& published, const std::set<std::string>& others = {},
                         const std::set<std::string>& retired = {}) {
    std::set<std::string> expected = others;
    expected.insert("..data");
    expected.insert(dataDir());
    expected.insert(retired.begin(), retired.end());
    for (const auto& [name, content] : published) {
      expected.insert(name);
      EXPECT_EQ(linkTarget(path(name)), "..data/" + name);
    }
    EXPECT_EQ(entries(), expected);
    for (const auto& [name, content] : published) EXPECT_EQ(readFile(path(name)), content);
  }

  std::string root_;
  std::string dir_;
  AtomicWriterOptions options_;
  SimulatedTimeSource time_;
};

const Contents kOld = {{"credentials.ini", "[default]\nold = 1\n"}, {"extra.ini", "extra v1\n"}};
const Contents kNew = {{"credentials.ini", "[default]\nnew = 2, and longer than before\n"},
                       {"added.ini", "added v2\n"}};

// Verifies the layout after a first publish: the directory created 0755,
// `..data` -> one timestamped directory named from the time source, the
// visible link, exact file modes, and the hidden generation file.
TEST_F(AtomicWriterTest, FirstPublishCreatesKubeletLayout) {
  time_.setSystemTime(
      absl::FromCivil(absl::CivilSecond(2026, 11, 24, 9, 29, 59), absl::UTCTimeZone()));
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(permissions(dir_), 0755u);
  EXPECT_EQ(writer->generation(), 0u);

  const PublishResult result = publishOk(*writer, {{"credentials.ini", "content A\n"}});
  EXPECT_TRUE(result.changed);
  EXPECT_EQ(result.generation, 1u);
  EXPECT_EQ(writer->generation(), 1u);

  const std::string data_dir = dataDir();
  EXPECT_TRUE(std::regex_match(data_dir, std::regex(R"(\.\.2026_11_24_09_30_00\.[0-9]{9})")))
      << data_dir;
  EXPECT_EQ(entries(), (std::set<std::string>{"..data", data_dir, "credentials.ini"}));
  EXPECT_TRUE(S_ISLNK(lstatOf(path("..data")).st_mode));
  EXPECT_TRUE(S_ISLNK(lstatOf(path("credentials.ini")).st_mode));
  EXPECT_EQ(linkTarget(path("credentials.ini")), "..data/credentials.ini");
  EXPECT_EQ(readFile(path("credentials.ini")), "content A\n");

  EXPECT_TRUE(S_ISDIR(lstatOf(path(data_dir)).st_mode));
  EXPECT_EQ(permissions(path(data_dir)), 0755u);
  const std::string file = path(data_dir + "/credentials.ini");
  EXPECT_TRUE(S_ISREG(lstatOf(file).st_mode));
  EXPECT_EQ(permissions(file), 0440u);
  EXPECT_EQ(readFile(path(data_dir + "/.generation")), "1\n");
  EXPECT_EQ(permissions(path(data_dir + "/.generation")), 0444u);
}

// Verifies exact modes despite a restrictive umask, and the group on the
// directory, the data directory and every file (needs root to chown).
TEST_F(AtomicWriterTest, AppliesGroupAndExactModes) {
  if (geteuid() != 0) GTEST_SKIP() << "setting an arbitrary group needs root";
  options_.group = 4242;
  options_.file_mode = 0640;
  const mode_t saved_umask = umask(0077);
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  publishOk(*writer, {{"credentials.ini", "content\n"}, {"other.ini", "other\n"}});
  umask(saved_umask);

  EXPECT_EQ(permissions(dir_), 0750u);
  EXPECT_EQ(lstatOf(dir_).st_gid, 4242u);
  const std::string data_dir = path(dataDir());
  EXPECT_EQ(permissions(data_dir), 0750u);
  EXPECT_EQ(lstatOf(data_dir).st_gid, 4242u);
  for (const std::string name : {"credentials.ini", "other.ini"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(permissions(data_dir + "/" + name), 0640u);
    EXPECT_EQ(lstatOf(data_dir + "/" + name).st_gid, 4242u);
  }
  EXPECT_EQ(lstatOf(data_dir + "/.generation").st_gid, 4242u);
}

// Verifies that an existing output directory (the volume mount) keeps its mode.
TEST_F(AtomicWriterTest, LeavesExistingDirectoryModeAlone) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir_.c_str(), 01777), 0);
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  publishOk(*writer, {{"credentials.ini", "x\n"}});
  EXPECT_EQ(permissions(dir_), 01777u);
}

// Verifies that republishing identical content reports no change and writes
// nothing: same data directory, same entries, same generation.
TEST_F(AtomicWriterTest, IdenticalContentWritesNothing) {
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  publishOk(*writer, kOld);
  const std::string data_dir = dataDir();
  const std::set<std::string> before = entries();
  const ino_t inode = lstatOf(path(data_dir + "/credentials.ini")).st_ino;

  const PublishResult again = publishOk(*writer, kOld);
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(again.generation, 1u);
  EXPECT_EQ(dataDir(), data_dir);
  EXPECT_EQ(entries(), before);
  EXPECT_EQ(lstatOf(path(data_dir + "/credentials.ini")).st_ino, inode);
}

// Verifies that a change swaps `..data` to a new directory and increments
// the generation, and that any difference counts as a change.
TEST_F(AtomicWriterTest, ChangeSwapsDataLink) {
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  publishOk(*writer, {{"credentials.ini", "A\n"}});
  const std::string first = dataDir();

  const PublishResult changed = publishOk(*writer, {{"credentials.ini", "B\n"}});
  EXPECT_TRUE(changed.changed);
  EXPECT_EQ(changed.generation, 2u);
  EXPECT_NE(dataDir(), first);
  EXPECT_EQ(readFile(path("credentials.ini")), "B\n");
  EXPECT_EQ(readFile(path("..data/.generation")), "2\n");

  // Same content under another name, and an added empty file, are changes too.
  EXPECT_EQ(publishOk(*writer, {{"renamed.ini", "B\n"}}).generation, 3u);
  EXPECT_EQ(publishOk(*writer, {{"renamed.ini", "B\n"}, {"empty", ""}}).generation, 4u);
  EXPECT_EQ(readFile(path("empty")), "");
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path("credentials.ini"))));
}

// Verifies that a superseded directory stays, readable, for the grace after
// the switch, and goes with the first publish after it: a change or an
// unchanged publish alike.
TEST_F(AtomicWriterTest, SupersededSetStaysForItsGrace) {
  options_.keep_superseded_for = absl::Seconds(10);
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  publishOk(*writer, {{"credentials.ini", "A\n"}});  // t=1
  const std::string a = dataDir();
  publishOk(*writer, {{"credentials.ini", "B\n"}});  // t=2: A superseded
  const std::string b = dataDir();
  EXPECT_EQ(readFile(path(a + "/credentials.ini")), "A\n");
  expectCleanLayout({{"credentials.ini", "B\n"}}, {}, {a});

  time_.advance(absl::Seconds(8));
  publishOk(*writer, {{"credentials.ini", "C\n"}});  // t=11: B superseded; A has 1 s left
  const std::string c = dataDir();
  expectCleanLayout({{"credentials.ini", "C\n"}}, {}, {a, b});

  EXPECT_FALSE(publishOk(*writer, {{"credentials.ini", "C\n"}}).changed);  // t=12
  expectCleanLayout({{"credentials.ini", "C\n"}}, {}, {b});

  time_.advance(absl::Seconds(20));
  EXPECT_TRUE(publishOk(*writer, {{"credentials.ini", "D\n"}}).changed);  // all up but C's
  expectCleanLayout({{"credentials.ini", "D\n"}}, {}, {c});
}

// Verifies that with no grace a superseded directory goes at once, as the
// kubelet does it.
TEST_F(AtomicWriterTest, ZeroGraceRemovesAtOnce) {
  options_.keep_superseded_for = absl::ZeroDuration();
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  publishOk(*writer, {{"credentials.ini", "A\n"}});
  const std::string a = dataDir();
  publishOk(*writer, {{"credentials.ini", "B\n"}});
  EXPECT_FALSE(std::filesystem::exists(path(a)));
  expectCleanLayout({{"credentials.ini", "B\n"}});
}

// Verifies that the generation and the content survive a restart: a new
// writer on the same directory resumes the count and skips identical content.
TEST_F(AtomicWriterTest, GenerationSurvivesNewWriter) {
  {
    OutputWriterPtr writer = makeWriter();
    ASSERT_NE(writer, nullptr);
    publishOk(*writer, {{"credentials.ini", "A\n"}});
    publishOk(*writer, {{"credentials.ini", "B\n"}});
  }
  OutputWriterPtr restarted = makeWriter();
  ASSERT_NE(restarted, nullptr);
  EXPECT_EQ(restarted->generation(), 2u);
  const std::string data_dir = dataDir();

  const PublishResult same = publishOk(*restarted, {{"credentials.ini", "B\n"}});
  EXPECT_FALSE(same.changed);
  EXPECT_EQ(same.generation, 2u);
  EXPECT_EQ(dataDir(), data_dir);

  const PublishResult next = publishOk(*restarted, {{"credentials.ini", "A\n"}});
  EXPECT_TRUE(next.changed);
  EXPECT_EQ(next.generation, 3u);
}

// Verifies that names dropped from the set lose their links, new names get
// theirs, and entries that are not ours (a socket, a foreign link) stay.
TEST_F(AtomicWriterTest, RemovesObsoleteNamesOnly) {
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  publishOk(*writer, kOld);
  const std::string old_dir = dataDir();
  std::ofstream(path("credsync.sock")) << "not ours";
  ASSERT_EQ(symlink("/etc/hostname", path("mine").c_str()), 0);

  publishOk(*writer, kNew);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path("extra.ini"))));
  EXPECT_EQ(visibleContents({"credentials.ini", "extra.ini", "added.ini"}), kNew);
  expectCleanLayout(kNew, {"credsync.sock", "mine"}, {old_dir});
  EXPECT_EQ(linkTarget(path("mine")), "/etc/hostname");
}

// Verifies that unusable file names and an empty set are refused before
// anything is written.
TEST_F(AtomicWriterTest, RefusesBadFileNames) {
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  for (const std::string& name :
       {std::string(""), std::string(".hidden"), std::string("..data"), std::string("a/b"),
        std::string("with space"), std::string(256, 'a'), std::string("nul\0x", 5)}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(writer->publish(secrets({{name, "x"}})),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(writer->publish({}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(publishOk(*writer, {{std::string(255, 'a'), "x"}}).generation, 1u);
  EXPECT_EQ(writer->generation(), 1u);
}

// Verifies that bad options are refused.
TEST_F(AtomicWriterTest, RefusesBadOptions) {
  options_.file_mode = 04440;
  EXPECT_THAT(makeAtomicWriter(options_, time_), StatusIs(absl::StatusCode::kInvalidArgument));
  options_.file_mode = 0440;
  options_.keep_superseded_for = absl::Seconds(-1);
  EXPECT_THAT(makeAtomicWriter(options_, time_), StatusIs(absl::StatusCode::kInvalidArgument));
  options_.keep_superseded_for = absl::Seconds(30);
  options_.directory = "";
  EXPECT_THAT(makeAtomicWriter(options_, time_), StatusIs(absl::StatusCode::kInvalidArgument));
  options_.directory = root_ + "/missing/parent";
  EXPECT_THAT(makeAtomicWriter(options_, time_), StatusIs(absl::StatusCode::kNotFound));
}

// Verifies that a `..data` that is a real directory is refused at startup:
// renaming a link over it could never succeed.
TEST_F(AtomicWriterTest, RefusesDataThatIsNotALink) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(path("..data").c_str(), 0755), 0);
  EXPECT_THAT(makeAtomicWriter(options_, time_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a symbolic link")));
}

// Verifies startup cleanup: timestamped directories `..data` does not name
// (the retired one included), a stray `..data_tmp` and temporary link, and a
// dangling visible link go; a missing visible link is recreated; everything
// else stays.
TEST_F(AtomicWriterTest, StartupRemovesLeftovers) {
  {
    OutputWriterPtr writer = makeWriter();
    ASSERT_NE(writer, nullptr);
    publishOk(*writer, {{"credentials.ini", "retired\n"}});
    publishOk(*writer, {{"credentials.ini", "A\n"}});
  }
  const std::string current = dataDir();
  const std::string orphan = "..2025_12_31_23_59_59.000000001";
  const std::string kubelet_style = "..2025_12_31_23_59_58.1234";
  for (const std::string& name : {orphan, kubelet_style}) {
    ASSERT_EQ(mkdir(path(name).c_str(), 0755), 0);
    std::ofstream(path(name + "/credentials.ini")) << "half-written";
    std::ofstream(path(name + "/.generation")) << "7\n";
  }
  ASSERT_EQ(symlink(orphan.c_str(), path("..data_tmp").c_str()), 0);
  ASSERT_EQ(symlink("..data/x", path("..link_tmp").c_str()), 0);
  ASSERT_EQ(symlink("..data/old.ini", path("old.ini").c_str()), 0);
  ASSERT_EQ(unlink(path("credentials.ini").c_str()), 0);
  std::ofstream(path("notes.txt")) << "keep";
  ASSERT_EQ(mkdir(path("..mine").c_str(), 0755), 0);

  OutputWriterPtr restarted = makeWriter();
  ASSERT_NE(restarted, nullptr);
  EXPECT_EQ(restarted->generation(), 2u);
  EXPECT_EQ(dataDir(), current);
  expectCleanLayout({{"credentials.ini", "A\n"}}, {"notes.txt", "..mine"});
  EXPECT_EQ(readFile(path("credentials.ini")), "A\n");
  EXPECT_FALSE(publishOk(*restarted, {{"credentials.ini", "A\n"}}).changed);
}

// Verifies that an unchanged publish recreates a visible link someone
// removed, and replaces a plain file squatting on the name, without a new set.
TEST_F(AtomicWriterTest, UnchangedPublishRepairsVisibleLinks) {
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  publishOk(*writer, {{"credentials.ini", "A\n"}});
  const std::string data_dir = dataDir();

  ASSERT_EQ(unlink(path("credentials.ini").c_str()), 0);
  EXPECT_FALSE(publishOk(*writer, {{"credentials.ini", "A\n"}}).changed);
  EXPECT_EQ(linkTarget(path("credentials.ini")), "..data/credentials.ini");

  ASSERT_EQ(unlink(path("credentials.ini").c_str()), 0);
  std::ofstream(path("credentials.ini")) << "squatter";
  EXPECT_FALSE(publishOk(*writer, {{"credentials.ini", "A\n"}}).changed);
  EXPECT_EQ(readFile(path("credentials.ini")), "A\n");
  EXPECT_EQ(dataDir(), data_dir);
  expectCleanLayout({{"credentials.ini", "A\n"}});
}

// Verifies that a real write failure (EFBIG under RLIMIT_FSIZE, which binds
// root too) leaves the previous set, generation and layout exactly in place,
// and that the next publish succeeds.
TEST_F(AtomicWriterTest, FailedWriteLeavesPreviousSetInPlace) {
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  publishOk(*writer, {{"credentials.ini", "small\n"}});
  const std::set<std::string> before = entries();
  const std::string data_dir = dataDir();

  const Contents large = {{"credentials.ini", std::string(4096, 'L')}};
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct sigaction ignore {};
  struct sigaction previous {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit limited = saved;
  limited.rlim_cur = 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  absl::StatusOr<PublishResult> failed = writer->publish(secrets(large));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &previous, nullptr), 0);

  EXPECT_THAT(failed, StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("credentials.ini")));
  EXPECT_EQ(writer->generation(), 1u);
  EXPECT_EQ(entries(), before);
  EXPECT_EQ(dataDir(), data_dir);
  EXPECT_EQ(readFile(path("credentials.ini")), "small\n");

  const PublishResult retried = publishOk(*writer, large);
  EXPECT_TRUE(retried.changed);
  EXPECT_EQ(retried.generation, 2u);
  EXPECT_EQ(readFile(path("credentials.ini")), large.at("credentials.ini"));
}

struct CrashPoint {
  PublishStep step;
  int occurrence;  // which time the step is reached (files, links)
};

// Verifies crash consistency at every step of a publish: the writer stops as
// a killed process would; what readers see is always wholly the previous or
// wholly the new set; a new writer cleans up, resumes the right generation,
// and publishes on.
TEST_F(AtomicWriterTest, CrashAtAnyStepLeavesPreviousOrNewSet) {
  // kOld's directory, superseded by kMid, is due for removal during kNew's publish.
  options_.keep_superseded_for = absl::Seconds(1);
  const Contents kMid = {{"credentials.ini", "[default]\nmid = 1.5\n"}, {"extra.ini", "v1.5\n"}};
  // kNew has two files plus .generation, drops extra.ini and adds added.ini;
  // the publish removes kOld's directory, which kMid's publish retired.
  const std::vector<CrashPoint> points = {
      {PublishStep::kDataDirCreated, 0},       {PublishStep::kFilePartlyWritten, 0},
      {PublishStep::kFileWritten, 0},          {PublishStep::kFilePartlyWritten, 1},
      {PublishStep::kFileWritten, 1},          {PublishStep::kFilePartlyWritten, 2},
      {PublishStep::kFileWritten, 2},          {PublishStep::kDataDirSynced, 0},
      {PublishStep::kTempLinkCreated, 0},      {PublishStep::kDataLinkSwapped, 0},
      {PublishStep::kVisibleLinkStaged, 0},    {PublishStep::kVisibleLinksCreated, 0},
      {PublishStep::kObsoleteLinksRemoved, 0}, {PublishStep::kOldDataDirPartlyRemoved, 0},
      {PublishStep::kOldDataDirRemoved, 0},
  };
  const std::set<std::string> all_names = {"credentials.ini", "extra.ini", "added.ini"};
  for (const CrashPoint& point : points) {
    SCOPED_TRACE(absl::StrCat(publishStepNameForTest(point.step), " #", point.occurrence));
    std::filesystem::remove_all(dir_);
    {
      OutputWriterPtr writer = makeWriter();
      ASSERT_NE(writer, nullptr);
      publishOk(*writer, kOld);
    }
    std::ofstream(path("notes.txt")) << "not ours";

    bool armed = false;
    int seen = 0;
    absl::StatusOr<OutputWriterPtr> crashing =
        makeAtomicWriterForTest(options_, time_, [&](PublishStep step) {
          return armed && step == point.step && seen++ == point.occurrence;
        });
    ASSERT_THAT(crashing, IsOk());
    publishOk(**crashing, kMid);
    const std::string mid_dir = dataDir();
    armed = true;
    time_.advance(absl::Seconds(1));
    EXPECT_THAT((*crashing)->publish(secrets(kNew)), StatusIs(absl::StatusCode::kAborted));
    EXPECT_THAT((*crashing)->publish(secrets(kNew)),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    crashing->reset();

    const bool committed = point.step >= PublishStep::kDataLinkSwapped;
    const Contents& expected = committed ? kNew : kMid;
    // Through `..data`: exactly one whole set.
    EXPECT_EQ(dataContents(), expected);
    // Through the visible names: the file both sets share is always there,
    // and whatever is readable belongs to that same set.
    const Contents visible = visibleContents(all_names);
    EXPECT_EQ(visible.count("credentials.ini"), 1u);
    for (const auto& [name, content] : visible) {
      ASSERT_EQ(expected.count(name), 1u) << name;
      EXPECT_EQ(expected.at(name), content) << name;
    }

    OutputWriterPtr restarted = makeWriter();
    ASSERT_NE(restarted, nullptr);
    EXPECT_EQ(restarted->generation(), committed ? 3u : 2u);
    EXPECT_EQ(visibleContents(all_names), expected);
    expectCleanLayout(expected, {"notes.txt"});

    const PublishResult result = publishOk(*restarted, kNew);
    EXPECT_EQ(result.changed, !committed);
    EXPECT_EQ(result.generation, 3u);
    EXPECT_EQ(visibleContents(all_names), kNew);
    expectCleanLayout(kNew, {"notes.txt"},
                      committed ? std::set<std::string>{} : std::set<std::string>{mid_dir});
  }
}

// Verifies that a reader opening credentials.ini in a tight loop during 500
// publishes of alternating content only ever sees one complete version:
// never a missing file, never a partial or mixed one. The publishes happen
// within one instant of the simulated clock, so every superseded set is in
// its grace, as it is for a real reader that stalls for less than that; the
// grace then runs out and one more publish clears them all.
TEST_F(AtomicWriterTest, ConcurrentReaderSeesOnlyCompleteFiles) {
  const std::string short_content = "[default]\naccess_key_secret = short\n";
  const std::string long_content =
      "[default]\naccess_key_secret = " + std::string(6000, 'x') + "\n";
  useMemoryFilesystemIfAvailable();
  OutputWriterPtr writer = makeWriter();
  ASSERT_NE(writer, nullptr);
  publishOk(*writer, {{"credentials.ini", short_content}});

  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::atomic<long> missing{0};
  std::atomic<long> wrong{0};
  std::thread reader([&] {
    const std::string file = path("credentials.ini");
    while (!stop.load()) {
      std::optional<std::string> content = readFile(file);
      if (!content) {
        missing.fetch_add(1);
      } else if (*content != short_content && *content != long_content) {
        wrong.fetch_add(1);
      }
      reads.fetch_add(1);
    }
  });
  while (reads.load() == 0) std::this_thread::yield();

  for (int i = 0; i < 500; ++i) {
    absl::StatusOr<PublishResult> result =
        writer->publish(secrets({{"credentials.ini", i % 2 == 0 ? long_content : short_content}}));
    ASSERT_THAT(result, IsOk());
    ASSERT_TRUE(result->changed);
  }
  const long reads_during = reads.load();
  stop.store(true);
  reader.join();

  EXPECT_EQ(missing.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(reads_during, 1);
  EXPECT_EQ(writer->generation(), 501u);
  EXPECT_EQ(entries().size(), 2u + 501u);  // ..data, the link, and every set

  time_.advance(absl::Seconds(31));
  const std::string previous = dataDir();
  publishOk(*writer, {{"credentials.ini", long_content}});
  expectCleanLayout({{"credentials.ini", long_content}}, {}, {previous});
}

}  // namespace
}  // namespace credsync::output
