#include "sidecar/common/errno_text.h"

#include <string.h>

namespace credsync {

std::string errnoText(int error) {
  char buffer[256];
  // The GNU strerror_r (glibc with _GNU_SOURCE, as g++ and clang++ compile
  // C++): it returns the text, in `buffer` or in static storage.
  return std::string(strerror_r(error, buffer, sizeof(buffer)));
}

}  // namespace credsync
