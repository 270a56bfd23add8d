#include "sidecar/common/status_line.h"

#include <string>

namespace credsync {

absl::Status asOneLine(const absl::Status& status) {
  if (status.ok()) return status;
  std::string message(status.message());
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return absl::Status(status.code(), message);
}

}  // namespace credsync
