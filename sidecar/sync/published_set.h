#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sidecar/fetch/secret_source.h"

namespace credsync::sync {

// One profile whose secret is in the published files.
struct PublishedProfile {
  std::string name;         // the configured name
  std::string secret_name;  // profiles[].secret_name
  bool is_default = false;
  fetch::ManagedCredential credential;  // exactly what the files were rendered from
};

// What the files held after a publish that succeeded: every profile with a
// secret in them, in configuration order (the default first). Immutable once
// handed out, so readers share it without a lock.
struct PublishedSet {
  std::vector<PublishedProfile> profiles;
  uint64_t generation = 0;  // the output generation these files are
  absl::Time published_at;

  // The profile by configured name, "default" naming the default profile;
  // null when it has no secret in the files (or does not exist).
  const PublishedProfile* find(const std::string& profile) const {
    for (const PublishedProfile& published : profiles) {
      if (published.name == profile) return &published;
    }
    if (profile != "default") return nullptr;
    for (const PublishedProfile& published : profiles) {
      if (published.is_default) return &published;
    }
    return nullptr;
  }
};

}  // namespace credsync::sync
