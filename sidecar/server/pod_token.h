#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "sidecar/common/secret.h"

namespace credsync::server {

// Reads the token from `path` (what a client of the TCP control API sends):
// the same rules as a configured token_file. FAILED_PRECONDITION when the
// file cannot be read, INVALID_ARGUMENT when it does not hold one token.
absl::StatusOr<SecretString> readPodToken(const std::string& path);

// The per-pod token that gRPC calls over TCP must carry (docs/design.md
// §6.3, the AWS Secrets Manager Agent's anti-SSRF pattern: a request an app
// is tricked into sending cannot add the header). Read from `token_file` when set (at
// least 16 visible characters in a file of at most 4 KiB, surrounding
// whitespace ignored); otherwise 32
// random bytes, hex-encoded, written to `generated_path` with `mode` and
// `group` (replaced atomically, so a reader never sees half a token).
absl::StatusOr<SecretString> loadOrCreatePodToken(const std::string& token_file,
                                                  const std::string& generated_path, uint32_t mode,
                                                  std::optional<gid_t> group);

}  // namespace credsync::server
