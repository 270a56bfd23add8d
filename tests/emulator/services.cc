#include "tests/emulator/services.h"

namespace credsync::emulator {

std::string formatIso8601(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

}  // namespace credsync::emulator
