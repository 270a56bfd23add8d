#include "sidecar/server/control_service.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "credsync/v1/credsync.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/client/control_client.h"
#include "sidecar/common/mutex.h"
#include "sidecar/server/grpc_server.h"
#include "tests/common/eventually.h"
#include "tests/common/fake_identity.h"
#include "tests/common/fake_secret_source.h"
#include "tests/common/status_matchers.h"
#include "tests/common/sync_harness.h"
#include "tests/common/temp_dir.h"
#include "tests/common/test_config.h"
#include "tests/common/watch_client.h"

namespace credsync::server {
namespace {

using ::credsync::testing::FakeIdentity;

using ::credsync::testing::configWithProfiles;
using ::credsync::testing::eventually;
using ::credsync::testing::IsOk;
using ::credsync::testing::key;
using ::credsync::testing::profile;
using ::credsync::testing::readOne;
using ::credsync::testing::StatusIs;
using ::credsync::testing::SyncHarness;
using ::credsync::testing::TempDir;
using ::credsync::testing::WatchStream;
using ::credsync::v1::CredsyncService;
using ::credsync::v1::RefreshResponse;
using ::credsync::v1::WatchResponse;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPodToken[] = "0123456789abcdef0123456789abcdef";
// Bounds every wait for something that should happen at once, so that a bug
// fails the test instead of hanging it.
constexpr absl::Duration kPatience = absl::Seconds(20);
const absl::Time kSessionExpiry = absl::FromUnixSeconds(1767229200);

// The default profile "app" and an optional one, "batch".
config::Config twoProfiles() {
  config::Config config =
      configWithProfiles({profile("app", "acs/ram/user/app", /*is_default=*/true),
                          profile("batch", "acs/ram/user/batch", /*is_default=*/false,
                                  /*required=*/false)});
  config.refresh.on_demand_burst = 5;
  config.refresh.on_demand_refill = absl::Minutes(10);
  return config;
}

absl::Status permissionDenied() {
  return alibaba::statusFromApiError(
      "GetSecretValue",
      alibaba::ApiErrorInfo{403, "Forbidden.NoPermission", "not allowed", "req-1"});
}

// Remembers the outcome of every Refresh call.
class RecordingMetrics : public metrics::SidecarMetrics {
 public:
  void upstreamCall(absl::string_view, absl::string_view, absl::Duration) override {}
  void fetchCompleted(absl::string_view, bool) override {}
  void refreshCall(absl::string_view outcome, bool coalesced) override {
    MutexLock lock(&mutex_);
    outcomes_.push_back(std::string(outcome) + (coalesced ? "+coalesced" : ""));
  }
  void hooksConfigured(const std::vector<std::string>&) override {}
  void hookRun(absl::string_view, absl::string_view, absl::Duration) override {}
  void localApiRequest(absl::string_view, int) override {}
  std::string render(const metrics::StateSnapshot&, absl::Time) const override { return ""; }
  std::vector<std::string> outcomes() const {
    MutexLock lock(&mutex_);
    return outcomes_;
  }

 private:
  mutable Mutex mutex_;
  std::vector<std::string> outcomes_ ABSL_GUARDED_BY(mutex_);
};

// The real service and server over the sync harness, reached over the Unix
// socket and over 127.0.0.1 TCP. The service, server and clients get the real
// clock: they compare it with gRPC's deadlines, which are wall-clock times.
// The engine and the rate limiter run on the harness's simulated clock.
class ControlServiceTest : public ::testing::Test {
 protected:
  // An RRSA identity with a session that expires at kSessionExpiry.
  ControlServiceTest() {
    identity_.setStatus(identity::IdentityStatus{
        "oidc", kSessionExpiry, kSessionExpiry - absl::Hours(1), absl::OkStatus()});
  }

  void TearDown() override {
    if (!release_fetch_.HasBeenNotified()) release_fetch_.Notify();
    if (server_ != nullptr) {
      harness_->feed().close();
      server_->shutdown(absl::Seconds(5));
    }
    if (harness_ != nullptr) harness_->stopDriver();
  }

  // Starts the engine with `first` answers and serves the control API.
  void start(config::Config config = twoProfiles(),
             std::map<std::string, testing::KmsScript> first = {{"app", {key("AK-1")}},
                                                                {"batch", {key("BK-1")}}}) {
    harness_ = std::make_unique<SyncHarness>(std::move(config));
    harness_->start(first);
    ControlServiceOptions options = options_;
    options.version = "1.2.3";
    options.tcp_token = SecretString(kPodToken);
    const UnixPeerCheck unix_peers = makeUnixPeerCheck();
    options.is_unix_peer = unix_peers.check;
    service_ = std::make_unique<ControlService>(harness_->engine(), harness_->coordinator(),
                                                harness_->feed(), identity_, &metrics_, real_time_,
                                                options);
    GrpcServerOptions server_options;
    server_options.socket_path = dir_.file("credsync.sock");
    server_options.tcp_address = "127.0.0.1:0";
    server_options.health_interval = absl::Milliseconds(20);
    server_options.before_accepting = unix_peers.bind;
    absl::StatusOr<std::unique_ptr<GrpcServer>> server =
        GrpcServer::start(server_options, service_.get(), {}, real_time_);
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    unix_ = CredsyncService::NewStub(grpc::CreateChannel("unix:" + server_options.socket_path,
                                                         grpc::InsecureChannelCredentials()));
    tcp_ = CredsyncService::NewStub(
        grpc::CreateChannel(server_->tcpAddress(), grpc::InsecureChannelCredentials()));
  }

  // Makes the next fetch wait until the test ends (or release_fetch_).
  void holdNextFetch() {
    MutexLock lock(&harness_->source().mutex);
    harness_->source().during_fetch = [this] { release_fetch_.WaitForNotification(); };
  }

  void setDeadline(grpc::ClientContext& context, absl::Duration timeout = kPatience) const {
    context.set_deadline(absl::ToChronoTime(real_time_.systemTime() + timeout));
  }

  grpc::Status refresh(const std::string& profile, const std::string& failed_key,
                       RefreshResponse* response, grpc::ClientContext* context = nullptr) {
    grpc::ClientContext own;
    if (context == nullptr) context = &own;
    if (context->deadline() == std::chrono::system_clock::time_point::max()) {
      setDeadline(*context);
    }
    credsync::v1::RefreshRequest request;
    request.set_profile(profile);
    request.set_failed_access_key_id(failed_key);
    request.set_reason("InvalidAccessKeyId.NotFound");
    return unix_->Refresh(context, request, response);
  }

  std::unique_ptr<WatchStream> watch(const std::string& profile) {
    auto stream = std::make_unique<WatchStream>();
    setDeadline(stream->context);
    credsync::v1::WatchRequest request;
    request.set_profile(profile);
    stream->reader = unix_->Watch(&stream->context, request);
    return stream;
  }

  client::ControlTarget tcpTarget(const std::string& token) const {
    client::ControlTarget target;
    target.tcp_address = server_->tcpAddress();
    target.token = SecretString(token);
    return target;
  }

  ControlServiceOptions options_;  // start() adds the version, token and peer check
  TempDir dir_{"control_service_test"};
  RealTimeSource real_time_;
  FakeIdentity identity_;
  RecordingMetrics metrics_;
  Notification release_fetch_;
  std::unique_ptr<SyncHarness> harness_;
  std::unique_ptr<ControlService> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<CredsyncService::Stub> unix_;
  std::unique_ptr<CredsyncService::Stub> tcp_;
};

// Verifies naming a key that is no longer in the file is answered from
// memory: ALREADY_CURRENT with the current key, and no upstream call.
TEST_F(ControlServiceTest, RefreshOfStaleKeyIsAlreadyCurrentWithoutFetch) {
  start();
  RefreshResponse response;
  const grpc::Status status = refresh("app", "AK-0", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.outcome(), RefreshResponse::OUTCOME_ALREADY_CURRENT);
  EXPECT_EQ(response.access_key_id(), "AK-1");
  EXPECT_EQ(response.generation(), 1u);
  EXPECT_FALSE(response.coalesced());
  EXPECT_EQ(response.change_time().seconds(), absl::ToUnixSeconds(harness_->time().systemTime()));
  EXPECT_EQ(harness_->source().callsOf("app"), 1);
  EXPECT_THAT(metrics_.outcomes(), ElementsAre("already_current"));
}

// Verifies the failed key being in the file causes a fetch whose new key id
// and generation the answer carries, and that the secret is nowhere in it.
TEST_F(ControlServiceTest, RefreshOfFailedKeyFetchesWithoutSendingTheSecret) {
  start();
  harness_->kmsAnswers("app", {key("AK-2")});
  RefreshResponse response;
  grpc::ClientContext context;
  setDeadline(context);
  const grpc::Status status = refresh("app", "AK-1", &response, &context);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.outcome(), RefreshResponse::OUTCOME_REFRESHED);
  EXPECT_EQ(response.access_key_id(), "AK-2");
  EXPECT_EQ(response.generation(), 2u);
  EXPECT_FALSE(response.coalesced());
  EXPECT_TRUE(response.has_change_time());
  EXPECT_EQ(harness_->source().callsOf("app"), 2);

  // The secret is in the file, and only there.
  EXPECT_THAT(harness_->writer().current(), HasSubstr("secret-of-AK-2"));
  EXPECT_THAT(response.SerializeAsString(), Not(HasSubstr("secret-of-AK-2")));
  EXPECT_THAT(response.DebugString(), Not(HasSubstr("secret-of-AK-2")));
  for (const auto* metadata :
       {&context.GetServerInitialMetadata(), &context.GetServerTrailingMetadata()}) {
    for (const auto& [name, value] : *metadata) {
      EXPECT_THAT(std::string(value.data(), value.size()), Not(HasSubstr("secret-of")))
          << std::string(name.data(), name.size());
    }
  }
  EXPECT_THAT(metrics_.outcomes(), ElementsAre("refreshed"));
}

// Verifies "default" names the default profile, an unknown profile is
// NOT_FOUND and an empty one INVALID_ARGUMENT, all without a fetch.
TEST_F(ControlServiceTest, RefreshChecksTheProfile) {
  start();
  RefreshResponse response;
  ASSERT_TRUE(refresh("default", "AK-0", &response).ok());
  EXPECT_EQ(response.access_key_id(), "AK-1");

  grpc::Status status = refresh("nope", "AK-1", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("nope"));
  status = refresh("", "AK-1", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(harness_->source().callsOf("app"), 1);
  EXPECT_THAT(metrics_.outcomes(), ElementsAre("already_current", "not_found", "invalid"));
}

// Verifies KMS returning the failed key again is FAILED_PRECONDITION, and
// that once the profile's budget is spent the answer is RESOURCE_EXHAUSTED
// with the wait in the trailing metadata, which ControlClient hands back.
TEST_F(ControlServiceTest, UnchangedKeyThenRateLimitWithRetryAfter) {
  config::Config config = twoProfiles();
  config.refresh.on_demand_burst = 1;
  start(config);
  harness_->kmsAnswers("app", {key("AK-1")});

  RefreshResponse response;
  grpc::Status status = refresh("app", "AK-1", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("KMS still returns AccessKey AK-1"));

  grpc::ClientContext context;
  status = refresh("app", "AK-1", &response, &context);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto retry_after = trailers.find("retry-after-seconds");
  ASSERT_NE(retry_after, trailers.end());
  EXPECT_EQ(std::string(retry_after->second.data(), retry_after->second.size()), "600");

  // The same through the client library, over the Unix socket.
  client::ControlTarget target;
  target.socket_path = dir_.file("credsync.sock");
  std::unique_ptr<client::ControlClient> client = client::makeControlClient(target, real_time_);
  credsync::v1::RefreshRequest request;
  request.set_profile("app");
  request.set_failed_access_key_id("AK-1");
  std::optional<absl::Duration> wait;
  EXPECT_THAT(client->refresh(request, kPatience, &wait),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("retry in 10m")));
  EXPECT_EQ(wait, absl::Minutes(10));
  EXPECT_EQ(harness_->source().callsOf("app"), 2);
  EXPECT_THAT(metrics_.outcomes(), ElementsAre("unchanged", "rate_limited", "rate_limited"));

  // An error that is not rate limiting carries no retry-after.
  grpc::ClientContext not_found;
  refresh("nope", "AK-1", &response, &not_found);
  EXPECT_EQ(not_found.GetServerTrailingMetadata().count("retry-after-seconds"), 0u);
}

// Verifies a permission failure is FAILED_PRECONDITION and an unreachable
// KMS UNAVAILABLE; the old key stays.
TEST_F(ControlServiceTest, FetchFailuresMapToCodes) {
  start();
  harness_->kmsAnswers("app", {permissionDenied()});
  RefreshResponse response;
  grpc::Status status = refresh("app", "AK-1", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("Forbidden.NoPermission"));

  harness_->kmsAnswers("app", {absl::UnavailableError("connection reset")});
  status = refresh("app", "AK-1", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(harness_->writer().current(), HasSubstr("AK-1"));
}

// Verifies a caller whose deadline passes while the fetch is still running
// gets DEADLINE_EXCEEDED, and the server stops waiting for it too.
TEST_F(ControlServiceTest, DeadlineShorterThanFetchIsDeadlineExceeded) {
  start();
  harness_->kmsAnswers("app", {key("AK-2")});
  holdNextFetch();
  RefreshResponse response;
  grpc::ClientContext context;
  setDeadline(context, absl::Milliseconds(300));
  const grpc::Status status = refresh("app", "AK-1", &response, &context);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  // The client library's timeout is the call's deadline.
  client::ControlTarget target;
  target.socket_path = dir_.file("credsync.sock");
  credsync::v1::RefreshRequest request;
  request.set_profile("app");
  request.set_failed_access_key_id("AK-1");
  EXPECT_THAT(client::makeControlClient(target, real_time_)
                  ->refresh(request, absl::Milliseconds(300), nullptr),
              StatusIs(absl::StatusCode::kDeadlineExceeded));

  // The handlers return although the fetch is still held.
  EXPECT_TRUE(eventually([&] { return harness_->coordinator().waiting() == 0; }));
  EXPECT_TRUE(eventually([&] { return metrics_.outcomes().size() == 2; }));
  EXPECT_EQ(harness_->source().callsOf("app"), 2);

  // Once the fetch completes, the new key is there for the next caller.
  release_fetch_.Notify();
  EXPECT_TRUE(eventually([&] { return harness_->engine().generation() == 2; }));
  ASSERT_TRUE(refresh("app", "AK-1", &response).ok());
  EXPECT_EQ(response.outcome(), RefreshResponse::OUTCOME_ALREADY_CURRENT);
  EXPECT_EQ(response.access_key_id(), "AK-2");
}

// Verifies concurrent callers over gRPC share one upstream call: one causes
// it and the others are answered as coalesced.
TEST_F(ControlServiceTest, ConcurrentRefreshesShareOneFetch) {
  start();
  harness_->kmsAnswers("app", {key("AK-2")});
  constexpr int kCallers = 6;
  {
    MutexLock lock(&harness_->source().mutex);
    harness_->source().during_fetch = [this] {
      // Hold the fetch until every caller waits on it.
      eventually([this] { return harness_->coordinator().waiting() >= kCallers; });
    };
  }
  std::vector<RefreshResponse> responses(kCallers);
  std::vector<grpc::Status> statuses(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] { statuses[i] = refresh("app", "AK-1", &responses[i]); });
  }
  for (std::thread& caller : callers) caller.join();
  int coalesced = 0;
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(responses[i].outcome(), RefreshResponse::OUTCOME_REFRESHED);
    EXPECT_EQ(responses[i].access_key_id(), "AK-2");
    coalesced += responses[i].coalesced() ? 1 : 0;
  }
  EXPECT_EQ(coalesced, kCallers - 1);
  EXPECT_EQ(harness_->source().callsOf("app"), 2);
  EXPECT_THAT(metrics_.outcomes(), Contains("refreshed+coalesced"));
}

// Verifies a Watch of every profile starts with one initial message per
// written profile, then reports a refresh as a change with the key it
// replaced.
TEST_F(ControlServiceTest, WatchSendsInitialStateThenChanges) {
  start();
  std::unique_ptr<WatchStream> stream = watch("");
  std::optional<WatchResponse> first = readOne(*stream->reader);
  std::optional<WatchResponse> second = readOne(*stream->reader);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->profile(), "app");
  EXPECT_EQ(first->access_key_id(), "AK-1");
  EXPECT_EQ(first->generation(), 1u);
  EXPECT_TRUE(first->initial());
  EXPECT_EQ(first->previous_access_key_id(), "");
  EXPECT_TRUE(first->has_change_time());
  EXPECT_EQ(second->profile(), "batch");
  EXPECT_EQ(second->access_key_id(), "BK-1");
  EXPECT_TRUE(second->initial());

  harness_->kmsAnswers("app", {key("AK-2")});
  RefreshResponse response;
  ASSERT_TRUE(refresh("app", "AK-1", &response).ok());
  std::optional<WatchResponse> change = readOne(*stream->reader);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->profile(), "app");
  EXPECT_EQ(change->access_key_id(), "AK-2");
  EXPECT_EQ(change->previous_access_key_id(), "AK-1");
  EXPECT_EQ(change->generation(), response.generation());
  EXPECT_FALSE(change->initial());
  EXPECT_THAT(change->SerializeAsString(), Not(HasSubstr("secret-of")));
  stream->context.TryCancel();
}

// Verifies a profile not yet written gets no initial message, and its first
// key arrives as a change with no previous key.
TEST_F(ControlServiceTest, WatchOfUnwrittenProfileStartsWithItsFirstKey) {
  start(twoProfiles(), {{"app", {key("AK-1")}}, {"batch", {absl::UnavailableError("down")}}});
  std::unique_ptr<WatchStream> stream = watch("batch");
  ASSERT_TRUE(eventually([&] { return harness_->feed().subscribers() == 1; }));
  harness_->kmsAnswers("batch", {key("BK-1")});
  harness_->refreshNow("batch");
  std::optional<WatchResponse> change = readOne(*stream->reader);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->profile(), "batch");
  EXPECT_EQ(change->access_key_id(), "BK-1");
  EXPECT_FALSE(change->initial());
  EXPECT_EQ(change->previous_access_key_id(), "");
  stream->context.TryCancel();
}

// Verifies two watchers of every profile both get a change, and a watcher
// of one profile gets that profile's changes and no other's.
TEST_F(ControlServiceTest, ConcurrentWatchersAndProfileFilter) {
  start();
  std::unique_ptr<WatchStream> all_a = watch("");
  std::unique_ptr<WatchStream> all_b = watch("");
  std::unique_ptr<WatchStream> batch_only = watch("batch");
  for (WatchStream* stream : {all_a.get(), all_b.get()}) {
    ASSERT_TRUE(readOne(*stream->reader));
    ASSERT_TRUE(readOne(*stream->reader));
  }
  std::optional<WatchResponse> initial = readOne(*batch_only->reader);
  ASSERT_TRUE(initial);
  EXPECT_EQ(initial->profile(), "batch");
  EXPECT_TRUE(initial->initial());
  // Every stream has subscribed: each sent its initial messages after.
  EXPECT_EQ(harness_->feed().subscribers(), 3);

  harness_->kmsAnswers("app", {key("AK-2")});
  RefreshResponse response;
  ASSERT_TRUE(refresh("app", "AK-1", &response).ok());
  harness_->kmsAnswers("batch", {key("BK-2")});
  ASSERT_TRUE(refresh("batch", "BK-1", &response).ok());

  for (WatchStream* stream : {all_a.get(), all_b.get()}) {
    std::optional<WatchResponse> app = readOne(*stream->reader);
    std::optional<WatchResponse> batch = readOne(*stream->reader);
    ASSERT_TRUE(app && batch);
    EXPECT_EQ(app->access_key_id(), "AK-2");
    EXPECT_EQ(app->previous_access_key_id(), "AK-1");
    EXPECT_EQ(batch->access_key_id(), "BK-2");
    EXPECT_EQ(batch->previous_access_key_id(), "BK-1");
  }
  // The app change, which came first, is not on the batch stream.
  std::optional<WatchResponse> batch = readOne(*batch_only->reader);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->profile(), "batch");
  EXPECT_EQ(batch->access_key_id(), "BK-2");
  EXPECT_FALSE(batch->initial());
  for (WatchStream* stream : {all_a.get(), all_b.get(), batch_only.get()}) {
    stream->context.TryCancel();
  }
}

// Verifies Watch streams beyond max_watch_streams end at once with
// RESOURCE_EXHAUSTED, and a stream can open again once one has closed.
TEST_F(ControlServiceTest, WatchStreamsBeyondTheCapAreRefused) {
  options_.max_watch_streams = 2;
  start();
  std::unique_ptr<WatchStream> first = watch("app");
  std::unique_ptr<WatchStream> second = watch("app");
  ASSERT_TRUE(readOne(*first->reader) && readOne(*second->reader));
  std::unique_ptr<WatchStream> third = watch("app");
  EXPECT_FALSE(readOne(*third->reader));
  const grpc::Status refused = third->reader->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("2 streams are open"));
  first->context.TryCancel();
  ASSERT_TRUE(eventually([&] { return harness_->feed().subscribers() == 1; }));
  std::unique_ptr<WatchStream> again = watch("app");
  EXPECT_TRUE(readOne(*again->reader));
  second->context.TryCancel();
  again->context.TryCancel();
}

// Verifies a Refresh arriving while max_waiting_refreshes callers wait ends
// at once with RESOURCE_EXHAUSTED, and the waiting ones are still answered.
TEST_F(ControlServiceTest, WaitingRefreshesBeyondTheCapAreRefused) {
  options_.max_waiting_refreshes = 2;
  start();
  harness_->kmsAnswers("app", {key("AK-2")});
  holdNextFetch();
  std::vector<grpc::Status> statuses(2);
  std::vector<RefreshResponse> responses(2);
  std::vector<std::thread> waiting;
  for (int i = 0; i < 2; ++i) {
    waiting.emplace_back([&, i] { statuses[i] = refresh("app", "AK-1", &responses[i]); });
  }
  ASSERT_TRUE(eventually([&] { return harness_->coordinator().waiting() == 2; }));
  RefreshResponse response;
  const grpc::Status refused = refresh("app", "AK-1", &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("2 callers are already waiting"));
  release_fetch_.Notify();
  for (std::thread& caller : waiting) caller.join();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(responses[i].access_key_id(), "AK-2");
  }
}

// Verifies a Watch of an unknown profile ends at once with NOT_FOUND.
TEST_F(ControlServiceTest, WatchOfUnknownProfileIsNotFound) {
  start();
  std::unique_ptr<WatchStream> stream = watch("nope");
  EXPECT_FALSE(readOne(*stream->reader));
  const grpc::Status status = stream->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("nope"));
  EXPECT_EQ(harness_->feed().subscribers(), 0);
}

// Verifies closing the feed (shutdown) ends open streams with CANCELLED,
// after which the server stops well within its grace period.
TEST_F(ControlServiceTest, ClosingTheFeedEndsWatchesAndShutdownIsPrompt) {
  start();
  std::unique_ptr<WatchStream> stream = watch("app");
  ASSERT_TRUE(readOne(*stream->reader));
  harness_->feed().close();
  EXPECT_FALSE(readOne(*stream->reader));
  const grpc::Status status = stream->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));

  const MonotonicTime before = real_time_.monotonicTime();
  server_->shutdown(kPatience);
  EXPECT_LT(real_time_.monotonicTime() - before, absl::ToChronoNanoseconds(kPatience / 2));
}

// Verifies GetStatus reports each profile, a failing profile's error with the
// upstream code, the identity's session and readiness.
TEST_F(ControlServiceTest, GetStatusReportsProfilesIdentityAndReadiness) {
  start(twoProfiles(), {{"app", {key("AK-1", absl::FromUnixSeconds(1769904000))}},
                        {"batch", {permissionDenied()}}});
  grpc::ClientContext context;
  setDeadline(context);
  credsync::v1::GetStatusResponse status;
  ASSERT_TRUE(unix_->GetStatus(&context, {}, &status).ok());

  ASSERT_EQ(status.profiles_size(), 2);
  const credsync::v1::ProfileStatus& app = status.profiles(0);
  EXPECT_EQ(app.name(), "app");
  EXPECT_EQ(app.secret_name(), "acs/ram/user/app");
  EXPECT_TRUE(app.required());
  EXPECT_TRUE(app.written());
  EXPECT_EQ(app.access_key_id(), "AK-1");
  EXPECT_EQ(app.version_id(), "v-AK-1");
  EXPECT_EQ(app.generation(), 1u);
  EXPECT_TRUE(app.has_last_success_time());
  EXPECT_TRUE(app.has_last_change_time());
  EXPECT_FALSE(app.has_last_error());
  EXPECT_EQ(app.consecutive_failures(), 0);
  EXPECT_GT(app.next_refresh_time().seconds(), absl::ToUnixSeconds(harness_->time().systemTime()));
  EXPECT_EQ(app.next_rotation_time().seconds(), 1769904000);

  const credsync::v1::ProfileStatus& batch = status.profiles(1);
  EXPECT_EQ(batch.name(), "batch");
  EXPECT_EQ(batch.secret_name(), "acs/ram/user/batch");
  EXPECT_FALSE(batch.required());
  EXPECT_FALSE(batch.written());
  EXPECT_EQ(batch.access_key_id(), "");
  EXPECT_FALSE(batch.has_last_success_time());
  EXPECT_FALSE(batch.has_last_change_time());
  ASSERT_TRUE(batch.has_last_error());
  EXPECT_EQ(batch.last_error().code(), "PERMISSION_DENIED");
  EXPECT_EQ(batch.last_error().upstream_code(), "Forbidden.NoPermission");
  EXPECT_THAT(batch.last_error().message(), HasSubstr("not allowed"));
  EXPECT_EQ(batch.consecutive_failures(), 1);

  EXPECT_EQ(status.identity().type(), "oidc");
  EXPECT_EQ(status.identity().session_expire_time().seconds(), absl::ToUnixSeconds(kSessionExpiry));
  EXPECT_TRUE(status.identity().has_last_success_time());
  EXPECT_FALSE(status.identity().has_last_error());
  EXPECT_TRUE(status.ready());  // batch is optional
  EXPECT_EQ(status.generation(), 1u);
  EXPECT_EQ(status.version(), "1.2.3");
  EXPECT_THAT(status.SerializeAsString(), Not(HasSubstr("secret-of")));

  // The same through the client library (`credsync check`).
  client::ControlTarget target;
  target.socket_path = dir_.file("credsync.sock");
  absl::StatusOr<credsync::v1::GetStatusResponse> through_client =
      client::makeControlClient(target, real_time_)->status(kPatience);
  ASSERT_THAT(through_client, IsOk());
  ASSERT_EQ(through_client->profiles_size(), 2);
  EXPECT_EQ(through_client->profiles(0).access_key_id(), "AK-1");
  EXPECT_EQ(through_client->profiles(1).last_error().code(), "PERMISSION_DENIED");
  EXPECT_TRUE(through_client->ready());
  EXPECT_EQ(through_client->generation(), 1u);
}

// Verifies GetStatus is not ready while a required profile is unwritten.
TEST_F(ControlServiceTest, GetStatusIsNotReadyWithoutARequiredProfile) {
  config::Config config = twoProfiles();
  config.profiles[1].required = true;
  start(config, {{"app", {key("AK-1")}}, {"batch", {absl::UnavailableError("down")}}});
  grpc::ClientContext context;
  setDeadline(context);
  credsync::v1::GetStatusResponse status;
  ASSERT_TRUE(unix_->GetStatus(&context, {}, &status).ok());
  EXPECT_FALSE(status.ready());
  EXPECT_EQ(status.profiles(1).last_error().code(), "UNAVAILABLE");
}

// Verifies calls over TCP need the pod token: none and a wrong one are
// UNAUTHENTICATED for every method and cause no fetch; the right one works.
TEST_F(ControlServiceTest, TcpCallsNeedThePodToken) {
  start();
  for (const std::optional<std::string>& token : std::vector<std::optional<std::string>>{
           std::nullopt, "wrong-token-wrong-token", "", std::string(kPodToken) + "0"}) {
    const auto prepare = [&](grpc::ClientContext& context) {
      setDeadline(context);
      if (token) context.AddMetadata("credsync-token", *token);
    };
    grpc::ClientContext refresh_context;
    prepare(refresh_context);
    credsync::v1::RefreshRequest request;
    request.set_profile("app");
    request.set_failed_access_key_id("AK-1");
    RefreshResponse response;
    grpc::Status status = tcp_->Refresh(&refresh_context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << token.value_or("(none)");
    EXPECT_THAT(status.error_message(), HasSubstr("credsync-token"));
    EXPECT_THAT(status.error_message(), Not(HasSubstr(kPodToken)));

    grpc::ClientContext status_context;
    prepare(status_context);
    credsync::v1::GetStatusResponse state;
    EXPECT_EQ(tcp_->GetStatus(&status_context, {}, &state).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);

    grpc::ClientContext watch_context;
    prepare(watch_context);
    auto reader = tcp_->Watch(&watch_context, {});
    EXPECT_FALSE(readOne(*reader));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(harness_->source().callsOf("app"), 1);
  EXPECT_EQ(metrics_.outcomes(), std::vector<std::string>(4, "unauthenticated"));

  // The right token, through the client library.
  harness_->kmsAnswers("app", {key("AK-2")});
  credsync::v1::RefreshRequest request;
  request.set_profile("app");
  request.set_failed_access_key_id("AK-1");
  absl::StatusOr<RefreshResponse> refreshed =
      client::makeControlClient(tcpTarget(kPodToken), real_time_)
          ->refresh(request, kPatience, nullptr);
  ASSERT_THAT(refreshed, IsOk());
  EXPECT_EQ(refreshed->access_key_id(), "AK-2");
  EXPECT_THAT(client::makeControlClient(tcpTarget("wrong-token-wrong-token"), real_time_)
                  ->refresh(request, kPatience, nullptr),
              StatusIs(absl::StatusCode::kUnauthenticated));

  grpc::ClientContext context;
  setDeadline(context);
  context.AddMetadata("credsync-token", kPodToken);
  credsync::v1::GetStatusResponse state;
  EXPECT_TRUE(tcp_->GetStatus(&context, {}, &state).ok());
  EXPECT_THAT(client::makeControlClient(tcpTarget(kPodToken), real_time_)->status(kPatience),
              IsOk());
  EXPECT_THAT(client::makeControlClient(tcpTarget("wrong-token-wrong-token"), real_time_)
                  ->status(kPatience),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

// Verifies calls over the Unix socket need no token.
TEST_F(ControlServiceTest, UnixSocketCallsNeedNoToken) {
  start();
  grpc::ClientContext context;
  setDeadline(context);
  credsync::v1::GetStatusResponse state;
  EXPECT_TRUE(unix_->GetStatus(&context, {}, &state).ok());
  std::unique_ptr<WatchStream> stream = watch("app");
  EXPECT_TRUE(readOne(*stream->reader));
  stream->context.TryCancel();
}

}  // namespace
}  // namespace credsync::server
