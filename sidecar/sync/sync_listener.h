#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace credsync::sync {

struct PublishedSet;  // published_set.h

// A profile's key (or generic profile's files) changed in the published set.
struct ProfileChange {
  std::string profile;
  std::string access_key_id;           // empty for a generic profile
  std::string previous_access_key_id;  // empty for the first key
  uint64_t generation = 0;
  absl::Time change_time;
  // Defaulted, so positional initialisation written before them still compiles.
  std::string version_id = {};           // the secret version now in the files
  std::string previous_version_id = {};  // empty for the first write
};

// Told what the sync engine does, for Watch streams, Refresh callers, the
// local API and metrics. onFetchCompleted, onProfileChanged and onPublished
// are called with the engine's
// lock held, so implementations must return quickly and must not call back
// into the engine; onRoundFinished is called after a round that fetched
// anything or changed the file, on the same thread, without the lock.
class SyncListener {
 public:
  virtual ~SyncListener() = default;
  virtual void onFetchCompleted(const std::string& profile, const absl::Status& result) {}
  virtual void onProfileChanged(const ProfileChange& change) {}
  // After every publish that succeeded (changed or not): what the files now
  // hold. Called after the onProfileChanged calls of that publish.
  virtual void onPublished(const std::shared_ptr<const PublishedSet>& published) {}
  // Whether onPublished is wanted: the set is a copy of every secret, so the
  // engine makes it only when some listener says so.
  virtual bool wantsPublishedSets() const { return false; }
  virtual void onRoundFinished() {}
};

}  // namespace credsync::sync
