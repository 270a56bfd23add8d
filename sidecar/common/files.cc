#include "sidecar/common/files.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/errno_text.h"
#include "sidecar/common/secret.h"

namespace credsync {
namespace {

// "1 MiB", "64 KiB", "100 bytes".
std::string formatSize(size_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return absl::StrCat(bytes >> 20, " MiB");
  if (bytes >= 1024 && bytes % 1024 == 0) return absl::StrCat(bytes / 1024, " KiB");
  return absl::StrCat(bytes, " bytes");
}

// Closes the descriptor when the read ends, however it ends.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  const int fd_;
};

}  // namespace

absl::StatusOr<std::string> readSmallFile(const std::string& path, size_t max_bytes,
                                          absl::string_view what) {
  const auto failure = [&](int error) {
    const std::string message = absl::StrCat(what, " ", path, ": ", errnoText(error));
    if (error == ENOENT) return absl::NotFoundError(message);
    if (error == EACCES) return absl::PermissionDeniedError(message);
    return absl::InvalidArgumentError(message);
  };
  const auto too_large = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path, ": larger than ", formatSize(max_bytes)));
  };
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return failure(errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return failure(errno);
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": not a regular file"));
  }
  if (static_cast<size_t>(info.st_size) > max_bytes) return too_large();
  std::string text;
  char buffer[4096];
  absl::Status error;
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      error = failure(errno);
      break;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    // The file may have grown since fstat.
    if (text.size() > max_bytes) {
      error = too_large();
      break;
    }
  }
  OPENSSL_cleanse(buffer, sizeof(buffer));
  if (!error.ok()) {
    wipeString(text);
    return error;
  }
  return text;
}

}  // namespace credsync
