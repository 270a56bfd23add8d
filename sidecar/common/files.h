#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace credsync {

// Reads a regular file of at most `max_bytes` (a config file, a client key,
// a password). Errors name `what` and `path` in one line ("client key
// /keys/ck.json: No such file or directory"): NOT_FOUND, PERMISSION_DENIED,
// else INVALID_ARGUMENT (not a regular file, larger than the limit, a read
// error). The read buffer and any partial content are wiped, since the file
// may hold a secret.
absl::StatusOr<std::string> readSmallFile(const std::string& path, size_t max_bytes,
                                          absl::string_view what);

}  // namespace credsync
