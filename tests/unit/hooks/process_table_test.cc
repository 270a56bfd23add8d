#include "sidecar/hooks/process_table.h"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/eventually.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

extern char** environ;

namespace credsync::hooks {
namespace {

using ::credsync::testing::eventually;
using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;

// Starts `argv` as a child of the test; returns its pid.
pid_t startChild(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ), 0);
  return pid;
}

std::optional<ProcessInfo> find(const ProcessTable& table, pid_t pid) {
  absl::StatusOr<std::vector<ProcessInfo>> processes = table.list();
  EXPECT_THAT(processes, IsOk());
  if (!processes.ok()) return std::nullopt;
  for (const ProcessInfo& process : *processes) {
    if (process.pid == pid) return process;
  }
  return std::nullopt;
}

// Verifies the real /proc scan finds a child the test started, with its
// name, parent and argv[0]; signals it; and reports a gone pid as NOT_FOUND.
TEST(ProcessTableTest, FindsAndSignalsARealChild) {
  const ProcessTablePtr table = makeProcessTable();
  EXPECT_EQ(table->self(), getpid());
  const pid_t child = startChild({"/bin/sleep", "30"});
  // posix_spawn may return while the child is still inside execve, when
  // /proc shows the old command line, or the new name with an empty one: the
  // scan must come to read the exec'd program.
  std::optional<ProcessInfo> found;
  ASSERT_TRUE(eventually([&] {
    found = find(*table, child);
    return found.has_value() && found->argv0 == "/bin/sleep";
  }));
  EXPECT_EQ(found->name, "sleep");
  EXPECT_EQ(found->argv0, "/bin/sleep");
  EXPECT_EQ(found->parent_pid, getpid());
  ASSERT_THAT(table->sendSignal(child, SIGTERM), IsOk());
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  EXPECT_THAT(table->sendSignal(child, SIGHUP), StatusIs(absl::StatusCode::kNotFound));
}

// Verifies a zombie (exited, not yet reaped) is not listed: it cannot act
// on a signal.
TEST(ProcessTableTest, LeavesOutZombies) {
  const ProcessTablePtr table = makeProcessTable();
  const pid_t child = startChild({"/bin/true"});
  ASSERT_TRUE(eventually([&] {
    std::ifstream stat(absl::StrCat("/proc/", child, "/stat"));
    std::string line;
    std::getline(stat, line);
    return line.find(") Z ") != std::string::npos;
  }));
  EXPECT_FALSE(find(*table, child).has_value());
  waitpid(child, nullptr, 0);
}

// Verifies the stat parser against a hand-made /proc: a name holding spaces
// and ')' is read whole; entries that are not processes are skipped.
TEST(ProcessTableTest, ParsesAwkwardNames) {
  TempDir root("proc");
  const auto process = [&](const std::string& pid, const std::string& stat,
                           const std::string& cmdline) {
    std::filesystem::create_directory(root.file(pid));
    std::ofstream(root.file(pid + "/stat")) << stat;
    std::ofstream(root.file(pid + "/cmdline")) << cmdline;
  };
  process("10", "10 (my (odd) name) S 1 10 10 0 -1", std::string("/opt/app\0--flag\0", 16));
  process("11", "11 (zombie) Z 10 11 11 0 -1", "");
  process("12", "garbage", "");
  std::filesystem::create_directory(root.file("self"));
  const ProcessTablePtr table = makeProcessTable(root.path());
  absl::StatusOr<std::vector<ProcessInfo>> processes = table->list();
  ASSERT_THAT(processes, IsOk());
  ASSERT_EQ(processes->size(), 1u);
  EXPECT_EQ((*processes)[0].pid, 10);
  EXPECT_EQ((*processes)[0].parent_pid, 1);
  EXPECT_EQ((*processes)[0].name, "my (odd) name");
  EXPECT_EQ((*processes)[0].argv0, "/opt/app");
}

// Verifies a missing /proc is an error, not an empty table.
TEST(ProcessTableTest, MissingProcIsAnError) {
  const ProcessTablePtr table = makeProcessTable("/nonexistent/proc");
  EXPECT_THAT(table->list(), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace credsync::hooks
