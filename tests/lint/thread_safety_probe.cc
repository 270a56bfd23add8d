// Compiled by tests/lint/check_thread_safety.sh with clang's -Wthread-safety
// -Werror, the flags of the clang tree, to show the check is live: with
// CREDSYNC_PROBE_VIOLATION defined it must fail (a guarded field read without
// its lock), without it it must compile. If the first compiles, the
// annotations credsync relies on are not being checked.
#include "sidecar/common/mutex.h"

namespace {

class Counter {
 public:
  void add() {
    credsync::MutexLock lock(&mutex_);
    ++value_;
  }
  int read() {
#ifdef CREDSYNC_PROBE_VIOLATION
    return value_;
#else
    credsync::MutexLock lock(&mutex_);
    return value_;
#endif
  }

 private:
  credsync::Mutex mutex_;
  int value_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace

int main() {
  Counter counter;
  counter.add();
  return counter.read() == 1 ? 0 : 1;
}
