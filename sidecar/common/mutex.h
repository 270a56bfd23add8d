#pragma once

// credsync::Mutex, MutexLock, CondVar, Condition and Notification: the
// synchronisation every credsync component and test uses.
//
// In every normal build these are aliases of the abseil types, so they cost
// nothing and clang's -Wthread-safety checks ABSL_GUARDED_BY against them.
//
// Under ThreadSanitizer (the CREDSYNC_TSAN define, set by -DCREDSYNC_TSAN=ON)
// they are a small implementation on std::mutex and std::condition_variable.
// Why: Debian's libabsl is not compiled with -fsanitize=thread, and
// absl::Mutex synchronises through futexes inside that library, so TSan sees
// none of its happens-before edges and reports every field it guards as a data
// race. std::mutex goes through pthread, which TSan intercepts. The
// implementation keeps abseil's semantics for what credsync uses (conditions
// are re-evaluated whenever the mutex is released) and abseil's lock
// annotations, so a clang TSan build still runs the thread-safety analysis.
// It is not meant to be fast; only the TSan tree compiles it.

#ifndef CREDSYNC_TSAN

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace credsync {

using Mutex = absl::Mutex;
using MutexLock = absl::MutexLock;
using CondVar = absl::CondVar;
using Condition = absl::Condition;
using Notification = absl::Notification;

}  // namespace credsync

#else  // CREDSYNC_TSAN

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace credsync {

// A predicate over state guarded by the mutex it is awaited on; evaluated only
// with that mutex held. Same constructors as absl::Condition that credsync uses.
class Condition {
 public:
  // A function and its argument: Condition(&Class::predicate, this).
  template <typename T>
  Condition(bool (*func)(T*), std::type_identity_t<T>* arg)
      : eval_(&callFunction<T>), function_(reinterpret_cast<void (*)()>(func)), arg_(arg) {}

  // A pointer to a callable (usually a lambda) that outlives the wait.
  template <typename T, typename = decltype(static_cast<bool>(std::declval<const T&>()()))>
  explicit Condition(const T* callable) : eval_(&callObject<T>), arg_(callable) {}

  // A flag guarded by the mutex.
  explicit Condition(const bool* flag) : eval_(&readFlag), arg_(flag) {}

  bool Eval() const { return eval_(*this); }

 private:
  // The predicates require the mutex, which the analysis cannot see through a
  // type-erased call; Mutex::Await only evaluates them with it held.
  template <typename T>
  static bool callFunction(const Condition& c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto* func = reinterpret_cast<bool (*)(T*)>(c.function_);
    return func(static_cast<T*>(const_cast<void*>(c.arg_)));
  }
  template <typename T>
  static bool callObject(const Condition& c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return static_cast<bool>((*static_cast<const T*>(c.arg_))());
  }
  static bool readFlag(const Condition& c) { return *static_cast<const bool*>(c.arg_); }

  bool (*eval_)(const Condition&);
  void (*function_)() = nullptr;
  const void* arg_;
};

class CondVar;

// An exclusive mutex with abseil's conditional waits.
class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mutex_.lock();
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }

  // Like absl::Mutex, releasing the lock lets every waiter re-evaluate its
  // condition. Waiters are woken before the unlock, so nothing here touches
  // the object once another thread may own (and destroy) it.
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    owner_.store(std::thread::id(), std::memory_order_relaxed);
    if (waiters_ > 0) waiters_changed_.notify_all();
    mutex_.unlock();
  }

  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {
    if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
      std::fputs("credsync::Mutex::AssertHeld: mutex not held by this thread\n", stderr);
      std::abort();
    }
  }

  // Releases the mutex until `condition` holds, then returns with it held.
  void Await(const Condition& condition) {
    AssertHeld();
    std::unique_lock<std::mutex> lock = adopt();
    ++waiters_;
    if (waiters_ > 1) waiters_changed_.notify_all();  // our changes may satisfy others
    waiters_changed_.wait(lock, [&] { return evaluateHeld(condition); });
    --waiters_;
    release(std::move(lock));
  }

  // As Await, giving up after `timeout`; returns whether `condition` holds.
  bool AwaitWithTimeout(const Condition& condition, absl::Duration timeout) {
    AssertHeld();
    std::unique_lock<std::mutex> lock = adopt();
    ++waiters_;
    if (waiters_ > 1) waiters_changed_.notify_all();
    // Capped so that libstdc++'s now() + timeout cannot overflow.
    const absl::Duration bounded = std::clamp(timeout, absl::ZeroDuration(), kLongestWait);
    const bool satisfied = waiters_changed_.wait_for(lock, absl::ToChronoNanoseconds(bounded),
                                                     [&] { return evaluateHeld(condition); });
    --waiters_;
    release(std::move(lock));
    return satisfied;
  }

 private:
  friend class CondVar;

  static constexpr absl::Duration kLongestWait = absl::Hours(24 * 365);

  // Hands the held std::mutex to a std::unique_lock for a condition-variable
  // wait, and takes it back after.
  std::unique_lock<std::mutex> adopt() {
    owner_.store(std::thread::id(), std::memory_order_relaxed);
    return std::unique_lock<std::mutex>(mutex_, std::adopt_lock);
  }
  void release(std::unique_lock<std::mutex> lock) {
    lock.release();
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  // The condition-variable wait evaluates the predicate with the std::mutex
  // re-acquired; a predicate may AssertHeld, so record the owner first.
  bool evaluateHeld(const Condition& condition) {
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    return condition.Eval();
  }

  std::mutex mutex_;
  std::condition_variable waiters_changed_;
  int waiters_ = 0;  // threads in Await*; guarded by mutex_
  std::atomic<std::thread::id> owner_{};
};

// Holds a Mutex for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ABSL_EXCLUSIVE_LOCK_FUNCTION(mutex) : mutex_(mutex) {
    mutex_->Lock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mutex_->Unlock(); }

 private:
  Mutex* const mutex_;
};

// A condition variable over a Mutex.
class CondVar {
 public:
  // Releases `mutex` (held) until signalled; spurious wakeups are possible.
  void Wait(Mutex* mutex) {
    mutex->AssertHeld();
    std::unique_lock<std::mutex> lock = mutex->adopt();
    // Releasing the mutex lets Await waiters re-evaluate, as in abseil.
    if (mutex->waiters_ > 0) mutex->waiters_changed_.notify_all();
    signalled_.wait(lock);
    mutex->release(std::move(lock));
  }
  void Signal() { signalled_.notify_one(); }
  void SignalAll() { signalled_.notify_all(); }

 private:
  std::condition_variable signalled_;
};

// A one-shot event: Notify once, then every wait returns.
class Notification {
 public:
  Notification() = default;
  Notification(const Notification&) = delete;
  Notification& operator=(const Notification&) = delete;

  void Notify() {
    MutexLock lock(&mutex_);
    notified_.store(true, std::memory_order_release);
  }
  bool HasBeenNotified() const { return notified_.load(std::memory_order_acquire); }
  void WaitForNotification() const {
    MutexLock lock(&mutex_);
    mutex_.Await(Condition(&Notification::notified, this));
  }
  bool WaitForNotificationWithTimeout(absl::Duration timeout) const {
    MutexLock lock(&mutex_);
    return mutex_.AwaitWithTimeout(Condition(&Notification::notified, this), timeout);
  }

 private:
  static bool notified(const Notification* self) { return self->HasBeenNotified(); }

  mutable Mutex mutex_;
  std::atomic<bool> notified_{false};
};

}  // namespace credsync

#endif  // CREDSYNC_TSAN
