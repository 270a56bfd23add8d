#pragma once

#include <cstddef>

// The process's file descriptor budget. Publishing credentials needs
// descriptors (a KMS connection, a temporary file, the directory), so every
// listener refuses or sheds connections before the process runs out: a
// client opening connections without limit must never stop a rotation.
namespace credsync {

// Descriptors kept free for fetching and publishing, whatever clients do.
inline constexpr size_t kDescriptorReserve = 256;

// Raises the soft RLIMIT_NOFILE to the hard limit (as Go's runtime does):
// a container runtime's default soft limit (1024) is far below what its hard
// limit allows. Returns the soft limit in force afterwards.
size_t raiseDescriptorLimit();

// The soft RLIMIT_NOFILE now.
size_t descriptorLimit();

// True when a descriptor numbered `fd`, just returned by accept(), leaves
// the reserve untouched. New descriptors take the lowest free number, so
// fd >= limit - reserve means fewer than `reserve` remain free.
bool leavesDescriptorReserve(int fd);

}  // namespace credsync
