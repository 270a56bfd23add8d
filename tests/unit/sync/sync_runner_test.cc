#include "sidecar/sync/sync_runner.h"

#include <atomic>

#include "gtest/gtest.h"
#include "sidecar/common/time_source.h"
#include "tests/common/fake_random.h"
#include "tests/common/test_config.h"

namespace credsync::sync {
namespace {

using ::credsync::testing::configWithProfiles;
using ::credsync::testing::profile;

// Counts fetches; always fails retryably, so the engine keeps the runner busy
// with short backoffs.
class CountingSource : public fetch::SecretSource {
 public:
  absl::StatusOr<fetch::ManagedCredential> fetch(const config::ProfileConfig&) override {
    ++calls;
    fetch::ManagedCredential credential;
    credential.access_key_id = "AK";
    credential.access_key_secret = SecretString("secret");
    return credential;
  }
  std::atomic<int> calls{0};
};

class MemoryWriter : public output::OutputWriter {
 public:
  absl::StatusOr<output::PublishResult> publish(
      const std::map<std::string, SecretString>&) override {
    return output::PublishResult{true, ++generation_};
  }
  uint64_t generation() const override { return generation_; }

 private:
  uint64_t generation_ = 0;
};

// Verifies runUntil returns as soon as the condition holds, after the first
// due fetch, without waiting for the next refresh an hour away.
TEST(SyncRunnerTest, RunUntilStopsWhenDone) {
  RealTimeSource time;
  testing::FakeRandom random;
  CountingSource source;
  MemoryWriter writer;
  const config::Config config = configWithProfiles({profile("default", "s", /*is_default=*/true)});
  SyncEngine engine(config, source, writer, time, random);
  SyncRunner runner(engine, time);
  EXPECT_TRUE(runner.runUntil([&] { return engine.allWritten(); }, absl::Seconds(30)));
  EXPECT_EQ(source.calls, 1);
}

// Verifies a started runner fetches what is due, moves its heartbeat, and
// stops promptly although the next refresh is an hour away.
TEST(SyncRunnerTest, StartFetchesAndStopIsPrompt) {
  RealTimeSource time;
  testing::FakeRandom random;
  CountingSource source;
  MemoryWriter writer;
  const config::Config config = configWithProfiles({profile("default", "s", /*is_default=*/true)});
  SyncEngine engine(config, source, writer, time, random);
  SyncRunner runner(engine, time);
  const MonotonicTime before = time.monotonicTime();
  runner.start();
  // The loop's first pass fetches at once; wake() only hurries it.
  runner.wake();
  while (!engine.allWritten()) std::this_thread::yield();
  runner.stop();
  EXPECT_EQ(source.calls, 1);
  EXPECT_GE(runner.heartbeat(), before);
}

// Verifies a refresh request wakes an idle runner at once.
TEST(SyncRunnerTest, WakeRunsRequestedRefresh) {
  RealTimeSource time;
  testing::FakeRandom random;
  CountingSource source;
  MemoryWriter writer;
  const config::Config config = configWithProfiles({profile("default", "s", /*is_default=*/true)});
  SyncEngine engine(config, source, writer, time, random);
  SyncRunner runner(engine, time);
  runner.start();
  while (source.calls < 1) std::this_thread::yield();
  engine.requestRefreshForTest("default");
  runner.wake();
  while (source.calls < 2) std::this_thread::yield();
  runner.stop();
  EXPECT_EQ(source.calls, 2);
}

}  // namespace
}  // namespace credsync::sync
