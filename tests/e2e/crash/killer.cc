// credsync-crash-killer: SIGKILLs a process in the middle of a publish.
//
//   credsync-crash-killer PID DIRECTORY DELAY_MICROSECONDS
//
// Watches DIRECTORY with inotify, prints "ready" once the watch is in place,
// and when a new timestamped data directory ("..YYYY_MM_DD_HH_MM_SS.N", the
// first step of credsync's publish) appears, waits DELAY_MICROSECONDS
// (busy, for precision) and sends SIGKILL to PID. Prints "killed NAME" and
// exits 0; exits 1 on SIGTERM before any such directory appeared. The
// driver (crash_consistency.test.mjs) uses it to land kills inside the few
// hundred microseconds a publish takes on tmpfs, which a timer in Node
// rarely hits.

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

bool isTimestampDirName(const char* name) {
  constexpr const char* kShape = "..dddd_dd_dd_dd_dd_dd.";
  const size_t shape_length = std::strlen(kShape);
  const size_t length = std::strlen(name);
  if (length <= shape_length) return false;
  for (size_t i = 0; i < length; ++i) {
    const char expected = i < shape_length ? kShape[i] : 'd';
    const bool ok = expected == 'd' ? (name[i] >= '0' && name[i] <= '9') : name[i] == expected;
    if (!ok) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: credsync-crash-killer PID DIRECTORY DELAY_MICROSECONDS\n");
    return 2;
  }
  const pid_t pid = static_cast<pid_t>(std::atol(argv[1]));
  const long delay_us = std::atol(argv[3]);
  const int inotify = ::inotify_init1(IN_CLOEXEC);
  if (inotify < 0 || ::inotify_add_watch(inotify, argv[2], IN_CREATE | IN_ONLYDIR) < 0) {
    std::fprintf(stderr, "credsync-crash-killer: inotify on %s: %s\n", argv[2],
                 std::strerror(errno));
    return 2;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  alignas(inotify_event) char buffer[8192];
  for (;;) {
    const ssize_t length = ::read(inotify, buffer, sizeof(buffer));
    if (length < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    for (ssize_t offset = 0; offset < length;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->len == 0 || (event->mask & IN_ISDIR) == 0 || !isTimestampDirName(event->name)) {
        continue;
      }
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(delay_us);
      while (std::chrono::steady_clock::now() < until) {
      }
      ::kill(pid, SIGKILL);
      std::printf("killed %s\n", event->name);
      std::fflush(stdout);
      return 0;
    }
  }
}
