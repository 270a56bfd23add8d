#include "sidecar/hooks/command_spawner.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/eventually.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

namespace credsync::hooks {
namespace {

using ::credsync::testing::eventually;
using ::credsync::testing::IsOk;
using ::credsync::testing::readFile;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string> kEnvironment = {"PATH=/usr/bin:/bin", "CREDSYNC_HOOK=test"};

ChildProcessPtr spawnShell(CommandSpawner& spawner, const std::string& script,
                           const std::vector<std::string>& environment = kEnvironment) {
  absl::StatusOr<ChildProcessPtr> child = spawner.spawn({"sh", "-c", script}, environment);
  EXPECT_THAT(child, IsOk());
  return child.ok() ? *std::move(child) : nullptr;
}

// A shell that starts `sleep 60` in the background, writes its pid into
// <dir>/bg, then runs `then`.
ChildProcessPtr spawnWithBackgroundSleep(CommandSpawner& spawner, const TempDir& dir,
                                         const std::string& then) {
  return spawnShell(spawner, absl::StrCat("sleep 60 & echo $! > ", dir.file("bg"), "; ", then));
}

// The background sleep's pid once written, else 0.
int backgroundPid(const TempDir& dir) {
  int pid = 0;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(readFile(dir.file("bg"))), &pid) ? pid : 0;
}

// Whether `pid` is gone or only a zombie: either way it runs no more.
bool notRunning(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return true;
  return line.find(") Z ") != std::string::npos;
}

// Verifies the exit code comes back, through a PATH search and no shell of
// credsync's own.
TEST(CommandSpawnerTest, ReportsTheExitCode) {
  const CommandSpawnerPtr spawner = makeCommandSpawner();
  const ChildProcessPtr child = spawnShell(*spawner, "exit 3");
  ASSERT_NE(child, nullptr);
  const std::optional<ExitStatus> status = child->waitFor(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->exit_code, 3);
  EXPECT_FALSE(status->signal.has_value());
  EXPECT_EQ(child->waitFor(absl::ZeroDuration())->exit_code, 3);  // the same, again
}

// Verifies the command gets exactly the given environment (nothing of the
// test's own), stdio on /dev/null, none of the parent's other descriptors,
// no blocked or ignored signal, and a process group of its own.
TEST(CommandSpawnerTest, StartsTheCommandClean) {
  TempDir dir("spawn");
  // What credsync's main does: SIGTERM blocked for sigwait, SIGPIPE ignored;
  // plus a descriptor opened without O_CLOEXEC.
  setenv("CREDSYNC_TEST_PARENT_ONLY", "leak", 1);
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigset_t saved;
  pthread_sigmask(SIG_BLOCK, &blocked, &saved);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction saved_pipe {};
  sigaction(SIGPIPE, &ignore, &saved_pipe);
  const std::string marker = dir.file("leak-marker");
  const int leaked = open(marker.c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(leaked, 3);

  const CommandSpawnerPtr spawner = makeCommandSpawner();
  const std::string out = dir.file("out");
  // Command substitutions run in subshells; $$ stays the shell the spawner
  // started, whose descriptors and signal state are the ones to check.
  const ChildProcessPtr child = spawnShell(
      *spawner, absl::StrCat("stdio=$(readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2); "
                             "leaks=$(ls -l /proc/$$/fd | grep -c leak-marker); "
                             "blocked=$(grep SigBlk /proc/$$/status | cut -f2); "
                             "ignored=$(grep SigIgn /proc/$$/status | cut -f2); "
                             "pgid=$(cut -d' ' -f5 /proc/$$/stat); "
                             "echo $stdio $leaks $blocked $ignored $pgid > ",
                             out, "; env > ", out, ".env; echo printed; echo printed >&2"));
  close(leaked);
  sigaction(SIGPIPE, &saved_pipe, nullptr);
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  unsetenv("CREDSYNC_TEST_PARENT_ONLY");
  ASSERT_NE(child, nullptr);
  const std::optional<ExitStatus> status = child->waitFor(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->exit_code, 0);

  const std::string env = readFile(out + ".env");
  EXPECT_THAT(env, HasSubstr("CREDSYNC_HOOK=test\n"));
  EXPECT_THAT(env, HasSubstr("PATH=/usr/bin:/bin\n"));
  EXPECT_THAT(env, Not(HasSubstr("CREDSYNC_TEST_PARENT_ONLY")));
  const std::vector<std::string> fields =
      absl::StrSplit(absl::StripAsciiWhitespace(readFile(out)), ' ');
  ASSERT_EQ(fields.size(), 7u) << readFile(out);
  EXPECT_EQ(fields[0], "/dev/null");
  EXPECT_EQ(fields[1], "/dev/null");
  EXPECT_EQ(fields[2], "/dev/null");
  EXPECT_EQ(fields[3], "0") << "an inherited descriptor is open in the command";
  uint64_t blocked_mask = 1;
  uint64_t ignored_mask = 1;
  ASSERT_TRUE(absl::SimpleHexAtoi(fields[4], &blocked_mask));
  ASSERT_TRUE(absl::SimpleHexAtoi(fields[5], &ignored_mask));
  EXPECT_EQ(blocked_mask, 0u);
  // Signals 1-31; glibc keeps its two internal real-time signals to itself.
  EXPECT_EQ(ignored_mask & 0x7fffffffu, 0u);
  EXPECT_EQ(fields[6], absl::StrCat(child->pid()));
}

// Verifies a missing program is NOT_FOUND at spawn time.
TEST(CommandSpawnerTest, MissingProgramIsNotFound) {
  const CommandSpawnerPtr spawner = makeCommandSpawner();
  EXPECT_THAT(spawner->spawn({"/nonexistent/hook"}, kEnvironment),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(spawner->spawn({"no-such-hook-program"}, kEnvironment),
              StatusIs(absl::StatusCode::kNotFound));
}

// Verifies signalling the group reaches what the command started in the
// background too (the timeout path), and the exit reports the signal.
TEST(CommandSpawnerTest, SignalGroupEndsTheWholeGroup) {
  TempDir dir("spawn");
  const CommandSpawnerPtr spawner = makeCommandSpawner();
  const ChildProcessPtr child = spawnWithBackgroundSleep(*spawner, dir, "wait");
  ASSERT_NE(child, nullptr);
  int background = 0;
  ASSERT_TRUE(eventually([&] { return (background = backgroundPid(dir)) != 0; }));
  EXPECT_FALSE(child->waitFor(absl::Milliseconds(50)).has_value());
  child->signalGroup(SIGTERM);
  const std::optional<ExitStatus> status = child->waitFor(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->signal, SIGTERM);
  EXPECT_TRUE(eventually([&] { return notRunning(background); }));
}

// Verifies what a command leaves running when it exits is killed: a hook is
// a finished action.
TEST(CommandSpawnerTest, LeftoversAreKilledWhenTheCommandExits) {
  TempDir dir("spawn");
  const CommandSpawnerPtr spawner = makeCommandSpawner();
  const ChildProcessPtr child = spawnWithBackgroundSleep(*spawner, dir, "exit 0");
  ASSERT_NE(child, nullptr);
  const std::optional<ExitStatus> status = child->waitFor(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->exit_code, 0);
  const int background = backgroundPid(dir);
  ASSERT_NE(background, 0);
  EXPECT_TRUE(eventually([&] { return notRunning(background); }));
}

// Verifies that when credsync adopts orphans (it is its container's pid 1;
// a subreaper here), the killed leftovers are reaped too, not left as zombies.
TEST(CommandSpawnerTest, AdoptedLeftoversAreReaped) {
  TempDir dir("spawn");
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  const CommandSpawnerPtr spawner = makeCommandSpawner();
  const ChildProcessPtr child = spawnWithBackgroundSleep(*spawner, dir, "exit 0");
  ASSERT_NE(child, nullptr);
  const std::optional<ExitStatus> status = child->waitFor(absl::Seconds(20));
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_TRUE(status.has_value());
  const int background = backgroundPid(dir);
  ASSERT_NE(background, 0);
  EXPECT_FALSE(std::ifstream(absl::StrCat("/proc/", background, "/stat")).good())
      << "the leftover is still there (running or a zombie)";
}

// Verifies destroying a child still running kills and reaps it.
TEST(CommandSpawnerTest, DestroyingARunningChildKillsIt) {
  const CommandSpawnerPtr spawner = makeCommandSpawner();
  ChildProcessPtr child = spawnShell(*spawner, "sleep 60");
  ASSERT_NE(child, nullptr);
  const pid_t pid = child->pid();
  child.reset();
  EXPECT_TRUE(notRunning(pid));
}

}  // namespace
}  // namespace credsync::hooks
