#pragma once

#ifdef CREDSYNC_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace credsync::server {

// What the control service's gRPC callback reactors (Refresh, Watch) share.

// gRPC runs a reaction only after the handler has returned its reactor and
// after the operation the reaction reports, but it orders the two inside
// libgrpc, which the ThreadSanitizer tree cannot see into (Debian does not
// build it with -fsanitize=thread). handOver() before returning the reactor
// and before each operation, and takeOver() at the top of each reaction, tell
// TSan about that ordering so it checks the reactor's own state; no-ops in
// every other build.
#ifdef CREDSYNC_TSAN
inline void handOver(void* reactor) { __tsan_release(reactor); }
inline void takeOver(void* reactor) { __tsan_acquire(reactor); }
#else
inline void handOver(void* /*reactor*/) {}
inline void takeOver(void* /*reactor*/) {}
#endif

inline grpc::Status toGrpc(const absl::Status& status) {
  // absl's canonical codes are gRPC's, number for number.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace credsync::server
