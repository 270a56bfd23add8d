#include "sidecar/common/memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace credsync {

bool releaseFreedMemory() {
#if defined(__GLIBC__)
  // 0: keep no padding at the top of the heap; also madvises free pages in
  // the middle of every arena, which plain free() never does.
  return malloc_trim(0) != 0;
#else
  return false;
#endif
}

}  // namespace credsync
