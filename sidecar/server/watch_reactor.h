#pragma once

#include "credsync/v1/credsync.grpc.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"
#include "sidecar/sync/change_feed.h"
#include "sidecar/sync/sync_engine.h"

namespace credsync::server {

// Serves one credsync.v1.CredsyncService/Watch call (already authorized) with
// gRPC's callback API, so an open stream holds no thread: it is a
// subscription to `feed` whose notifier starts the next write.
//
// With a profile in `request`, only that profile ("default" resolved); an
// unknown one ends the call with NOT_FOUND. The stream sends one `initial`
// message per profile already written, then every change after it, one write
// at a time, and ends with CANCELLED when the caller goes away or the feed is
// closed (shutdown), ABORTED when the caller reads too slowly for the feed's
// backlog, or OK when a write fails.
//
// Returns the reactor for the method handler to return; it deletes itself
// once gRPC is done with it (OnDone). `engine` and `feed` must outlive the
// call: shut the gRPC server down before destroying them.
grpc::ServerWriteReactor<credsync::v1::WatchResponse>* startWatch(
    grpc::CallbackServerContext* context, const credsync::v1::WatchRequest& request,
    sync::SyncEngine& engine, sync::ChangeFeed& feed);

// A Watch call that ends at once with `status` (for example UNAUTHENTICATED),
// for the method handler to return. Deletes itself in OnDone.
grpc::ServerWriteReactor<credsync::v1::WatchResponse>* finishedWatch(const grpc::Status& status);

}  // namespace credsync::server
