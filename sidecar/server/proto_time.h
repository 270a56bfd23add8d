#pragma once

#include <time.h>

#include <cstdint>
#include <optional>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace credsync::server {

// Times in the control API's messages (google.protobuf.Timestamp).
inline void setTime(absl::Time time, google::protobuf::Timestamp* out) {
  const timespec spec = absl::ToTimespec(time);
  out->set_seconds(spec.tv_sec);
  out->set_nanos(static_cast<int32_t>(spec.tv_nsec));
}

// Sets an optional timestamp field only when there is a time, so that an
// unknown time reads as an unset field rather than the epoch.
template <typename Message, typename Mutable>
void setTime(const std::optional<absl::Time>& time, Message* message, Mutable mutable_field) {
  if (time) setTime(*time, (message->*mutable_field)());
}

}  // namespace credsync::server
