#pragma once

#include <memory>
#include <optional>

#include "credsync/v1/credsync.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"

namespace credsync::testing {

// Reads one message of a Watch stream; nullopt when the stream ended.
inline std::optional<credsync::v1::WatchResponse> readOne(
    grpc::ClientReader<credsync::v1::WatchResponse>& reader) {
  credsync::v1::WatchResponse message;
  if (!reader.Read(&message)) return std::nullopt;
  return message;
}

// One open Watch stream and its context.
struct WatchStream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<credsync::v1::WatchResponse>> reader;
};

}  // namespace credsync::testing
