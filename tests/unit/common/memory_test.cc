#include "sidecar/common/memory.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "gtest/gtest.h"

namespace credsync {
namespace {

// Resident memory of this process, from /proc/self/statm.
long residentBytes() {
  long size = 0;
  long resident = 0;
  std::ifstream("/proc/self/statm") >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Tells the optimiser `block` is used, so the mallocs, the writes and the
// frees below happen (at -O2 GCC may drop a malloc/free pair whose memory
// nothing reads).
void keep(const void* block) { asm volatile("" : : "r"(block) : "memory"); }

bool underSanitizer() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// Verifies that memory freed in the middle of the heap, which glibc keeps
// resident on its own, goes back to the system: the burst case of
// RefreshCoordinator. A live block above it keeps the heap's top in use, so
// only releaseFreedMemory() can return the space.
TEST(MemoryTest, ReturnsFreedHeapMemoryToTheSystem) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "releaseFreedMemory is a no-op outside glibc";
#endif
  if (underSanitizer()) GTEST_SKIP() << "the sanitizer's allocator replaces glibc's heaps";

  constexpr size_t kBlock = 2048;        // below the mmap threshold: from the heap
  constexpr size_t kBlocks = 32 * 1024;  // 64 MiB
  std::vector<char*> blocks;
  blocks.reserve(kBlocks);
  for (size_t i = 0; i < kBlocks; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc(kBlock)));
    ASSERT_NE(blocks.back(), nullptr);
    std::memset(blocks.back(), 0x5a, kBlock);  // make it resident
    keep(blocks.back());
  }
  char* top = static_cast<char*>(std::malloc(kBlock));
  keep(top);
  ASSERT_GT(residentBytes(), 64L * 1024 * 1024);  // the blocks are really there
  for (char* block : blocks) std::free(block);
  blocks.clear();
  blocks.shrink_to_fit();

  const long before = residentBytes();
  EXPECT_TRUE(releaseFreedMemory());
  const long after = residentBytes();
  // Most of the 64 MiB left; a margin for what the allocator keeps cached.
  EXPECT_GT(before - after, 32L * 1024 * 1024) << "before " << before << ", after " << after;
  std::free(top);
}

}  // namespace
}  // namespace credsync
