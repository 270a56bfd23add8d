#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"

namespace credsync::output {

struct PublishResult {
  bool changed = false;     // false: the content was already there; nothing written
  uint64_t generation = 0;  // increases by one with every change, across restarts
};

// Publishes a set of files into one directory atomically, as the kubelet's
// AtomicWriter updates ConfigMap volumes: the files are written into a new
// hidden timestamped directory (exact mode and group, each fsynced), a
// `..data_tmp` symlink to it is renamed over `..data`, each visible name is
// a symlink `name -> ..data/name`, the old directory is removed, and the
// parent directory is fsynced. A reader never sees a missing, partial or
// mixed set, whenever the process dies. Not thread-safe: one publisher.
class OutputWriter {
 public:
  virtual ~OutputWriter() = default;
  // `files`: file name -> content. Names are plain ([A-Za-z0-9._-], not
  // starting with '.'). Publishing identical content writes nothing.
  virtual absl::StatusOr<PublishResult> publish(const std::map<std::string, SecretString>& files) = 0;
  virtual uint64_t generation() const = 0;
};
using OutputWriterPtr = std::unique_ptr<OutputWriter>;

struct AtomicWriterOptions {
  std::string directory;
  uint32_t file_mode = 0440;
  std::optional<gid_t> group;
};

// Creates the directory if missing (0755, or 0750 with a group), removes
// leftovers of an interrupted publish (hidden timestamped directories that
// `..data` does not point to, a stray `..data_tmp`), and learns the current
// content and generation from what is there.
absl::StatusOr<OutputWriterPtr> makeAtomicWriter(const AtomicWriterOptions& options,
                                                 const TimeSource& time_source);

}  // namespace credsync::output
