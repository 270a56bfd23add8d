#include "sidecar/hooks/hook_runner.h"

#include <signal.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/logging.h"
#include "tests/common/eventually.h"
#include "tests/common/fake_hooks.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/temp_dir.h"

namespace credsync::hooks {
namespace {

using ::credsync::testing::eventually;
using ::credsync::testing::FakeCommandSpawner;
using ::credsync::testing::FakeProcessTable;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

config::HookConfig commandHook(std::string name, std::vector<std::string> profiles = {}) {
  config::HookConfig hook;
  hook.name = std::move(name);
  hook.kind = config::HookConfig::Kind::kCommand;
  hook.command = {"/bin/notify", hook.name};
  hook.profiles = std::move(profiles);
  return hook;
}

config::HookConfig signalHook(std::string name, std::string process, std::string pid_file = "") {
  config::HookConfig hook;
  hook.name = std::move(name);
  hook.kind = config::HookConfig::Kind::kSignal;
  hook.signal = SIGHUP;
  hook.process = std::move(process);
  hook.pid_file = std::move(pid_file);
  return hook;
}

using Script = FakeCommandSpawner::Script;

// A command that runs until `gate` is notified, without moving the clock.
Script gated(Notification* gate) {
  Script script;
  script.gate = gate;
  return script;
}
Script exitsWith(int code) {
  Script script;
  script.exit_code = code;
  return script;
}
Script runsFor(absl::Duration duration, bool ignores_sigterm = false) {
  Script script;
  script.runs_for = duration;
  script.ignores_sigterm = ignores_sigterm;
  return script;
}
Script failsToStart(absl::Status error) {
  Script script;
  script.spawn_error = std::move(error);
  return script;
}

struct HookRun {
  std::string hook;
  std::string result;
  absl::Duration took;
};

// A HookRunner on fakes and simulated time, recording what the observer and
// the log are told.
class HookRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::setSinkForTest([this](absl::string_view line) {
      MutexLock lock(&mutex_);
      log_.emplace_back(line);
    });
  }
  void TearDown() override {
    if (runner_ != nullptr) runner_->stop(absl::ZeroDuration());
    log::setSinkForTest(nullptr);
  }

  HookRunner& start(std::vector<config::HookConfig> hooks) {
    HookRunnerOptions options;
    options.output_directory = "/var/run/credsync";
    options.credentials_file = "/var/run/credsync/credentials.ini";
    options.path = "/usr/bin:/bin";
    runner_ = std::make_unique<HookRunner>(
        std::move(hooks), options, processes_, spawner_, clock_,
        [this](const std::string& hook, absl::string_view result, absl::Duration took) {
          MutexLock lock(&mutex_);
          runs_.push_back({hook, std::string(result), took});
        });
    runner_->start();
    return *runner_;
  }

  // One publish that changed `profiles` to `generation`, as the engine tells it.
  void publish(uint64_t generation, std::vector<std::string> profiles) {
    for (const std::string& profile : profiles) {
      runner_->onProfileChanged({profile, "LTAI-new", "LTAI-old", generation, absl::Now()});
    }
    runner_->onRoundFinished();
  }

  void settle() { ASSERT_TRUE(runner_->awaitIdleForTest(absl::Seconds(20))); }

  std::vector<HookRun> runs() {
    MutexLock lock(&mutex_);
    return runs_;
  }
  std::vector<std::string> results() {
    std::vector<std::string> out;
    for (const HookRun& run : runs()) out.push_back(run.hook + ":" + run.result);
    return out;
  }
  std::vector<std::string> logLines(absl::string_view containing) {
    MutexLock lock(&mutex_);
    std::vector<std::string> out;
    for (const std::string& line : log_) {
      if (absl::StrContains(line, containing)) out.push_back(line);
    }
    return out;
  }

  SimulatedTimeSource clock_;
  FakeProcessTable processes_;
  FakeCommandSpawner spawner_{clock_};
  std::unique_ptr<HookRunner> runner_;
  Mutex mutex_;
  std::vector<HookRun> runs_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> log_ ABSL_GUARDED_BY(mutex_);
};

// Verifies a command hook runs once after a publish, with exactly the
// documented environment, and is reported as ok.
TEST_F(HookRunnerTest, RunsCommandWithTheDocumentedEnvironment) {
  start({commandHook("notify")});
  publish(3, {"app", "reporting"});
  settle();
  const auto spawned = spawner_.spawned();
  ASSERT_EQ(spawned.size(), 1u);
  EXPECT_THAT(spawned[0].argv, ElementsAre("/bin/notify", "notify"));
  EXPECT_THAT(
      spawned[0].environment,
      UnorderedElementsAre("PATH=/usr/bin:/bin", "CREDSYNC_HOOK=notify", "CREDSYNC_GENERATION=3",
                           "CREDSYNC_CHANGED_PROFILES=app,reporting",
                           "CREDSYNC_OUTPUT_DIRECTORY=/var/run/credsync",
                           "CREDSYNC_CREDENTIALS_FILE=/var/run/credsync/credentials.ini"));
  EXPECT_THAT(results(), ElementsAre("notify:ok"));
  EXPECT_EQ(logLines("\"hook ran\"").size(), 1u);
}

// Verifies changes wait for the end of the round: onProfileChanged alone
// (under the engine's lock, mid-publish) starts nothing.
TEST_F(HookRunnerTest, WaitsForTheEndOfTheRound) {
  start({commandHook("notify")});
  runner_->onProfileChanged({"app", "LTAI-new", "", 1, absl::Now()});
  settle();
  EXPECT_THAT(spawner_.spawned(), IsEmpty());
  runner_->onRoundFinished();
  settle();
  EXPECT_EQ(spawner_.spawned().size(), 1u);
}

// Verifies changes that arrive while a hook runs make exactly one more run,
// with every profile they changed and the latest generation.
TEST_F(HookRunnerTest, CoalescesChangesWhileRunning) {
  Notification release;
  spawner_.push(gated(&release));
  spawner_.push(Script{});
  start({commandHook("notify")});
  publish(1, {"app"});
  ASSERT_TRUE(eventually([&] { return spawner_.spawned().size() == 1; }));
  publish(2, {"app"});
  publish(3, {"reporting"});
  publish(4, {"app"});
  release.Notify();
  settle();
  const auto spawned = spawner_.spawned();
  ASSERT_EQ(spawned.size(), 2u);
  EXPECT_THAT(spawned[1].environment, ::testing::Contains("CREDSYNC_GENERATION=4"));
  EXPECT_THAT(spawned[1].environment,
              ::testing::Contains("CREDSYNC_CHANGED_PROFILES=app,reporting"));
  EXPECT_THAT(results(), ElementsAre("notify:ok", "notify:ok"));
}

// Verifies `profiles` limits a hook to changes of those profiles, and its
// environment names only them.
TEST_F(HookRunnerTest, ProfilesSelectTheChangesAHookSees) {
  start({commandHook("only-b", {"b"})});
  publish(1, {"a"});
  settle();
  EXPECT_THAT(spawner_.spawned(), IsEmpty());
  publish(2, {"a", "b"});
  settle();
  ASSERT_EQ(spawner_.spawned().size(), 1u);
  EXPECT_THAT(spawner_.spawned()[0].environment,
              ::testing::Contains("CREDSYNC_CHANGED_PROFILES=b"));
}

// Verifies hooks run one at a time in their configured order, and one
// failing does not keep the next from running.
TEST_F(HookRunnerTest, RunsHooksInOrderDespiteFailures) {
  spawner_.push(exitsWith(2));
  spawner_.push(Script{});
  start({commandHook("first"), commandHook("second")});
  publish(1, {"app"});
  settle();
  const auto spawned = spawner_.spawned();
  ASSERT_EQ(spawned.size(), 2u);
  EXPECT_EQ(spawned[0].argv[1], "first");
  EXPECT_EQ(spawned[1].argv[1], "second");
  EXPECT_THAT(results(), ElementsAre("first:failed", "second:ok"));
  const auto failed = logLines("\"hook failed\"");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_THAT(failed[0], ::testing::HasSubstr("exit code 2"));
}

// Verifies a command past its timeout gets SIGTERM on its process group, then
// SIGKILL after the grace, and is reported as a timeout of that length.
TEST_F(HookRunnerTest, TimeoutTerminatesThenKillsTheGroup) {
  spawner_.push(runsFor(absl::Hours(1), /*ignores_sigterm=*/true));
  config::HookConfig hook = commandHook("slow");
  hook.timeout = absl::Seconds(30);
  start({hook});
  publish(1, {"app"});
  settle();
  EXPECT_THAT(spawner_.groupSignals(), ElementsAre(SIGTERM, SIGKILL));
  const auto all = runs();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].result, "timeout");
  EXPECT_EQ(all[0].took, absl::Seconds(35));  // the timeout and the 5 s grace
  EXPECT_THAT(logLines("\"hook failed\"")[0], ::testing::HasSubstr("timed out after 30s"));
}

// Verifies a command that ends on SIGTERM is not killed as well.
TEST_F(HookRunnerTest, TimeoutEndsWithSigtermWhenThatSuffices) {
  spawner_.push(runsFor(absl::Hours(1)));
  start({commandHook("slow")});
  publish(1, {"app"});
  settle();
  EXPECT_THAT(spawner_.groupSignals(), ElementsAre(SIGTERM));
  EXPECT_THAT(results(), ElementsAre("slow:timeout"));
  EXPECT_EQ(runs()[0].took, absl::Seconds(30));  // the default timeout
}

// Verifies a command that cannot be started is a failed run.
TEST_F(HookRunnerTest, SpawnErrorIsAFailedRun) {
  spawner_.push(failsToStart(absl::NotFoundError("cannot start /bin/notify: No such file")));
  start({commandHook("notify")});
  publish(1, {"app"});
  settle();
  EXPECT_THAT(results(), ElementsAre("notify:failed"));
  EXPECT_THAT(logLines("\"hook failed\"")[0], ::testing::HasSubstr("No such file"));
}

// Verifies stop() gives a running command the grace, then ends it, and runs
// nothing that was still pending.
TEST_F(HookRunnerTest, StopEndsARunningCommandAfterTheGrace) {
  Notification never;
  spawner_.push(gated(&never));
  start({commandHook("stuck"), commandHook("next")});
  publish(1, {"app"});
  ASSERT_TRUE(eventually([&] { return spawner_.spawned().size() == 1; }));
  std::thread stopper([&] { runner_->stop(absl::Seconds(2)); });
  // The command is still given its grace: nothing is signalled yet.
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_THAT(spawner_.groupSignals(), IsEmpty());
  clock_.advance(absl::Seconds(3));
  stopper.join();
  EXPECT_THAT(spawner_.groupSignals(), ElementsAre(SIGTERM));
  EXPECT_THAT(results(), ElementsAre("stuck:failed"));
  EXPECT_EQ(spawner_.spawned().size(), 1u);  // "next" never ran
  never.Notify();
}

// Verifies a signal hook by name signals the topmost matching process of
// each tree (a master, not its workers), never pid 1 or credsync itself,
// and matches the base name of argv[0] too.
TEST_F(HookRunnerTest, SignalsTheTopmostMatchingProcesses) {
  processes_.add(1, 0, "nginx");                        // pid 1 (pause, or similar): never
  processes_.add(7, 1, "nginx");                        // credsync itself: never
  processes_.add(10, 1, "nginx");                       // master
  processes_.add(11, 10, "nginx");                      // worker
  processes_.add(12, 10, "nginx");                      // worker
  processes_.add(20, 1, "sh", "/usr/local/bin/nginx");  // a wrapper named nginx
  processes_.add(30, 1, "nginx-exporter");              // not an exact match
  start({signalHook("reload", "nginx")});
  publish(1, {"app"});
  settle();
  EXPECT_THAT(processes_.signalled(), UnorderedElementsAre(std::pair<pid_t, int>{10, SIGHUP},
                                                           std::pair<pid_t, int>{20, SIGHUP}));
  EXPECT_THAT(results(), ElementsAre("reload:ok"));
  EXPECT_THAT(logLines("\"hook ran\"")[0], ::testing::HasSubstr("SIGHUP sent to pid"));
}

// Verifies no matching process is a no_process run: at info on the hook's
// first run (the app usually starts after the first write), a warning later.
TEST_F(HookRunnerTest, NoProcessIsQuietOnlyOnTheFirstRun) {
  processes_.add(1, 0, "pause");
  start({signalHook("reload", "nginx")});
  publish(1, {"app"});
  settle();
  EXPECT_EQ(logLines("\"level\":\"info\"").size(), 1u);
  EXPECT_THAT(logLines("no process to signal"), ::testing::SizeIs(1));
  publish(2, {"app"});
  settle();
  EXPECT_THAT(results(), ElementsAre("reload:no_process", "reload:no_process"));
  const auto warnings = logLines("\"hook failed\"");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], ::testing::HasSubstr("no process named nginx"));
}

// Verifies a refused signal (another user's process) is a failed run.
TEST_F(HookRunnerTest, RefusedSignalIsAFailedRun) {
  processes_.add(10, 1, "nginx");
  processes_.failSignal(10, absl::PermissionDeniedError("kill(10, 1): Operation not permitted"));
  start({signalHook("reload", "nginx")});
  publish(1, {"app"});
  settle();
  EXPECT_THAT(results(), ElementsAre("reload:failed"));
  EXPECT_THAT(logLines("\"hook failed\"")[0], ::testing::HasSubstr("Operation not permitted"));
}

// Verifies the pid-file target: the pid is signalled; a missing file or a
// process gone since is no_process; a file without a pid, pid 1 or
// credsync's own pid fail.
TEST_F(HookRunnerTest, PidFileTargets) {
  TempDir dir("hooks");
  const auto write = [&](const std::string& content) {
    std::ofstream(dir.file("app.pid"), std::ios::trunc) << content;
  };
  processes_.failSignal(99, absl::NotFoundError("kill(99, 1): No such process"));
  start({signalHook("reload", "", dir.file("app.pid"))});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"42\n", "ok"},  {"", "failed"},  {"abc", "failed"},
      {"1", "failed"}, {"7", "failed"}, {"99", "no_process"}};
  uint64_t generation = 0;
  publish(++generation, {"app"});  // the file does not exist yet
  settle();
  for (const auto& [content, result] : cases) {
    write(content);
    publish(++generation, {"app"});
    settle();
  }
  EXPECT_THAT(results(),
              ElementsAre("reload:no_process", "reload:ok", "reload:failed", "reload:failed",
                          "reload:failed", "reload:failed", "reload:no_process"));
  EXPECT_THAT(processes_.signalled(), ElementsAre(std::pair<pid_t, int>{42, SIGHUP}));
}

// Verifies no thread is started, and nothing is recorded, without hooks.
TEST_F(HookRunnerTest, NoHooksNoWork) {
  start({});
  publish(1, {"app"});
  EXPECT_TRUE(runner_->awaitIdleForTest(absl::ZeroDuration()));
  EXPECT_THAT(runs(), IsEmpty());
}

}  // namespace
}  // namespace credsync::hooks
