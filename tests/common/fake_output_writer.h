#pragma once

#include <map>
#include <string>

#include "sidecar/output/atomic_writer.h"

namespace credsync::testing {

// Keeps the published files in memory, like the atomic writer would on disk.
class FakeWriter : public output::OutputWriter {
 public:
  absl::StatusOr<output::PublishResult> publish(
      const std::map<std::string, SecretString>& files) override {
    ++publishes;
    if (!fail_next.ok()) {
      absl::Status error = fail_next;
      fail_next = absl::OkStatus();
      return error;
    }
    const std::string content = files.at("credentials.ini").reveal();
    if (content == current) return output::PublishResult{false, generation_};
    current = content;
    return output::PublishResult{true, ++generation_};
  }
  uint64_t generation() const override { return generation_; }

  int publishes = 0;
  std::string current;
  absl::Status fail_next;

 private:
  uint64_t generation_ = 0;
};

}  // namespace credsync::testing
