#include "sidecar/hooks/process_table.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sidecar/common/errno_text.h"

namespace credsync::hooks {
namespace {

// Reads at most `limit` bytes of a small /proc file; empty when unreadable
// (the process exited, or hidepid hides it).
std::string readSmallFile(const std::string& path, size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text(limit, '\0');
  size_t used = 0;
  while (used < limit) {
    const ssize_t n = ::read(fd, text.data() + used, limit - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(used);
  return text;
}

class ProcProcessTable : public ProcessTable {
 public:
  explicit ProcProcessTable(std::string root) : root_(std::move(root)) {}

  absl::StatusOr<std::vector<ProcessInfo>> list() const override {
    DIR* dir = ::opendir(root_.c_str());
    if (dir == nullptr) {
      return absl::UnavailableError(absl::StrCat("cannot list ", root_, ": ", errnoText(errno)));
    }
    std::vector<ProcessInfo> processes;
    while (const dirent* entry = ::readdir(dir)) {
      ProcessInfo info;
      if (!absl::SimpleAtoi(entry->d_name, &info.pid) || info.pid <= 0) continue;
      const std::string base = absl::StrCat(root_, "/", entry->d_name);
      // "pid (comm) state ppid ...": comm may hold spaces and ')', so the
      // fields after it start at the last ')'.
      const std::string stat = readSmallFile(base + "/stat", 1024);
      const size_t open = stat.find('(');
      const size_t close = stat.rfind(')');
      if (open == std::string::npos || close == std::string::npos || close < open ||
          close + 4 >= stat.size()) {
        continue;
      }
      info.name = stat.substr(open + 1, close - open - 1);
      const char state = stat[close + 2];
      if (state == 'Z' || state == 'X' || state == 'x') continue;
      const absl::string_view rest = absl::string_view(stat).substr(close + 4);
      if (!absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &info.parent_pid)) continue;
      const std::string cmdline = readSmallFile(base + "/cmdline", 4096);
      info.argv0 = cmdline.substr(0, cmdline.find('\0'));
      processes.push_back(std::move(info));
    }
    ::closedir(dir);
    return processes;
  }

  absl::Status sendSignal(pid_t pid, int signal) override {
    if (::kill(pid, signal) == 0) return absl::OkStatus();
    const int error = errno;
    const std::string message = absl::StrCat("kill(", pid, ", ", signal, "): ", errnoText(error));
    if (error == ESRCH) return absl::NotFoundError(message);
    if (error == EPERM) return absl::PermissionDeniedError(message);
    return absl::InternalError(message);
  }

  pid_t self() const override { return ::getpid(); }

 private:
  const std::string root_;
};

}  // namespace

ProcessTablePtr makeProcessTable(std::string proc_root) {
  return std::make_unique<ProcProcessTable>(std::move(proc_root));
}

}  // namespace credsync::hooks
