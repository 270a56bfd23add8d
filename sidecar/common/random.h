#pragma once

#include <cstdint>
#include <memory>

#include "absl/time/time.h"

namespace credsync {

// Randomness for jitter (schedules, backoff). Injected so tests can pin it.
// Not for secrets or nonces: those use crypto::randomBytes. Thread-safe.
class Random {
 public:
  virtual ~Random() = default;
  // Uniform in [0, 1).
  virtual double uniform() = 0;

  // Uniform in [0, max); zero when max is not positive.
  absl::Duration uniformDuration(absl::Duration max) {
    if (max <= absl::ZeroDuration()) return absl::ZeroDuration();
    return max * uniform();
  }
};
using RandomPtr = std::unique_ptr<Random>;

// Seeded from OpenSSL's DRBG, so that pods started together spread out.
RandomPtr makeRandom();

// The same draws for the same seed: for simulations that must be
// reproducible (bench/fleet), never for a running sidecar.
RandomPtr makeSeededRandom(uint64_t seed);

}  // namespace credsync
