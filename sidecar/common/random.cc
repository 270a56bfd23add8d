#include "sidecar/common/random.h"

#include <cstring>
#include <random>

#include "sidecar/common/crypto.h"
#include "sidecar/common/mutex.h"

namespace credsync {
namespace {

class Mt19937Random : public Random {
 public:
  explicit Mt19937Random(uint64_t seed) : engine_(seed) {}
  double uniform() override {
    MutexLock lock(&mutex_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine_);
  }

 private:
  Mutex mutex_;
  std::mt19937_64 engine_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace

RandomPtr makeRandom() {
  const std::string bytes = crypto::randomBytes(sizeof(uint64_t));
  uint64_t seed;
  std::memcpy(&seed, bytes.data(), sizeof(seed));
  return makeSeededRandom(seed);
}

RandomPtr makeSeededRandom(uint64_t seed) { return std::make_unique<Mt19937Random>(seed); }

}  // namespace credsync
