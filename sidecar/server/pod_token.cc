#include "sidecar/server/pod_token.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/crypto.h"
#include "sidecar/common/errno_text.h"

namespace credsync::server {
namespace {

constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxTokenFile = 4096;

absl::Status fileError(const std::string& what, const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat("control token: ", what, " ", path, ": ", errnoText(errno)));
}

}  // namespace

absl::StatusOr<SecretString> readPodToken(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fileError("cannot open", path);
  std::string text(kMaxTokenFile + 1, '\0');
  size_t size = 0;
  while (size < text.size()) {
    const ssize_t n = ::read(fd, text.data() + size, text.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      wipeString(text);
      return fileError("cannot read", path);
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(size);
  SecretString token(std::string(absl::StripAsciiWhitespace(text)));
  wipeString(text);
  const absl::string_view value = token.reveal();
  const bool visible =
      std::all_of(value.begin(), value.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (size > kMaxTokenFile || value.size() < kMinTokenLength || !visible) {
    return absl::InvalidArgumentError(absl::StrCat(
        "control.token_file: ", path,
        " must hold one token of at least 16 visible ASCII characters (file at most 4 KiB)"));
  }
  return token;
}

absl::StatusOr<SecretString> loadOrCreatePodToken(const std::string& token_file,
                                                  const std::string& generated_path, uint32_t mode,
                                                  std::optional<gid_t> group) {
  if (!token_file.empty()) return readPodToken(token_file);

  SecretString token(crypto::hexLower(crypto::randomBytes(32)));
  const std::string temp = absl::StrCat(generated_path, ".tmp");
  ::unlink(temp.c_str());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fileError("cannot create", temp);
  std::string line = absl::StrCat(token.reveal(), "\n");
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fchmod(fd, mode) == 0 &&
                       (!group || ::fchown(fd, static_cast<uid_t>(-1), *group) == 0) &&
                       ::fsync(fd) == 0;
  wipeString(line);
  ::close(fd);
  if (!written || ::rename(temp.c_str(), generated_path.c_str()) != 0) {
    const absl::Status error = fileError("cannot write", generated_path);
    ::unlink(temp.c_str());
    return error;
  }
  return token;
}

}  // namespace credsync::server
