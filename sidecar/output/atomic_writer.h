#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
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
// mixed set, whenever the process dies. One departure from the kubelet: a
// superseded directory is removed by the first publish after
// `keep_superseded_for` (or by the next start), not at once, so a reader
// that resolved `..data` just before a switch and then stalled still finds
// its files. Not thread-safe: one publisher.
class OutputWriter {
 public:
  virtual ~OutputWriter() = default;
  // `files`: file name -> content, at least one. Names are plain
  // ([A-Za-z0-9._-], not starting with '.', at most 255 bytes); anything else
  // is INVALID_ARGUMENT. Publishing identical content writes nothing: it only
  // recreates a visible link that went missing and removes superseded sets
  // whose time is up. An error before the switch of `..data` leaves the
  // previous set in place and nothing behind; an error after it (a visible
  // link could not be made) is returned with the new set already current,
  // and the next publish repairs it.
  virtual absl::StatusOr<PublishResult> publish(
      const std::map<std::string, SecretString>& files) = 0;
  // The generation of the set on disk (0: none yet). Safe from any thread.
  virtual uint64_t generation() const = 0;
};
using OutputWriterPtr = std::unique_ptr<OutputWriter>;

struct AtomicWriterOptions {
  std::string directory;
  uint32_t file_mode = 0440;   // permission bits only (at most 0777)
  std::optional<gid_t> group;  // files and data directories get this group
  // How long a superseded set stays for readers that resolved `..data` just
  // before a switch (measured on the time source's monotonic clock).
  absl::Duration keep_superseded_for = absl::Seconds(30);
};

// Creates the directory if missing (0755, or 0750 with a group), removes
// leftovers of an interrupted publish (hidden timestamped directories that
// `..data` does not point to, a stray `..data_tmp`), and learns the current
// content and generation from what is there.
absl::StatusOr<OutputWriterPtr> makeAtomicWriter(const AtomicWriterOptions& options,
                                                 const TimeSource& time_source);

// Test seam. The points of a publish, in order, after which a crash leaves a
// distinct state on disk. Steps marked "each" happen once per file or link.
enum class PublishStep {
  kDataDirCreated,           // the new timestamped directory exists, empty
  kFilePartlyWritten,        // each file (the data files, then .generation): half its bytes
  kFileWritten,              // each file: complete and fsynced
  kDataDirSynced,            // the new directory is fsynced
  kTempLinkCreated,          // `..data_tmp` points to the new directory
  kDataLinkSwapped,          // `..data` points to the new directory (the commit point)
  kVisibleLinkStaged,        // each new visible name: its temporary link exists
  kVisibleLinksCreated,      // every visible name links into `..data`
  kObsoleteLinksRemoved,     // visible names no longer published are gone
  kOldDataDirPartlyRemoved,  // each expired superseded directory: one entry is gone
  kOldDataDirRemoved,        // each expired superseded directory: it is gone
};
// The step's name, for the traces of crash tests.
absl::string_view publishStepNameForTest(PublishStep step);

// Called after each step; returning true makes publish() stop right there,
// as if the process had died: it returns ABORTED, cleans nothing up, and the
// writer refuses further publishes (FAILED_PRECONDITION).
using CrashHook = std::function<bool(PublishStep step)>;

// makeAtomicWriter with a crash hook, for tests of crash consistency only.
absl::StatusOr<OutputWriterPtr> makeAtomicWriterForTest(const AtomicWriterOptions& options,
                                                        const TimeSource& time_source,
                                                        CrashHook crash_after);

}  // namespace credsync::output
