#include "sidecar/common/time_source.h"

namespace credsync {

absl::Time RealTimeSource::systemTime() const {
  return absl::FromChrono(std::chrono::system_clock::now());
}

MonotonicTime RealTimeSource::monotonicTime() const { return std::chrono::steady_clock::now(); }

}  // namespace credsync
