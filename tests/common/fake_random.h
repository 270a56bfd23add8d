#pragma once

#include "sidecar/common/random.h"

namespace credsync::testing {

// Always draws the same value (default 0.5, the middle of every jitter range).
class FakeRandom : public Random {
 public:
  explicit FakeRandom(double value = 0.5) : value_(value) {}
  double uniform() override { return value_; }
  void set(double value) { value_ = value; }

 private:
  double value_;
};

}  // namespace credsync::testing
