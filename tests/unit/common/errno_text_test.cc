#include "sidecar/common/errno_text.h"

#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace credsync {
namespace {

// Verifies the text of a few errno values, and an unknown one.
TEST(ErrnoTextTest, TextOfErrnoValues) {
  EXPECT_EQ(errnoText(ENOENT), "No such file or directory");
  EXPECT_EQ(errnoText(EACCES), "Permission denied");
  EXPECT_EQ(errnoText(123456), "Unknown error 123456");
}

// Verifies threads asking for different values at once each get their own
// text (what std::strerror does not promise).
TEST(ErrnoTextTest, EachThreadGetsItsOwnText) {
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &wrong] {
      const int error = t % 2 == 0 ? ENOENT : 100000 + t;
      const std::string want =
          t % 2 == 0 ? "No such file or directory" : "Unknown error " + std::to_string(error);
      for (int i = 0; i < 2000; ++i) {
        if (errnoText(error) != want) ++wrong[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(wrong[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace credsync
