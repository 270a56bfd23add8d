#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "credsync/v1/credsync.pb.h"

namespace credsync::client {

// What `credsync check` verifies, from the outside of the sidecar: it is
// ready, and every profile it reports written is on disk as it reports it.
// For a ram_credentials profile, section <name> of `credentials_file` holds
// the AccessKey id GetStatus names; for a generic profile, each file it names
// exists in the directory of `credentials_file`. credentials.ini itself is
// only required when a ram_credentials profile is written.
//
// Returns one line describing what was checked ("ready, generation 4:
// default AccessKey LTAI… in /var/run/credsync/credentials.ini"), or
// FAILED_PRECONDITION (not ready, or a profile not on disk as reported)
// naming the profile and what differs. Never reads a secret into the result:
// only ids and file names appear.
absl::StatusOr<std::string> checkPublished(const credsync::v1::GetStatusResponse& status,
                                           const std::string& credentials_file);

}  // namespace credsync::client
