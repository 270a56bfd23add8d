#pragma once

#include <atomic>

#include "sidecar/common/random.h"

namespace credsync::testing {

// Always draws the same value (default 0.5, the middle of every jitter range)
// and counts the draws, for code that must draw once per event (a session's
// jitter), not once per call. Thread-safe.
class FakeRandom : public Random {
 public:
  explicit FakeRandom(double value = 0.5) : value_(value) {}
  double uniform() override {
    ++draws_;
    return value_.load();
  }
  void set(double value) { value_ = value; }
  int draws() const { return draws_.load(); }

 private:
  std::atomic<double> value_;
  std::atomic<int> draws_{0};
};

}  // namespace credsync::testing
