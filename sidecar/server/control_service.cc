#include "sidecar/server/control_service.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/upstream_error.h"
#include "sidecar/server/proto_time.h"
#include "sidecar/server/reactor_support.h"
#include "sidecar/server/watch_reactor.h"

namespace credsync::server {
namespace {

constexpr char kTokenMetadata[] = "credsync-token";
constexpr char kRetryAfterMetadata[] = "retry-after-seconds";

void setError(const absl::Status& status, credsync::v1::Error* out) {
  out->set_code(absl::StatusCodeToString(status.code()));
  out->set_upstream_code(upstreamCode(status).value_or(""));
  out->set_message(std::string(status.message()));
}

// The metrics label of a Refresh that ended in `status`.
const char* refreshOutcome(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted:
      return "rate_limited";
    case absl::StatusCode::kFailedPrecondition:
      return upstreamCode(status).has_value() ? "failed" : "unchanged";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kInvalidArgument:
      return "invalid";
    case absl::StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case absl::StatusCode::kCancelled:
      return "cancelled";
    default:
      return "failed";
  }
}

// How long the caller is prepared to wait, within the server's own bound.
absl::Duration waitBudget(const grpc::ServerContextBase& context, absl::Time now,
                          absl::Duration cap) {
  const absl::Duration remaining = absl::FromChrono(context.deadline()) - now;
  if (remaining > absl::Hours(24 * 365)) return cap;  // no deadline set
  return std::clamp(remaining, absl::ZeroDuration(), cap);
}

}  // namespace

ControlService::ControlService(sync::SyncEngine& engine, sync::RefreshCoordinator& refresher,
                               sync::ChangeFeed& feed, identity::CredentialProvider& identity,
                               metrics::SidecarMetrics* metrics, const TimeSource& time_source,
                               ControlServiceOptions options)
    : engine_(engine),
      refresher_(refresher),
      feed_(feed),
      identity_(identity),
      metrics_(metrics),
      time_source_(time_source),
      options_(std::move(options)) {}

grpc::Status ControlService::authorize(const grpc::ServerContextBase& context) const {
  // Only containers that mount the output volume reach the socket.
  const std::string peer = context.peer();
  if (options_.is_unix_peer ? options_.is_unix_peer(peer) : absl::StartsWith(peer, "unix:")) {
    return grpc::Status::OK;
  }
  const absl::string_view expected = options_.tcp_token.reveal();
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find(kTokenMetadata);
  if (expected.empty() || found == metadata.end() || found->second.size() != expected.size() ||
      CRYPTO_memcmp(found->second.data(), expected.data(), expected.size()) != 0) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "calls over TCP need the pod token in the credsync-token metadata entry");
  }
  return grpc::Status::OK;
}

namespace {

// One Refresh call: started on a gRPC thread, answered by the coordinator
// (at once, from its dispatcher, or on cancellation), deleted by gRPC.
class RefreshReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit RefreshReactor(sync::RefreshCoordinator& refresher) : refresher_(refresher) {}

  // The coordinator's id for this call, once start() returned it.
  void started(uint64_t id) {
    bool cancel = false;
    {
      MutexLock lock(&mutex_);
      id_ = id;
      cancel = cancelled_;
    }
    if (cancel && id != 0) refresher_.cancel(id);
  }

  void OnCancel() override {
    takeOver(this);
    uint64_t id = 0;
    {
      MutexLock lock(&mutex_);
      cancelled_ = true;
      id = id_;
    }
    // Before started(): started() cancels instead.
    if (id != 0) refresher_.cancel(id);
  }

  void OnDone() override {
    takeOver(this);
    delete this;
  }

 private:
  sync::RefreshCoordinator& refresher_;
  Mutex mutex_;
  uint64_t id_ ABSL_GUARDED_BY(mutex_) = 0;
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace

grpc::ServerUnaryReactor* ControlService::Refresh(grpc::CallbackServerContext* context,
                                                  const credsync::v1::RefreshRequest* request,
                                                  credsync::v1::RefreshResponse* response) {
  auto* reactor = new RefreshReactor(refresher_);
  if (grpc::Status denied = authorize(*context); !denied.ok()) {
    if (metrics_ != nullptr) metrics_->refreshCall("unauthenticated", false);
    handOver(reactor);
    reactor->Finish(denied);
    return reactor;
  }
  sync::RefreshRequest refresh{request->profile(), request->failed_access_key_id(),
                               request->reason(), request->failed_version_id()};
  if (refresher_.waiting() >= options_.max_waiting_refreshes) {
    const grpc::Status status = finishRefresh(
        *context, refresh,
        absl::ResourceExhaustedError(absl::StrCat("refresh: ", options_.max_waiting_refreshes,
                                                  " callers are already waiting; retry later")),
        response);
    handOver(reactor);
    reactor->Finish(status);
    return reactor;
  }
  const absl::Duration budget =
      waitBudget(*context, time_source_.systemTime(), options_.refresh_timeout);
  const uint64_t id = refresher_.start(
      refresh, budget,
      [this, context, reactor, response, refresh](absl::StatusOr<sync::RefreshAnswer> answer) {
        const grpc::Status status = finishRefresh(*context, refresh, std::move(answer), response);
        handOver(reactor);
        reactor->Finish(status);
      });
  reactor->started(id);
  handOver(reactor);
  return reactor;
}

grpc::Status ControlService::finishRefresh(grpc::CallbackServerContext& context,
                                           const sync::RefreshRequest& refresh,
                                           absl::StatusOr<sync::RefreshAnswer> answer,
                                           credsync::v1::RefreshResponse* response) {
  if (!answer.ok()) {
    const char* outcome = refreshOutcome(answer.status());
    if (metrics_ != nullptr) metrics_->refreshCall(outcome, false);
    log::write(answer.status().code() == absl::StatusCode::kNotFound ||
                       answer.status().code() == absl::StatusCode::kInvalidArgument
                   ? log::Level::kInfo
                   : log::Level::kWarn,
               "refresh not served",
               {{"profile", refresh.profile},
                {"failed_access_key_id", refresh.failed_access_key_id},
                {"outcome", outcome},
                {"error", answer.status()}});
    if (const auto wait = sync::RefreshCoordinator::retryAfter(answer.status())) {
      context.AddTrailingMetadata(
          kRetryAfterMetadata,
          absl::StrCat(absl::ToInt64Seconds(absl::Ceil(*wait, absl::Seconds(1)))));
    }
    return toGrpc(answer.status());
  }
  const bool refreshed = answer->outcome == sync::RefreshOutcome::kRefreshed;
  response->set_outcome(refreshed ? credsync::v1::RefreshResponse::OUTCOME_REFRESHED
                                  : credsync::v1::RefreshResponse::OUTCOME_ALREADY_CURRENT);
  response->set_access_key_id(answer->access_key_id);
  response->set_version_id(answer->version_id);
  response->set_generation(answer->generation);
  response->set_coalesced(answer->coalesced);
  setTime(answer->change_time, response, &credsync::v1::RefreshResponse::mutable_change_time);
  if (metrics_ != nullptr) {
    metrics_->refreshCall(refreshed ? "refreshed" : "already_current", answer->coalesced);
  }
  // The caller whose request caused the fetch is worth an info line; the
  // others (a storm can bring a thousand) are at debug level.
  log::write(refreshed && !answer->coalesced ? log::Level::kInfo : log::Level::kDebug,
             "refresh served",
             {{"profile", answer->profile},
              {"failed_access_key_id", refresh.failed_access_key_id},
              {"access_key_id", answer->access_key_id},
              {"version_id", answer->version_id},
              {"outcome", refreshed ? "refreshed" : "already_current"},
              {"coalesced", answer->coalesced},
              {"generation", static_cast<long long>(answer->generation)}});
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<credsync::v1::WatchResponse>* ControlService::Watch(
    grpc::CallbackServerContext* context, const credsync::v1::WatchRequest* request) {
  if (grpc::Status denied = authorize(*context); !denied.ok()) return finishedWatch(denied);
  if (feed_.subscribers() >= options_.max_watch_streams) {
    return finishedWatch(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("watch: ", options_.max_watch_streams, " streams are open; close one first")));
  }
  return startWatch(context, *request, engine_, feed_);
}

grpc::ServerUnaryReactor* ControlService::GetStatus(
    grpc::CallbackServerContext* context, const credsync::v1::GetStatusRequest* /*request*/,
    credsync::v1::GetStatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status denied = authorize(*context); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  for (const sync::ProfileStatus& status : engine_.status()) {
    credsync::v1::ProfileStatus* out = response->add_profiles();
    out->set_name(status.name);
    out->set_secret_name(status.secret_name);
    out->set_required(status.required);
    out->set_written(status.written);
    out->set_access_key_id(status.access_key_id);
    out->set_version_id(status.version_id);
    out->set_kind(status.kind == config::ProfileKind::kGeneric
                      ? credsync::v1::PROFILE_KIND_GENERIC
                      : credsync::v1::PROFILE_KIND_RAM_CREDENTIALS);
    for (const std::string& file : status.files) out->add_files(file);
    out->set_generation(status.generation);
    setTime(status.last_success, out, &credsync::v1::ProfileStatus::mutable_last_success_time);
    setTime(status.last_change, out, &credsync::v1::ProfileStatus::mutable_last_change_time);
    if (!status.last_error.ok()) setError(status.last_error, out->mutable_last_error());
    out->set_consecutive_failures(status.consecutive_failures);
    setTime(status.next_refresh, out->mutable_next_refresh_time());
    setTime(status.next_rotation_date, out,
            &credsync::v1::ProfileStatus::mutable_next_rotation_time);
  }
  const identity::IdentityStatus identity = identity_.status();
  credsync::v1::IdentityStatus* out = response->mutable_identity();
  out->set_type(identity.type);
  setTime(identity.session_expiration, out,
          &credsync::v1::IdentityStatus::mutable_session_expire_time);
  setTime(identity.last_success, out, &credsync::v1::IdentityStatus::mutable_last_success_time);
  if (!identity.last_error.ok()) setError(identity.last_error, out->mutable_last_error());
  response->set_ready(engine_.ready());
  response->set_generation(engine_.generation());
  response->set_version(options_.version);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace credsync::server
