#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "sidecar/common/mutex.h"
#include "sidecar/config/config.h"
#include "sidecar/fetch/secret_source.h"
#include "sidecar/sync/change_feed.h"
#include "sidecar/sync/refresh_coordinator.h"
#include "sidecar/sync/sync_engine.h"
#include "tests/common/fake_output_writer.h"
#include "tests/common/fake_random.h"
#include "tests/common/fake_secret_source.h"
#include "tests/common/simulated_time_source.h"

namespace credsync::testing {

using KmsScript = std::deque<absl::StatusOr<fetch::ManagedCredential>>;

// A SyncEngine over a scripted KMS and an in-memory writer, with a
// RefreshCoordinator, a ChangeFeed listening to the engine, and a driver
// thread that runs what is due whenever the coordinator wakes it, as
// SyncRunner does in production. Link credsync_sync.
class SyncHarness {
 public:
  explicit SyncHarness(config::Config config) : config_(std::move(config)) {}
  ~SyncHarness() { stopDriver(); }
  SyncHarness(const SyncHarness&) = delete;
  SyncHarness& operator=(const SyncHarness&) = delete;

  // Scripts each profile's answers, builds the engine, runs the first round
  // of fetches on this thread and starts the driver.
  void start(const std::map<std::string, KmsScript>& first_answers) {
    for (const auto& [profile, answers] : first_answers) kmsAnswers(profile, answers);
    engine_ = std::make_unique<sync::SyncEngine>(config_, source_, writer_, time_, random_);
    engine_->addListener(&feed_);
    engine_->runDue();
    coordinator_ = std::make_unique<sync::RefreshCoordinator>(
        *engine_, config_.refresh, time_,
        [this] {
          MutexLock lock(&mutex_);
          ++wakes_;
        },
        [this] { ++memory_releases_; });
    driver_ = std::thread([this] { drive(); });
  }

  // Scripts what KMS answers for `profile` from now on; the last answer
  // repeats.
  void kmsAnswers(const std::string& profile, KmsScript answers) {
    MutexLock lock(&source_.mutex);
    source_.script[profile] = std::move(answers);
  }

  // Makes `profile` due now and wakes the driver, as the scheduler would
  // when its refresh time comes.
  void refreshNow(const std::string& profile) {
    engine_->requestRefreshForTest(profile);
    MutexLock lock(&mutex_);
    ++wakes_;
  }

  // Stops the driver thread: from then on nothing fetches. Idempotent.
  void stopDriver() {
    {
      MutexLock lock(&mutex_);
      stopping_ = true;
    }
    if (driver_.joinable()) driver_.join();
  }

  const config::Config& config() const { return config_; }
  FakeSecretSource& source() { return source_; }
  FakeWriter& writer() { return writer_; }
  SimulatedTimeSource& time() { return time_; }
  sync::ChangeFeed& feed() { return feed_; }
  sync::SyncEngine& engine() { return *engine_; }
  sync::RefreshCoordinator& coordinator() { return *coordinator_; }
  // How often the coordinator asked to release freed memory.
  int memoryReleases() const { return memory_releases_.load(); }

 private:
  void drive() {
    while (true) {
      {
        MutexLock lock(&mutex_);
        const auto woken_or_stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
          return stopping_ || wakes_ > 0;
        };
        mutex_.Await(Condition(&woken_or_stopping));
        if (stopping_) return;
        wakes_ = 0;
      }
      engine_->runDue();
    }
  }

  const config::Config config_;
  FakeSecretSource source_;
  FakeWriter writer_;
  SimulatedTimeSource time_;
  FakeRandom random_;
  // Outlives the engine, which holds it as a listener.
  sync::ChangeFeed feed_;
  std::unique_ptr<sync::SyncEngine> engine_;
  std::unique_ptr<sync::RefreshCoordinator> coordinator_;
  std::atomic<int> memory_releases_{0};
  Mutex mutex_;
  int wakes_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread driver_;
};

}  // namespace credsync::testing
