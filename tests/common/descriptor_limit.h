#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "sidecar/common/descriptors.h"

namespace credsync::testing {

// Lowers the process's soft RLIMIT_NOFILE for a scope and restores it.
class ScopedDescriptorLimit {
 public:
  explicit ScopedDescriptorLimit(rlim_t soft) {
    EXPECT_EQ(getrlimit(RLIMIT_NOFILE, &saved_), 0);
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    EXPECT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  }
  ~ScopedDescriptorLimit() { setrlimit(RLIMIT_NOFILE, &saved_); }
  ScopedDescriptorLimit(const ScopedDescriptorLimit&) = delete;
  ScopedDescriptorLimit& operator=(const ScopedDescriptorLimit&) = delete;

  const rlimit& saved() const { return saved_; }

 private:
  rlimit saved_{};
};

// The soft limit under which a server's next accept falls inside the
// descriptor reserve: a client's socket takes the lowest free descriptor,
// so the server's accept gets a higher one, at or past limit - reserve.
inline rlim_t limitPuttingTheNextAcceptInTheReserve() {
  const int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(lowest, 0);
  close(lowest);
  return static_cast<rlim_t>(lowest) + 1 + kDescriptorReserve;
}

}  // namespace credsync::testing
