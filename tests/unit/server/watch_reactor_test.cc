#include "sidecar/server/watch_reactor.h"

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "credsync/v1/credsync.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/grpc.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/channel_arguments.h"
#include "gtest/gtest.h"
#include "sidecar/common/mutex.h"
#include "tests/common/eventually.h"
#include "tests/common/fake_secret_source.h"
#include "tests/common/sync_harness.h"
#include "tests/common/temp_dir.h"
#include "tests/common/test_config.h"
#include "tests/common/watch_client.h"

namespace credsync::server {
namespace {

using ::credsync::testing::configWithProfiles;
using ::credsync::testing::eventually;
using ::credsync::testing::key;
using ::credsync::testing::profile;
using ::credsync::testing::readOne;
using ::credsync::testing::SyncHarness;
using ::credsync::testing::TempDir;
using ::credsync::testing::WatchStream;
using ::credsync::v1::CredsyncService;
using ::credsync::v1::WatchResponse;
using ::testing::HasSubstr;

// Bounds every wait for something that should happen at once, so that a bug
// fails the test instead of hanging it.
constexpr absl::Duration kPatience = absl::Seconds(20);

// The default profile "app" and an optional one, "batch".
config::Config twoProfiles() {
  return configWithProfiles({profile("app", "acs/ram/user/app", /*is_default=*/true),
                             profile("batch", "acs/ram/user/batch", /*is_default=*/false,
                                     /*required=*/false)});
}

sync::ProfileChange change(const std::string& profile, uint64_t generation,
                           std::string access_key_id = "") {
  if (access_key_id.empty()) access_key_id = absl::StrCat("AK-", generation);
  return sync::ProfileChange{profile, std::move(access_key_id), "", generation,
                             absl::FromUnixSeconds(1700000000 + static_cast<int64_t>(generation))};
}

// Watch only, as ControlService serves it once a call is authorized;
// every call is refused with `denial` when that is not OK.
class WatchService final
    : public CredsyncService::WithCallbackMethod_Watch<CredsyncService::Service> {
 public:
  WatchService(sync::SyncEngine& engine, sync::ChangeFeed& feed, grpc::Status denial)
      : engine_(engine), feed_(feed), denial_(std::move(denial)) {}

  grpc::ServerWriteReactor<WatchResponse>* Watch(
      grpc::CallbackServerContext* context, const credsync::v1::WatchRequest* request) override {
    if (!denial_.ok()) return finishedWatch(denial_);
    return startWatch(context, *request, engine_, feed_);
  }

 private:
  sync::SyncEngine& engine_;
  sync::ChangeFeed& feed_;
  const grpc::Status denial_;
};

// The threads of this process.
int threadCount() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

// The reactor served over a real Unix socket, over the sync harness's engine
// and either its change feed (changes come from refreshes) or one the test
// publishes to itself.
class WatchReactorTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_ != nullptr) {
      feed_->close();
      server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    }
    if (harness_ != nullptr) harness_->stopDriver();
  }

  // Starts the engine with app at AK-1 and batch at BK-1, and serves Watch.
  // With `own_backlog`, streams read a feed of that backlog that only the
  // test publishes to.
  void start(std::optional<size_t> own_backlog = std::nullopt,
             grpc::Status denial = grpc::Status::OK) {
    harness_ = std::make_unique<SyncHarness>(twoProfiles());
    harness_->start({{"app", {key("AK-1")}}, {"batch", {key("BK-1")}}});
    if (own_backlog) {
      own_feed_ = std::make_unique<sync::ChangeFeed>(*own_backlog);
      feed_ = own_feed_.get();
    } else {
      feed_ = &harness_->feed();
    }
    service_ = std::make_unique<WatchService>(harness_->engine(), *feed_, std::move(denial));
    const std::string address = "unix:" + dir_.file("watch.sock");
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    // The client's receive window stays at 64 KiB: with BDP probing (on by
    // default) gRPC grows it to megabytes on a fast link, and a reader that
    // stops reading would then still take in everything a test sends.
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    arguments.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 * 1024);
    stub_ = CredsyncService::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments));
  }

  std::unique_ptr<WatchStream> watch(const std::string& profile) {
    auto stream = std::make_unique<WatchStream>();
    stream->context.set_deadline(absl::ToChronoTime(absl::Now() + kPatience));
    credsync::v1::WatchRequest request;
    request.set_profile(profile);
    stream->reader = stub_->Watch(&stream->context, request);
    return stream;
  }

  // Publishes a new key for `profile` through the engine, as a refresh does.
  void rotate(const std::string& profile, const std::string& access_key_id) {
    harness_->kmsAnswers(profile, {key(access_key_id)});
    harness_->refreshNow(profile);
  }

  TempDir dir_{"watch_reactor_test"};
  std::unique_ptr<SyncHarness> harness_;
  std::unique_ptr<sync::ChangeFeed> own_feed_;
  sync::ChangeFeed* feed_ = nullptr;
  std::unique_ptr<WatchService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CredsyncService::Stub> stub_;
};

// Verifies a Watch of every profile starts with one initial message per
// written profile, then reports a new key as a change with the key it
// replaced.
TEST_F(WatchReactorTest, SendsInitialStateThenChanges) {
  start();
  std::unique_ptr<WatchStream> stream = watch("");
  std::optional<WatchResponse> first = readOne(*stream->reader);
  std::optional<WatchResponse> second = readOne(*stream->reader);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->profile(), "app");
  EXPECT_EQ(first->access_key_id(), "AK-1");
  EXPECT_TRUE(first->initial());
  EXPECT_EQ(first->previous_access_key_id(), "");
  EXPECT_TRUE(first->has_change_time());
  EXPECT_EQ(second->profile(), "batch");
  EXPECT_EQ(second->access_key_id(), "BK-1");
  EXPECT_TRUE(second->initial());

  rotate("app", "AK-2");
  std::optional<WatchResponse> change = readOne(*stream->reader);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->profile(), "app");
  EXPECT_EQ(change->access_key_id(), "AK-2");
  EXPECT_EQ(change->previous_access_key_id(), "AK-1");
  EXPECT_GT(change->generation(), first->generation());
  EXPECT_TRUE(change->has_change_time());
  EXPECT_FALSE(change->initial());
  stream->context.TryCancel();
}

// Verifies a Watch of one profile, named as configured or as "default",
// reports that profile only.
TEST_F(WatchReactorTest, FiltersByProfileAndResolvesDefault) {
  start();
  std::unique_ptr<WatchStream> by_default = watch("default");
  std::unique_ptr<WatchStream> batch = watch("batch");
  std::optional<WatchResponse> app_initial = readOne(*by_default->reader);
  std::optional<WatchResponse> batch_initial = readOne(*batch->reader);
  ASSERT_TRUE(app_initial && batch_initial);
  EXPECT_EQ(app_initial->profile(), "app");
  EXPECT_EQ(batch_initial->profile(), "batch");

  rotate("batch", "BK-2");
  std::optional<WatchResponse> batch_change = readOne(*batch->reader);
  ASSERT_TRUE(batch_change);
  EXPECT_EQ(batch_change->access_key_id(), "BK-2");
  rotate("app", "AK-2");
  std::optional<WatchResponse> app_change = readOne(*by_default->reader);
  ASSERT_TRUE(app_change);
  EXPECT_EQ(app_change->profile(), "app");
  EXPECT_EQ(app_change->access_key_id(), "AK-2");
  by_default->context.TryCancel();
  batch->context.TryCancel();
}

// Verifies a change no newer than what the initial state reported (one that
// landed between subscribing and reading the state) is not sent again.
TEST_F(WatchReactorTest, SkipsChangesTheInitialStateAlreadyReported) {
  start(/*own_backlog=*/64);
  std::unique_ptr<WatchStream> stream = watch("");
  std::optional<WatchResponse> app = readOne(*stream->reader);
  std::optional<WatchResponse> batch = readOne(*stream->reader);
  ASSERT_TRUE(app && batch);
  feed_->onProfileChanged(change("app", app->generation()));
  feed_->onProfileChanged(change("batch", batch->generation()));
  feed_->onProfileChanged(change("app", app->generation() + 10));
  feed_->onProfileChanged(change("app", app->generation() + 10));
  feed_->onProfileChanged(change("batch", batch->generation() + 11));
  std::optional<WatchResponse> first = readOne(*stream->reader);
  std::optional<WatchResponse> second = readOne(*stream->reader);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->profile(), "app");
  EXPECT_EQ(first->generation(), app->generation() + 10);
  EXPECT_EQ(second->profile(), "batch");
  EXPECT_EQ(second->generation(), batch->generation() + 11);
  feed_->close();
  EXPECT_FALSE(readOne(*stream->reader));
  EXPECT_EQ(stream->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

// Verifies a Watch of an unknown profile ends at once with NOT_FOUND and
// leaves no subscription behind.
TEST_F(WatchReactorTest, UnknownProfileIsNotFound) {
  start();
  std::unique_ptr<WatchStream> stream = watch("nope");
  EXPECT_FALSE(readOne(*stream->reader));
  const grpc::Status status = stream->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("nope"));
  EXPECT_EQ(feed_->subscribers(), 0);
}

// Verifies finishedWatch() ends the call with the status it was given.
TEST_F(WatchReactorTest, FinishedWatchEndsWithItsStatus) {
  start(std::nullopt, grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no token"));
  std::unique_ptr<WatchStream> stream = watch("");
  EXPECT_FALSE(readOne(*stream->reader));
  const grpc::Status status = stream->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(), "no token");
  EXPECT_EQ(feed_->subscribers(), 0);
}

// Verifies closing the feed (shutdown) ends an open stream with CANCELLED
// after what was queued, and a stream opened after it with CANCELLED after
// its initial state.
TEST_F(WatchReactorTest, ClosingTheFeedEndsStreamsWithCancelled) {
  start(/*own_backlog=*/64);
  std::unique_ptr<WatchStream> stream = watch("app");
  std::optional<WatchResponse> initial = readOne(*stream->reader);
  ASSERT_TRUE(initial);
  feed_->onProfileChanged(change("app", initial->generation() + 1));
  feed_->close();
  std::optional<WatchResponse> queued = readOne(*stream->reader);
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->generation(), initial->generation() + 1);
  EXPECT_FALSE(readOne(*stream->reader));
  grpc::Status status = stream->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));

  std::unique_ptr<WatchStream> late = watch("");
  EXPECT_TRUE(readOne(*late->reader));
  EXPECT_TRUE(readOne(*late->reader));
  EXPECT_FALSE(readOne(*late->reader));
  status = late->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
}

// Verifies a caller that goes away ends its stream: the reactor is done and
// its subscription is gone.
TEST_F(WatchReactorTest, CallerGoingAwayEndsTheStream) {
  start();
  std::unique_ptr<WatchStream> stream = watch("app");
  ASSERT_TRUE(readOne(*stream->reader));
  EXPECT_EQ(feed_->subscribers(), 1);
  stream->context.TryCancel();
  EXPECT_EQ(stream->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(eventually([&] { return feed_->subscribers() == 0; }, kPatience));
  // The feed still serves others.
  std::unique_ptr<WatchStream> next = watch("app");
  ASSERT_TRUE(readOne(*next->reader));
  rotate("app", "AK-2");
  std::optional<WatchResponse> change = readOne(*next->reader);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->access_key_id(), "AK-2");
  next->context.TryCancel();
}

// Verifies stopping the server with streams open and the feed still open
// (its grace period over) cancels them, and that every reactor is released by
// the time Shutdown returns, so the feed may go right after the server.
TEST_F(WatchReactorTest, ServerShutdownEndsOpenStreams) {
  start();
  std::vector<std::unique_ptr<WatchStream>> streams;
  for (const char* profile : {"", "app", "batch"}) {
    streams.push_back(watch(profile));
    ASSERT_TRUE(readOne(*streams.back()->reader));
  }
  EXPECT_EQ(feed_->subscribers(), 3);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Milliseconds(50)));
  EXPECT_EQ(feed_->subscribers(), 0);
  for (const auto& stream : streams) {
    while (readOne(*stream->reader)) {
    }
    EXPECT_FALSE(stream->reader->Finish().ok());
  }
}

// Verifies a caller that stops reading while changes keep coming is ended
// with ABORTED once the feed's backlog overflows, after what it was sent.
TEST_F(WatchReactorTest, SlowReaderIsAborted) {
  start(/*own_backlog=*/4);
  std::unique_ptr<WatchStream> stream = watch("app");
  std::optional<WatchResponse> initial = readOne(*stream->reader);
  ASSERT_TRUE(initial);
  // Large enough that a few fill the stream's HTTP/2 window (64 KiB) and
  // stall its writes; small enough that they fit the socket's buffer, whose
  // filling up makes gRPC 1.51 start a backup poller that delays its
  // shutdown by 10 s.
  const std::string big_id(16 * 1024, 'K');
  constexpr uint64_t kChanges = 200;
  for (uint64_t i = 1; i <= kChanges; ++i) {
    feed_->onProfileChanged(change("app", initial->generation() + i, big_id));
  }
  uint64_t read = 0;
  uint64_t last = initial->generation();
  while (std::optional<WatchResponse> message = readOne(*stream->reader)) {
    EXPECT_GT(message->generation(), last);
    last = message->generation();
    ++read;
  }
  EXPECT_LT(read, kChanges);
  const grpc::Status status = stream->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(status.error_message(), HasSubstr("subscribe again"));
  EXPECT_TRUE(eventually([&] { return feed_->subscribers() == 0; }, kPatience));
}

// Verifies open streams hold no server thread each: many idle watchers add
// few threads to the process, and every one still gets the next change.
TEST_F(WatchReactorTest, OpenStreamsHoldNoThreads) {
  constexpr int kStreams = 64;
  start();
  // Warm up gRPC's own threads with one stream first.
  std::unique_ptr<WatchStream> warm = watch("app");
  ASSERT_TRUE(readOne(*warm->reader));
  const int before = threadCount();
  std::vector<std::unique_ptr<WatchStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(watch(""));
    ASSERT_TRUE(readOne(*streams.back()->reader));
    ASSERT_TRUE(readOne(*streams.back()->reader));
  }
  EXPECT_EQ(feed_->subscribers(), kStreams + 1);
  EXPECT_LT(threadCount() - before, kStreams / 4);

  rotate("batch", "BK-2");
  for (const auto& stream : streams) {
    std::optional<WatchResponse> change = readOne(*stream->reader);
    ASSERT_TRUE(change);
    EXPECT_EQ(change->access_key_id(), "BK-2");
  }
  for (const auto& stream : streams) stream->context.TryCancel();
  warm->context.TryCancel();
  EXPECT_TRUE(eventually([&] { return feed_->subscribers() == 0; }, kPatience));
}

// Verifies, with a publisher, callers opening, reading and cancelling
// streams, and a shutdown all at once, that each stream sees every profile's
// generations rising, ends with a status that says why, and that every
// reactor is released. Run under ThreadSanitizer for the reactor's races.
TEST_F(WatchReactorTest, ConcurrentStreamsChangesCancelsAndShutdown) {
  constexpr int kCallers = 4;
  constexpr int kStreamsPerCaller = 60;
  start(/*own_backlog=*/16);
  // Publishes until every caller is done, so that no read waits in vain.
  std::atomic<bool> callers_done{false};
  std::atomic<uint64_t> published{0};
  std::thread publisher([&] {
    for (uint64_t generation = 2; !callers_done.load(); ++generation) {
      feed_->onProfileChanged(change(generation % 3 == 0 ? "batch" : "app", generation));
      published = generation;
      std::this_thread::yield();
    }
  });

  Mutex mutex;
  std::map<grpc::StatusCode, int> endings;  // guarded by mutex
  std::vector<std::thread> callers;
  for (int caller = 0; caller < kCallers; ++caller) {
    callers.emplace_back([&, caller] {
      for (int i = 0; i < kStreamsPerCaller; ++i) {
        std::unique_ptr<WatchStream> stream = watch(i % 3 == 0 ? "batch" : "");
        std::map<std::string, uint64_t> seen;
        // Most read a little and hang up; every sixth reads on, and is
        // likely to see the server end the stream as it falls behind.
        const int to_read = (caller + i) % 6 == 5 ? 500 : (caller + i) % 6;
        bool ended = false;
        for (int n = 0; n < to_read && !ended; ++n) {
          std::optional<WatchResponse> message = readOne(*stream->reader);
          if (!message) {
            ended = true;
            break;
          }
          EXPECT_GT(message->generation(), seen[message->profile()]);
          seen[message->profile()] = message->generation();
        }
        if (!ended) stream->context.TryCancel();
        const grpc::Status status = stream->reader->Finish();
        // A stream the server ended fell behind: the feed's publisher
        // outpaces one write at a time.
        if (ended) {
          EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED) << status.error_message();
        }
        MutexLock lock(&mutex);
        ++endings[status.error_code()];
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  callers_done = true;
  publisher.join();
  EXPECT_GT(published.load(), 2u);

  // Streams left open when the feed closes end with CANCELLED.
  std::vector<std::unique_ptr<WatchStream>> open;
  for (int i = 0; i < 8; ++i) {
    open.push_back(watch(i % 2 == 0 ? "app" : ""));
    ASSERT_TRUE(readOne(*open.back()->reader));
  }
  feed_->close();
  for (const auto& stream : open) {
    while (readOne(*stream->reader)) {
    }
    EXPECT_EQ(stream->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(eventually([&] { return feed_->subscribers() == 0; }, kPatience));
  MutexLock lock(&mutex);
  int total = 0;
  for (const auto& [code, count] : endings) {
    EXPECT_TRUE(code == grpc::StatusCode::CANCELLED || code == grpc::StatusCode::ABORTED)
        << "status code " << code;
    total += count;
  }
  EXPECT_EQ(total, kCallers * kStreamsPerCaller);
}

}  // namespace
}  // namespace credsync::server
