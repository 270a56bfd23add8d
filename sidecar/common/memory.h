#pragma once

#include <cstddef>

namespace credsync {

// Hands memory the allocator holds free back to the operating system. After
// a burst (a thousand Refresh callers answered at once), glibc keeps the
// freed gRPC call state in its heaps, fragmented, so resident memory would
// stay at the burst's peak for the life of the pod: 36 -> 21 MiB after such a
// burst in bench/run (P4). Returns whether the allocator released anything;
// a no-op (false) with allocators other than glibc's.
bool releaseFreedMemory();

}  // namespace credsync
