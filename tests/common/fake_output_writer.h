#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "sidecar/common/mutex.h"
#include "sidecar/output/atomic_writer.h"

namespace credsync::testing {

// Keeps the published set of files in memory, like the atomic writer would on
// disk: a publish replaces the whole set, and an identical set is no change.
// Thread-safe like the real writer: the engine publishes from its thread while
// a test (or a gRPC handler's client) reads what was written.
class FakeWriter : public output::OutputWriter {
 public:
  absl::StatusOr<output::PublishResult> publish(
      const std::map<std::string, SecretString>& files) override {
    MutexLock lock(&mutex_);
    ++publishes_;
    if (!fail_next_.ok()) {
      absl::Status error = fail_next_;
      fail_next_ = absl::OkStatus();
      return error;
    }
    std::map<std::string, std::string> set;
    for (const auto& [name, content] : files) set[name] = content.reveal();
    if (set == files_) return output::PublishResult{false, generation_};
    files_ = std::move(set);
    return output::PublishResult{true, ++generation_};
  }
  uint64_t generation() const override {
    MutexLock lock(&mutex_);
    return generation_;
  }

  // The content of credentials.ini as last published ("" before the first,
  // or when the set has none).
  std::string current() const {
    MutexLock lock(&mutex_);
    const auto it = files_.find("credentials.ini");
    return it == files_.end() ? "" : it->second;
  }
  // Every file of the set last published, by name.
  std::map<std::string, std::string> files() const {
    MutexLock lock(&mutex_);
    return files_;
  }
  // How many times publish was called, failed ones included.
  int publishes() const {
    MutexLock lock(&mutex_);
    return publishes_;
  }
  // Makes the next publish fail with `error` and write nothing.
  void failNext(absl::Status error) {
    MutexLock lock(&mutex_);
    fail_next_ = std::move(error);
  }

 private:
  mutable Mutex mutex_;
  int publishes_ ABSL_GUARDED_BY(mutex_) = 0;
  std::map<std::string, std::string> files_ ABSL_GUARDED_BY(mutex_);
  absl::Status fail_next_ ABSL_GUARDED_BY(mutex_);
  uint64_t generation_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace credsync::testing
