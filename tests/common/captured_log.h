#pragma once

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"

namespace credsync::testing {

// Captures every log line written while it lives, instead of stderr, so a
// test can assert what was logged (and that no secret was). One at a time:
// the log sink is process-wide. Thread-safe.
class CapturedLog {
 public:
  CapturedLog() {
    log::setSinkForTest([this](absl::string_view line) {
      MutexLock lock(&mutex_);
      lines_.emplace_back(line);
    });
  }
  ~CapturedLog() { log::setSinkForTest(nullptr); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  std::vector<std::string> lines() const {
    MutexLock lock(&mutex_);
    return lines_;
  }

  // The lines of one level: "debug", "info", "warn" or "error".
  std::vector<std::string> linesAt(absl::string_view level) const {
    const std::string marker = absl::StrCat(R"("level":")", level, R"(")");
    std::vector<std::string> found;
    for (std::string& line : lines()) {
      if (absl::StrContains(line, marker)) found.push_back(std::move(line));
    }
    return found;
  }

 private:
  mutable Mutex mutex_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::testing
