#pragma once

#include "absl/status/status.h"

namespace credsync {

// `status` with every CR and LF of its message made a space. Errors that the
// command line prints as one line (configuration, client keys) go through
// this, whatever a parser or library put in them. The code is kept; payloads
// are not. OK stays OK.
absl::Status asOneLine(const absl::Status& status);

}  // namespace credsync
