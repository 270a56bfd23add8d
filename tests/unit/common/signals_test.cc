#include "sidecar/common/signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <thread>

#include "gtest/gtest.h"

namespace credsync {
namespace {

bool blockedInThisThread(int signal_number) {
  sigset_t current;
  sigemptyset(&current);
  pthread_sigmask(SIG_BLOCK, nullptr, &current);
  return sigismember(&current, signal_number) == 1;
}

// Every test blocks first (it is idempotent): a stop signal raised while it
// is not blocked would end the test binary, which fails the test loudly.
class SignalsTest : public ::testing::Test {
 protected:
  void SetUp() override { blockStopSignals(); }
};

// Verifies SIGTERM and SIGINT are blocked in the caller and in threads it
// starts later, and SIGPIPE is ignored, while other signals are untouched.
TEST_F(SignalsTest, BlocksStopSignalsAndIgnoresSigpipe) {
  EXPECT_TRUE(blockedInThisThread(SIGTERM));
  EXPECT_TRUE(blockedInThisThread(SIGINT));
  EXPECT_FALSE(blockedInThisThread(SIGHUP));
  bool term_in_thread = false;
  bool int_in_thread = false;
  std::thread([&] {
    term_in_thread = blockedInThisThread(SIGTERM);
    int_in_thread = blockedInThisThread(SIGINT);
  }).join();
  EXPECT_TRUE(term_in_thread);
  EXPECT_TRUE(int_in_thread);

  struct sigaction pipe_action {};
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &pipe_action), 0);
  EXPECT_EQ(pipe_action.sa_handler, SIG_IGN);
  // A write to a pipe nobody reads fails with EPIPE instead of killing us.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  EXPECT_EQ(write(fds[1], "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  close(fds[1]);
}

// Verifies waitForStopSignalFor answers nullopt when no stop signal is
// pending, and the pending signal's number when one is, consuming it.
TEST_F(SignalsTest, WaitForReturnsPendingSignal) {
  EXPECT_EQ(waitForStopSignalFor(absl::ZeroDuration()), std::nullopt);
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  EXPECT_EQ(waitForStopSignalFor(absl::ZeroDuration()), SIGTERM);
  EXPECT_EQ(waitForStopSignalFor(absl::ZeroDuration()), std::nullopt);
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  EXPECT_EQ(waitForStopSignalFor(absl::Seconds(30)), SIGINT);
}

// Verifies waitForStopSignalFor leaves other signals alone.
TEST_F(SignalsTest, WaitForIgnoresOtherSignals) {
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &usr1, nullptr), 0);
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  EXPECT_EQ(waitForStopSignalFor(absl::ZeroDuration()), std::nullopt);
  sigset_t pending;
  sigemptyset(&pending);
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_EQ(sigismember(&pending, SIGUSR1), 1);
  int received = 0;
  ASSERT_EQ(sigwait(&usr1, &received), 0);  // drain it
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr), 0);
}

// Verifies waitForStopSignal returns the stop signal another thread sends.
TEST_F(SignalsTest, WaitReturnsSignalSentLater) {
  std::thread sender([] { kill(getpid(), SIGINT); });
  EXPECT_EQ(waitForStopSignal(), SIGINT);
  sender.join();
}

}  // namespace
}  // namespace credsync
