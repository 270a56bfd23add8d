#include "sidecar/output/atomic_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/common/crypto.h"
#include "sidecar/common/logging.h"

namespace credsync::output {
namespace {

constexpr absl::string_view kDataLink = "..data";
constexpr absl::string_view kDataTempLink = "..data_tmp";
// One publisher makes one visible link at a time, so one temporary name does.
constexpr absl::string_view kVisibleTempLink = "..link_tmp";
constexpr absl::string_view kGenerationFile = ".generation";
constexpr mode_t kGenerationMode = 0444;
constexpr size_t kMaxNameLength = 255;
// Far above any credentials file; bounds what a foreign file can make us read.
constexpr size_t kMaxFileSize = 1 << 20;
constexpr int kMaxRemoveDepth = 8;
constexpr int kMaxDirNameAttempts = 16;

// An owned file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  // Hands the descriptor to a new owner (fdopendir).
  int release() { return std::exchange(fd_, -1); }
  // Closes and reports the error: on some file systems close() is where a
  // failed write-back surfaces. Not retried on EINTR (Linux frees the fd).
  absl::Status close(absl::string_view what) {
    const int fd = std::exchange(fd_, -1);
    if (fd >= 0 && ::close(fd) != 0 && errno != EINTR) {
      return absl::ErrnoToStatus(errno, absl::StrCat("close ", what));
    }
    return absl::OkStatus();
  }

 private:
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

template <typename Call>
auto retryOnEintr(Call call) {
  decltype(call()) result;
  do {
    result = call();
  } while (result == -1 && errno == EINTR);
  return result;
}

absl::Status errnoStatus(absl::string_view action, absl::string_view name) {
  return absl::ErrnoToStatus(errno, absl::StrCat(action, " ", name));
}

bool isPlainName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || name.front() == '.') return false;
  for (const char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

// "..YYYY_MM_DD_HH_MM_SS.<digits>": ours, and the kubelet's (whose random
// suffix has no fixed length).
bool isTimestampDirName(absl::string_view name) {
  constexpr absl::string_view kShape = "..dddd_dd_dd_dd_dd_dd.";
  if (name.size() <= kShape.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char expected = i < kShape.size() ? kShape[i] : 'd';
    const bool ok = expected == 'd' ? absl::ascii_isdigit(static_cast<unsigned char>(name[i]))
                                    : name[i] == expected;
    if (!ok) return false;
  }
  return true;
}

std::string visibleLinkTarget(absl::string_view name) { return absl::StrCat(kDataLink, "/", name); }

absl::StatusOr<Fd> openAt(int dir_fd, const std::string& name, int flags, mode_t mode = 0) {
  const int fd =
      retryOnEintr([&] { return ::openat(dir_fd, name.c_str(), flags | O_CLOEXEC, mode); });
  if (fd < 0) return errnoStatus("open", name);
  return Fd(fd);
}

absl::StatusOr<Fd> openDirAt(int dir_fd, const std::string& name) {
  return openAt(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

absl::Status fsyncFd(int fd, absl::string_view what) {
  if (retryOnEintr([&] { return ::fsync(fd); }) != 0) return errnoStatus("fsync", what);
  return absl::OkStatus();
}

absl::Status writeAll(int fd, absl::string_view data, absl::string_view what) {
  while (!data.empty()) {
    const ssize_t written = retryOnEintr([&] { return ::write(fd, data.data(), data.size()); });
    if (written < 0) return errnoStatus("write", what);
    data.remove_prefix(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

// Sets the group (when asked) and then the exact mode, which creation
// narrowed by the umask. fchown first: it may clear mode bits.
absl::Status applyOwnership(int fd, mode_t mode, std::optional<gid_t> group,
                            absl::string_view what) {
  if (group && ::fchown(fd, static_cast<uid_t>(-1), *group) != 0) {
    return errnoStatus(absl::StrCat("set group ", *group, " on"), what);
  }
  if (::fchmod(fd, mode) != 0) {
    return errnoStatus(absl::StrFormat("set mode %04o on", mode), what);
  }
  return absl::OkStatus();
}

// Names in a directory, without "." and "..".
absl::StatusOr<std::vector<std::string>> listDir(int dir_fd, absl::string_view what) {
  // fdopendir takes the descriptor over, so give it its own.
  absl::StatusOr<Fd> own = openAt(dir_fd, ".", O_RDONLY | O_DIRECTORY);
  if (!own.ok()) return own.status();
  DIR* dir = ::fdopendir(own->get());
  if (dir == nullptr) return errnoStatus("list", what);
  own->release();
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const absl::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  const int read_errno = errno;
  ::closedir(dir);
  if (read_errno != 0) {
    errno = read_errno;
    return errnoStatus("list", what);
  }
  return names;
}

std::optional<std::string> readLinkAt(int dir_fd, const std::string& name, int* error) {
  char target[4096];
  const ssize_t length = ::readlinkat(dir_fd, name.c_str(), target, sizeof(target));
  if (length < 0) {
    *error = errno;
    return std::nullopt;
  }
  *error = 0;
  if (static_cast<size_t>(length) == sizeof(target)) {
    *error = ENAMETOOLONG;
    return std::nullopt;
  }
  return std::string(target, static_cast<size_t>(length));
}

// Removes a file, link or directory tree below dir_fd. Missing is success.
// `after_first` runs once one entry of a directory has been removed (the
// crash seam for a half-removed directory).
absl::Status removeTree(int dir_fd, const std::string& name, int depth,
                        const std::function<absl::Status()>& after_first = nullptr) {
  if (::unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != EISDIR && errno != EPERM) return errnoStatus("remove", name);
  if (depth >= kMaxRemoveDepth) return absl::FailedPreconditionError("remove: tree too deep");
  absl::StatusOr<Fd> dir = openDirAt(dir_fd, name);
  if (!dir.ok()) return dir.status();
  absl::StatusOr<std::vector<std::string>> children = listDir(dir->get(), name);
  if (!children.ok()) return children.status();
  bool first = true;
  for (const std::string& child : *children) {
    if (absl::Status removed = removeTree(dir->get(), child, depth + 1); !removed.ok()) {
      return removed;
    }
    if (first && after_first) {
      if (absl::Status hook = after_first(); !hook.ok()) return hook;
    }
    first = false;
  }
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return errnoStatus("remove directory", name);
  }
  return absl::OkStatus();
}

// Reads a whole regular file into a secret. The buffer is reserved from the
// size stat reports; should the file grow, each outgrown buffer is wiped
// before it is released, so no copy of the content is left in freed memory.
absl::StatusOr<SecretString> readSecretFile(int dir_fd, const std::string& name) {
  absl::StatusOr<Fd> fd = openAt(dir_fd, name, O_RDONLY | O_NOFOLLOW);
  if (!fd.ok()) return fd.status();
  struct stat info {};
  if (::fstat(fd->get(), &info) != 0) return errnoStatus("stat", name);
  if (!S_ISREG(info.st_mode)) return absl::FailedPreconditionError(name + " is not a file");
  if (static_cast<uint64_t>(info.st_size) > kMaxFileSize) {
    return absl::OutOfRangeError(name + " is too large");
  }
  std::string buffer;
  buffer.reserve(static_cast<size_t>(info.st_size) + 64);
  while (true) {
    if (buffer.size() == buffer.capacity()) {
      if (buffer.size() > kMaxFileSize) {
        wipeString(buffer);
        return absl::OutOfRangeError(name + " is too large");
      }
      std::string larger;
      larger.reserve(buffer.capacity() * 2);
      larger.append(buffer);
      wipeString(buffer);
      buffer.swap(larger);
    }
    const size_t used = buffer.size();
    buffer.resize(buffer.capacity());
    const ssize_t count =
        retryOnEintr([&] { return ::read(fd->get(), buffer.data() + used, buffer.size() - used); });
    if (count < 0) {
      const int read_errno = errno;
      wipeString(buffer);
      errno = read_errno;
      return errnoStatus("read", name);
    }
    buffer.resize(used + static_cast<size_t>(count));
    if (count == 0) break;
  }
  return SecretString(std::move(buffer));
}

absl::StatusOr<uint64_t> readGeneration(int dir_fd) {
  absl::StatusOr<SecretString> text = readSecretFile(dir_fd, std::string(kGenerationFile));
  if (!text.ok()) return text.status();
  uint64_t generation = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text->reveal()), &generation)) {
    return absl::DataLossError(absl::StrCat(kGenerationFile, " does not hold a number"));
  }
  return generation;
}

absl::string_view stepNameOf(PublishStep step) {
  switch (step) {
    case PublishStep::kDataDirCreated:
      return "data directory created";
    case PublishStep::kFilePartlyWritten:
      return "file partly written";
    case PublishStep::kFileWritten:
      return "file written";
    case PublishStep::kDataDirSynced:
      return "data directory synced";
    case PublishStep::kTempLinkCreated:
      return "..data_tmp created";
    case PublishStep::kDataLinkSwapped:
      return "..data swapped";
    case PublishStep::kVisibleLinkStaged:
      return "visible link staged";
    case PublishStep::kVisibleLinksCreated:
      return "visible links created";
    case PublishStep::kObsoleteLinksRemoved:
      return "obsolete links removed";
    case PublishStep::kOldDataDirPartlyRemoved:
      return "old data directory partly removed";
    case PublishStep::kOldDataDirRemoved:
      return "old data directory removed";
  }
  return "unknown step";
}

using FileSet = std::map<std::string, SecretString>;

bool sameFiles(const FileSet& a, const FileSet& b) {
  if (a.size() != b.size()) return false;
  for (auto left = a.begin(), right = b.begin(); left != a.end(); ++left, ++right) {
    if (left->first != right->first || !(left->second == right->second)) return false;
  }
  return true;
}

class AtomicWriter : public OutputWriter {
 public:
  AtomicWriter(const AtomicWriterOptions& options, const TimeSource& time_source, Fd dir,
               CrashHook crash_hook)
      : options_(options),
        time_source_(time_source),
        dir_(std::move(dir)),
        crash_hook_(std::move(crash_hook)) {}

  // Learns the current set, then clears what an interrupted publish left.
  absl::Status start() {
    if (absl::Status read = readCurrent(); !read.ok()) return read;
    if (absl::Status tidied = tidy(); !tidied.ok()) {
      needs_tidy_ = true;
      log::warn("output directory: could not finish cleaning up; will retry on the next publish",
                {{"directory", options_.directory}, {"error", tidied}});
    }
    return absl::OkStatus();
  }

  absl::StatusOr<PublishResult> publish(const FileSet& files) override {
    if (crashed_) {
      return absl::FailedPreconditionError("writer stopped by a simulated crash");
    }
    if (files.empty()) return absl::InvalidArgumentError("nothing to publish");
    for (const auto& [name, content] : files) {
      if (!isPlainName(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("file name \"", absl::CHexEscape(name),
                         "\" must be 1-255 of [A-Za-z0-9._-], not starting with '.'"));
      }
    }
    if (current_known_ && sameFiles(files, current_)) {
      if (needs_tidy_) {
        absl::Status tidied = tidy();
        if (crashed_) return tidied;
        needs_tidy_ = !tidied.ok();
        if (needs_tidy_) {
          log::warn("output directory: cleaning up failed again; will retry",
                    {{"directory", options_.directory}, {"error", tidied}});
        }
      }
      // A readlink per name, unless someone removed a link. Only a link a
      // reader cannot follow fails the publish.
      if (absl::Status linked = ensureVisibleLinks(); !linked.ok()) return linked;
      if (absl::Status removed = removeExpired(); !removed.ok()) {
        if (crashed_) return removed;
        needs_tidy_ = true;
        log::warn("output directory: could not remove a superseded data directory; will retry",
                  {{"directory", options_.directory}, {"error", removed}});
      }
      return PublishResult{false, generation_.load()};
    }

    const uint64_t next_generation = generation_.load() + 1;
    std::string new_dir_name;
    absl::Status staged = stageDataDir(files, next_generation, new_dir_name);
    if (staged.ok()) staged = swapDataLink(new_dir_name);
    if (!staged.ok()) {
      if (!crashed_ && !new_dir_name.empty()) abandon(new_dir_name);
      return staged;
    }

    // Committed: `..data` names the new set. What follows tidies up around it.
    const std::string old_dir_name = std::exchange(current_dir_, new_dir_name);
    // The names this publish dropped; unknown when the previous set was.
    std::optional<std::vector<std::string>> dropped;
    if (current_known_) {
      dropped.emplace();
      for (const auto& [name, content] : current_) {
        if (files.count(name) == 0) dropped->push_back(name);
      }
    }
    current_ = files;
    current_known_ = true;
    generation_.store(next_generation);
    if (absl::Status finished = finishPublish(old_dir_name, dropped); !finished.ok()) {
      if (crashed_) return finished;
      needs_tidy_ = true;
      return finished;
    }
    return PublishResult{true, next_generation};
  }

  uint64_t generation() const override { return generation_.load(); }

 private:
  // ABORTED when the test hook asks to stop after `step`.
  absl::Status stepDone(PublishStep step) {
    if (crash_hook_ && crash_hook_(step)) {
      crashed_ = true;
      return absl::AbortedError(absl::StrCat("simulated crash after: ", stepNameOf(step)));
    }
    return absl::OkStatus();
  }

  mode_t dataDirMode() const { return options_.group ? 0750 : 0755; }

  absl::Status readCurrent() {
    int error = 0;
    std::optional<std::string> target = readLinkAt(dir_.get(), std::string(kDataLink), &error);
    if (!target) {
      if (error == ENOENT) return absl::OkStatus();  // Nothing published yet.
      if (error == EINVAL) {
        return absl::FailedPreconditionError(
            absl::StrCat(options_.directory, "/", kDataLink, " exists and is not a symbolic link"));
      }
      errno = error;
      return errnoStatus("read link", kDataLink);
    }
    if (!isTimestampDirName(*target)) {
      // Not a directory we would have made: leave it alone, rewrite on publish.
      current_known_ = false;
      log::warn("output directory: ..data points to an unexpected name; it will be replaced",
                {{"directory", options_.directory}, {"target", absl::CHexEscape(*target)}});
      return absl::OkStatus();
    }
    current_dir_ = *target;
    if (absl::Status loaded = loadDataDir(); !loaded.ok()) {
      current_.clear();
      current_known_ = false;
      log::warn("output directory: current files unreadable; the next publish rewrites them",
                {{"directory", options_.directory}, {"error", loaded}});
    }
    return absl::OkStatus();
  }

  absl::Status loadDataDir() {
    absl::StatusOr<Fd> dir = openDirAt(dir_.get(), current_dir_);
    if (!dir.ok()) return dir.status();
    absl::StatusOr<std::vector<std::string>> names = listDir(dir->get(), current_dir_);
    if (!names.ok()) return names.status();
    for (const std::string& name : *names) {
      if (name == kGenerationFile) {
        absl::StatusOr<uint64_t> generation = readGeneration(dir->get());
        if (!generation.ok()) return generation.status();
        generation_.store(*generation);
        continue;
      }
      if (!isPlainName(name)) {
        return absl::FailedPreconditionError(
            absl::StrCat("unexpected entry \"", absl::CHexEscape(name), "\" in ", current_dir_));
      }
      absl::StatusOr<SecretString> content = readSecretFile(dir->get(), name);
      if (!content.ok()) return content.status();
      current_.emplace(name, *std::move(content));
    }
    return absl::OkStatus();
  }

  // Removes leftovers of an interrupted publish, and brings the visible links
  // in line with the current set. Keeps going past errors; returns the first.
  absl::Status tidy() {
    absl::Status first_error;
    auto note = [&](absl::Status status) {
      if (!status.ok() && first_error.ok()) first_error = std::move(status);
    };
    absl::StatusOr<std::vector<std::string>> names = listDir(dir_.get(), options_.directory);
    if (!names.ok()) return names.status();
    for (const std::string& name : *names) {
      const bool leftover = name == kDataTempLink || name == kVisibleTempLink ||
                            (isTimestampDirName(name) && name != current_dir_ && !isRetired(name));
      if (leftover) {
        log::info("output directory: removing a leftover of an interrupted publish",
                  {{"directory", options_.directory}, {"name", name}});
        note(removeTree(dir_.get(), name, 0));
      }
    }
    if (current_known_ && !current_dir_.empty()) note(ensureVisibleLinks());
    note(removeObsoleteLinks(std::nullopt));
    note(fsyncFd(dir_.get(), options_.directory));
    return first_error;
  }

  // Creates the new timestamped directory, writes every file and the
  // generation into it, and fsyncs it. Sets `name` as soon as it exists.
  absl::Status stageDataDir(const FileSet& files, uint64_t generation, std::string& name) {
    absl::StatusOr<Fd> dir = createDataDir(name);
    if (!dir.ok()) return dir.status();
    if (absl::Status step = stepDone(PublishStep::kDataDirCreated); !step.ok()) return step;
    for (const auto& [file, content] : files) {
      absl::Status written =
          writeFile(dir->get(), file, content.reveal(), options_.file_mode, name);
      if (!written.ok()) return written;
    }
    const std::string generation_text = absl::StrCat(generation, "\n");
    absl::Status written =
        writeFile(dir->get(), std::string(kGenerationFile), generation_text, kGenerationMode, name);
    if (!written.ok()) return written;
    if (absl::Status synced = fsyncFd(dir->get(), name); !synced.ok()) return synced;
    if (absl::Status step = stepDone(PublishStep::kDataDirSynced); !step.ok()) return step;
    return dir->close(name);
  }

  absl::StatusOr<Fd> createDataDir(std::string& name) {
    const std::string stamp = absl::StrCat(
        "..", absl::FormatTime("%Y_%m_%d_%H_%M_%S", time_source_.systemTime(), absl::UTCTimeZone()),
        ".");
    for (int attempt = 0; attempt < kMaxDirNameAttempts; ++attempt) {
      const std::string random = crypto::randomBytes(sizeof(uint64_t));
      uint64_t number = 0;
      std::memcpy(&number, random.data(), sizeof(number));
      const std::string candidate = absl::StrFormat("%s%09u", stamp, number % 1000000000u);
      // Private until its content, mode and group are final.
      if (::mkdirat(dir_.get(), candidate.c_str(), 0700) != 0) {
        if (errno == EEXIST) continue;
        return errnoStatus("create directory", candidate);
      }
      name = candidate;
      absl::StatusOr<Fd> dir = openDirAt(dir_.get(), candidate);
      if (!dir.ok()) return dir.status();
      if (absl::Status owned = applyOwnership(dir->get(), dataDirMode(), options_.group, candidate);
          !owned.ok()) {
        return owned;
      }
      return dir;
    }
    return absl::AlreadyExistsError(absl::StrCat("no free directory name for ", stamp, "*"));
  }

  absl::Status writeFile(int dir_fd, const std::string& name, absl::string_view content,
                         mode_t mode, absl::string_view dir_name) {
    const std::string what = absl::StrCat(dir_name, "/", name);
    absl::StatusOr<Fd> fd =
        openAt(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode & 0777);
    if (!fd.ok()) return fd.status();
    if (absl::Status owned = applyOwnership(fd->get(), mode, options_.group, what); !owned.ok()) {
      return owned;
    }
    const size_t half = content.size() / 2;
    if (absl::Status written = writeAll(fd->get(), content.substr(0, half), what); !written.ok()) {
      return written;
    }
    if (absl::Status step = stepDone(PublishStep::kFilePartlyWritten); !step.ok()) return step;
    if (absl::Status written = writeAll(fd->get(), content.substr(half), what); !written.ok()) {
      return written;
    }
    if (absl::Status synced = fsyncFd(fd->get(), what); !synced.ok()) return synced;
    if (absl::Status closed = fd->close(what); !closed.ok()) return closed;
    return stepDone(PublishStep::kFileWritten);
  }

  // `..data_tmp` -> new directory, renamed over `..data`: the one atomic
  // switch readers observe. The parent is fsynced before anything old is
  // removed, so after a power loss the old set is there if the new one is not.
  absl::Status swapDataLink(const std::string& new_dir_name) {
    const std::string temp_link(kDataTempLink);
    if (::unlinkat(dir_.get(), temp_link.c_str(), 0) != 0 && errno != ENOENT) {
      return errnoStatus("remove stale", temp_link);
    }
    if (::symlinkat(new_dir_name.c_str(), dir_.get(), temp_link.c_str()) != 0) {
      return errnoStatus("create link", temp_link);
    }
    if (absl::Status step = stepDone(PublishStep::kTempLinkCreated); !step.ok()) return step;
    if (::renameat(dir_.get(), temp_link.c_str(), dir_.get(), std::string(kDataLink).c_str()) !=
        0) {
      return absl::ErrnoToStatus(errno, "rename ..data_tmp over ..data");
    }
    if (absl::Status step = stepDone(PublishStep::kDataLinkSwapped); !step.ok()) return step;
    if (absl::Status synced = fsyncFd(dir_.get(), options_.directory); !synced.ok()) {
      // Committed already; durability is what is in doubt. Keep going.
      log::warn("output directory: fsync after the switch failed",
                {{"directory", options_.directory}, {"error", synced}});
    }
    return absl::OkStatus();
  }

  // Undoes a publish that failed before the switch: the new directory and a
  // `..data_tmp` that may point to it. `..data` was never touched.
  void abandon(const std::string& new_dir_name) {
    int error = 0;
    if (readLinkAt(dir_.get(), std::string(kDataTempLink), &error) == new_dir_name) {
      ::unlinkat(dir_.get(), std::string(kDataTempLink).c_str(), 0);
    }
    if (absl::Status removed = removeTree(dir_.get(), new_dir_name, 0); !removed.ok()) {
      needs_tidy_ = true;
      log::warn("output directory: could not remove an abandoned data directory",
                {{"directory", options_.directory}, {"error", removed}});
    }
  }

  // After the switch: visible links, obsolete links, superseded directories
  // whose grace is over, and a final fsync. Only a missing visible link is an
  // error (a reader could not find the file); the rest is logged and retried
  // on the next publish.
  absl::Status finishPublish(const std::string& old_dir_name,
                             const std::optional<std::vector<std::string>>& dropped) {
    if (absl::Status linked = ensureVisibleLinks(); !linked.ok()) return linked;
    if (absl::Status step = stepDone(PublishStep::kVisibleLinksCreated); !step.ok()) return step;

    absl::Status cleanup = removeObsoleteLinks(dropped);
    if (crashed_) return cleanup;
    if (cleanup.ok()) cleanup = stepDone(PublishStep::kObsoleteLinksRemoved);
    if (crashed_) return cleanup;
    if (!old_dir_name.empty() && old_dir_name != current_dir_) {
      retired_.push_back(Retired{old_dir_name, time_source_.monotonicTime()});
    }
    absl::Status removed = removeExpired();
    if (crashed_) return removed;
    if (cleanup.ok()) cleanup = removed;
    if (absl::Status synced = fsyncFd(dir_.get(), options_.directory);
        !synced.ok() && cleanup.ok()) {
      cleanup = synced;
    }
    if (!cleanup.ok()) {
      needs_tidy_ = true;
      log::warn("output directory: published, but cleaning up after it failed; will retry",
                {{"directory", options_.directory},
                 {"generation", static_cast<unsigned long>(generation_.load())},
                 {"error", cleanup}});
    }
    return absl::OkStatus();
  }

  // Removes the superseded directories whose grace has run out. Kept that
  // long because a reader that resolved `..data` to one of them just before
  // a switch, and was then descheduled (a throttled container, a preempted
  // VM), opens its files only afterwards. Removing at once, as the kubelet
  // does, failed such a reader with ENOENT in about half of our runs of 500
  // back-to-back publishes on tmpfs on a loaded two-CPU VM.
  absl::Status removeExpired() {
    const MonotonicTime now = time_source_.monotonicTime();
    const auto grace = absl::ToChronoNanoseconds(options_.keep_superseded_for);
    absl::Status first_error;
    while (!retired_.empty() && retired_.front().since + grace <= now) {
      const std::string name = std::move(retired_.front().name);
      retired_.pop_front();
      if (name == current_dir_) continue;
      absl::Status removed = removeTree(
          dir_.get(), name, 0, [this] { return stepDone(PublishStep::kOldDataDirPartlyRemoved); });
      if (crashed_) return removed;
      if (removed.ok()) removed = stepDone(PublishStep::kOldDataDirRemoved);
      if (crashed_) return removed;
      // Out of the list either way: tidy() removes what is not listed.
      if (!removed.ok() && first_error.ok()) first_error = removed;
    }
    return first_error;
  }

  bool isRetired(absl::string_view name) const {
    for (const Retired& retired : retired_) {
      if (retired.name == name) return true;
    }
    return false;
  }

  // Every current name as `name -> ..data/name`, made only where missing or
  // wrong, through a temporary link renamed into place so that an existing
  // name never disappears.
  absl::Status ensureVisibleLinks() {
    for (const auto& [name, content] : current_) {
      const std::string target = visibleLinkTarget(name);
      int error = 0;
      if (readLinkAt(dir_.get(), name, &error) == target) continue;
      const std::string temp(kVisibleTempLink);
      if (::unlinkat(dir_.get(), temp.c_str(), 0) != 0 && errno != ENOENT) {
        return errnoStatus("remove stale", temp);
      }
      if (::symlinkat(target.c_str(), dir_.get(), temp.c_str()) != 0) {
        return errnoStatus("create link", temp);
      }
      if (absl::Status step = stepDone(PublishStep::kVisibleLinkStaged); !step.ok()) return step;
      if (::renameat(dir_.get(), temp.c_str(), dir_.get(), name.c_str()) != 0) {
        absl::Status renamed = errnoStatus("rename link over", name);
        ::unlinkat(dir_.get(), temp.c_str(), 0);
        return renamed;
      }
    }
    return absl::OkStatus();
  }

  // Visible links into `..data` for names no longer published: among
  // `candidates` (the names a publish dropped), or among every entry of the
  // directory when that is unknown (at start). Listing on every publish cost
  // a readdir of the whole directory, superseded copies in their grace
  // included: hundreds of entries during a burst of rotations (bench/run,
  // P1). Other entries (the control socket, say) are not ours and stay.
  absl::Status removeObsoleteLinks(const std::optional<std::vector<std::string>>& candidates) {
    if (!current_known_) return absl::OkStatus();
    std::vector<std::string> names;
    if (candidates) {
      names = *candidates;
    } else {
      absl::StatusOr<std::vector<std::string>> listed = listDir(dir_.get(), options_.directory);
      if (!listed.ok()) return listed.status();
      names = *std::move(listed);
    }
    for (const std::string& name : names) {
      if (!isPlainName(name) || current_.count(name) > 0) continue;
      int error = 0;
      if (readLinkAt(dir_.get(), name, &error) != visibleLinkTarget(name)) continue;
      if (::unlinkat(dir_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
        return errnoStatus("remove obsolete link", name);
      }
    }
    return absl::OkStatus();
  }

  const AtomicWriterOptions options_;
  const TimeSource& time_source_;
  Fd dir_;
  const CrashHook crash_hook_;
  std::string current_dir_;  // the timestamped directory `..data` names; empty if none
  struct Retired {
    std::string name;
    MonotonicTime since;
  };
  std::deque<Retired> retired_;  // superseded directories in their grace, oldest first
  FileSet current_;              // the published set, as read back or last written
  bool current_known_ = true;
  std::atomic<uint64_t> generation_{0};
  bool needs_tidy_ = false;  // a cleanup failed; retry even when nothing changes
  bool crashed_ = false;
};

// Opens the output directory, creating it (only the last component) if
// missing with the mode and group the contract names.
absl::StatusOr<Fd> openOutputDir(const AtomicWriterOptions& options) {
  const std::string& path = options.directory;
  if (::mkdir(path.c_str(), 0700) == 0) {
    absl::StatusOr<Fd> dir = openAt(AT_FDCWD, path, O_RDONLY | O_DIRECTORY);
    if (!dir.ok()) return dir.status();
    const mode_t mode = options.group ? 0750 : 0755;
    if (absl::Status owned = applyOwnership(dir->get(), mode, options.group, path); !owned.ok()) {
      return owned;
    }
    return dir;
  }
  if (errno != EEXIST) return errnoStatus("create directory", path);
  return openAt(AT_FDCWD, path, O_RDONLY | O_DIRECTORY);
}

absl::StatusOr<OutputWriterPtr> makeWriter(const AtomicWriterOptions& options,
                                           const TimeSource& time_source, CrashHook crash_hook) {
  if (options.directory.empty()) return absl::InvalidArgumentError("output directory is empty");
  if (options.keep_superseded_for < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("keep_superseded_for is negative");
  }
  if ((options.file_mode & ~0777u) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("file mode %04o has bits beyond 0777", options.file_mode));
  }
  absl::StatusOr<Fd> dir = openOutputDir(options);
  if (!dir.ok()) return dir.status();
  auto writer =
      std::make_unique<AtomicWriter>(options, time_source, *std::move(dir), std::move(crash_hook));
  if (absl::Status started = writer->start(); !started.ok()) return started;
  return writer;
}

}  // namespace

absl::string_view publishStepNameForTest(PublishStep step) { return stepNameOf(step); }

absl::StatusOr<OutputWriterPtr> makeAtomicWriter(const AtomicWriterOptions& options,
                                                 const TimeSource& time_source) {
  return makeWriter(options, time_source, nullptr);
}

absl::StatusOr<OutputWriterPtr> makeAtomicWriterForTest(const AtomicWriterOptions& options,
                                                        const TimeSource& time_source,
                                                        CrashHook crash_after) {
  return makeWriter(options, time_source, std::move(crash_after));
}

}  // namespace credsync::output
