// Proves that SecretString and wipeString overwrite a secret's bytes before
// its memory is released or reused. Its own binary, because it replaces the
// global operator new/delete: the replacement snapshots the block it is
// about to free, while that block is still valid memory, so the test
// inspects what a freed buffer held without touching freed memory.
#include <string.h>

#include <cstdlib>
#include <new>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "sidecar/common/secret.h"

namespace {

// The block under watch and what it held when it was released.
struct Watch {
  const void* block = nullptr;
  size_t size = 0;
  bool released = false;
  unsigned char snapshot[4096];
};
Watch g_watch;

void snapshotIfWatched(void* block) noexcept {
  if (block == nullptr || block != g_watch.block) return;
  memcpy(g_watch.snapshot, block, g_watch.size);
  g_watch.released = true;
  g_watch.block = nullptr;
}

}  // namespace

// Replaceable global allocation functions ([new.delete.single]); the array
// forms call these by default.
void* operator new(size_t size) {
  void* block = std::malloc(size == 0 ? 1 : size);
  if (block == nullptr) throw std::bad_alloc();
  return block;
}
void operator delete(void* block) noexcept {
  snapshotIfWatched(block);
  std::free(block);
}
void operator delete(void* block, size_t) noexcept { operator delete(block); }

namespace credsync {
namespace {

constexpr size_t kLong = 200;  // well past the inline (SSO) buffer

// Watches the heap buffer of `value`, which must not be inline.
void watch(const std::string& value) {
  ASSERT_GE(value.capacity(), kLong);
  ASSERT_LT(value.capacity() + 1, sizeof(g_watch.snapshot));
  g_watch = Watch{};
  g_watch.block = value.data();
  g_watch.size = value.capacity() + 1;
}

// Expects the watched buffer to have been released with every byte zero
// (OPENSSL_cleanse writes zeros).
void expectReleasedWiped(const char* what) {
  ASSERT_TRUE(g_watch.released) << what << ": the buffer was not released";
  size_t nonzero = 0;
  for (size_t i = 0; i < g_watch.size; ++i) nonzero += g_watch.snapshot[i] != 0;
  EXPECT_EQ(nonzero, 0u) << what << ": " << nonzero << " of " << g_watch.size
                         << " bytes were not wiped before the buffer was freed";
}

// Verifies that the replacement sees a plain string's buffer as it was, so
// the tests below would notice an unwiped one.
TEST(SecretWipeTest, UnwipedBufferIsSeen) {
  auto* plain = new std::string(kLong, 'S');
  watch(*plain);
  delete plain;
  ASSERT_TRUE(g_watch.released);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(g_watch.snapshot), kLong),
            std::string(kLong, 'S'));
}

// Verifies that destroying a SecretString wipes its heap buffer before freeing it.
TEST(SecretWipeTest, DestructionWipesHeapBuffer) {
  auto* secret = new SecretString(std::string(kLong, 'S'));
  watch(secret->reveal());
  delete secret;
  expectReleasedWiped("~SecretString");
}

// Verifies that destroying a SecretString wipes a short value held inline,
// in the object itself: the object lives in storage the test owns.
TEST(SecretWipeTest, DestructionWipesInlineValue) {
  alignas(SecretString) unsigned char storage[sizeof(SecretString)];
  auto* secret = new (storage) SecretString(std::string("hunter2"));
  ASSERT_EQ(secret->reveal(), "hunter2");
  const auto offset = static_cast<size_t>(
      reinterpret_cast<const unsigned char*>(secret->reveal().data()) - storage);
  ASSERT_LE(offset + 7, sizeof(storage));
  secret->~SecretString();
  const volatile unsigned char* bytes = storage;
  std::string after(sizeof(storage), '\0');
  for (size_t i = 0; i < sizeof(storage); ++i) after[i] = static_cast<char>(bytes[i]);
  EXPECT_EQ(after.find("hunter"), std::string::npos);
  // Every byte where the value was, its last included, no longer holds it.
  // (Not a search for "2" anywhere: the object's other fields, a pointer
  // among them, may hold that byte by chance.)
  for (size_t i = 0; i < 7; ++i) EXPECT_NE(after[offset + i], "hunter2"[i]) << i;
}

// Verifies that copy assignment wipes the old value before its buffer is
// replaced by a larger one.
TEST(SecretWipeTest, CopyAssignmentWipesOldBuffer) {
  SecretString target(std::string(kLong, 'O'));
  const SecretString source(std::string(2 * kLong, 'N'));
  watch(target.reveal());
  target = source;
  expectReleasedWiped("copy assignment");
  EXPECT_EQ(target.reveal(), std::string(2 * kLong, 'N'));
}

// Verifies that move assignment wipes the old value: libstdc++ hands the old
// buffer to the moved-from string, which SecretString wipes and later frees.
TEST(SecretWipeTest, MoveAssignmentWipesOldBuffer) {
  {
    SecretString target(std::string(kLong, 'O'));
    SecretString source(std::string(kLong, 'N'));
    watch(target.reveal());
    target = std::move(source);
    EXPECT_EQ(target.reveal(), std::string(kLong, 'N'));
  }
  expectReleasedWiped("move assignment");
}

// Verifies that wipeString overwrites the whole heap buffer, not only the
// characters in use: shrink_to_fit then frees it, and the test sees it.
TEST(SecretWipeTest, WipeStringWipesWholeCapacity) {
  std::string value(kLong, 'S');
  value.resize(10);  // bytes past size() still hold 'S'
  watch(value);
  wipeString(value);
  EXPECT_TRUE(value.empty());
  value.shrink_to_fit();  // empty: back to the inline buffer, the heap one is freed
  expectReleasedWiped("wipeString");
}

}  // namespace
}  // namespace credsync
