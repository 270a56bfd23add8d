#include "sidecar/identity/session_provider.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"

namespace credsync::identity {
namespace {

// The official SDKs' stale time: refresh this long before Expiration.
constexpr absl::Duration kRefreshBeforeExpiry = absl::Minutes(15);
// Jitter, as a fraction of the session lifetime, so that pods started
// together do not refresh together.
constexpr double kJitterFraction = 0.1;
// A session is handed out only while at least this much of it is left, so a
// request signed with it still arrives at KMS before it expires.
constexpr absl::Duration kMinRemainingValidity = absl::Minutes(1);
// After a failed refresh while the current session is still good, the next
// attempt waits this long: callers keep getting the good session at once
// instead of each waiting on a dead endpoint.
constexpr absl::Duration kRetryHoldOff = absl::Seconds(30);

std::string formatTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

class SessionProvider : public CredentialProvider {
 public:
  SessionProvider(SessionProviderOptions options, SessionExchange exchange,
                  const TimeSource& time_source, Random& random)
      : options_(std::move(options)),
        exchange_(std::move(exchange)),
        time_source_(time_source),
        random_(random) {}

  absl::StatusOr<alibaba::AccessKeyCredentials> credentials() override {
    {
      MutexLock lock(&mutex_);
      const absl::Time now = time_source_.systemTime();
      if (session_ && now < session_->refresh_at) return session_->credentials;
      if (exchanging_) {
        // Single flight: wait for the exchange under way and take its
        // outcome, whatever it is, rather than starting another.
        const uint64_t awaited = exchanges_completed_;
        while (exchanges_completed_ == awaited) exchange_done_.Wait(&mutex_);
        return outcomeLocked(time_source_.systemTime());
      }
      if (usableLocked(now) && now < next_attempt_) return session_->credentials;
      exchanging_ = true;
    }

    // The exchange (file read, HTTP) runs unlocked: status() and callers
    // holding a fresh session are never blocked behind the network.
    absl::StatusOr<alibaba::StsSession> result = exchange_();

    MutexLock lock(&mutex_);
    exchanging_ = false;
    ++exchanges_completed_;
    exchange_done_.SignalAll();
    const absl::Time now = time_source_.systemTime();
    if (result.ok()) {
      installLocked(*std::move(result), now);
    } else {
      recordFailureLocked(result.status(), now);
    }
    return outcomeLocked(now);
  }

  void invalidate() override {
    MutexLock lock(&mutex_);
    // The session was rejected upstream: never serve it again, not even as a
    // fallback while the issuer is down.
    session_.reset();
    next_attempt_ = absl::InfinitePast();
  }

  IdentityStatus status() const override {
    MutexLock lock(&mutex_);
    IdentityStatus status;
    status.type = options_.type;
    if (session_) status.session_expiration = session_->expiration;
    status.last_success = last_success_;
    status.last_error = last_error_;
    return status;
  }

 private:
  struct Session {
    alibaba::AccessKeyCredentials credentials;
    absl::Time expiration;
    absl::Time refresh_at;
  };

  bool usableLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return session_ && now + kMinRemainingValidity < session_->expiration;
  }

  absl::StatusOr<alibaba::AccessKeyCredentials> outcomeLocked(absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (usableLocked(now)) return session_->credentials;
    if (!last_error_.ok()) return last_error_;
    return absl::UnavailableError(absl::StrCat(options_.label, ": no valid STS session"));
  }

  void installLocked(alibaba::StsSession received, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    const absl::Duration lifetime = received.expiration - now;
    if (lifetime <= kMinRemainingValidity) {
      // Only a clock far off from the issuer's produces this; no retry fixes it.
      recordFailureLocked(
          absl::FailedPreconditionError(absl::StrCat(
              options_.label, ": ", options_.issuer, " returned a session expiring at ",
              formatTime(received.expiration), ", already past (or nearly) by the local clock ",
              formatTime(now), "; check the node's time")),
          now);
      return;
    }
    // 15 minutes before expiry, or at 2/3 of a shorter lifetime; minus a
    // jitter drawn once per session.
    const absl::Duration margin = std::min(kRefreshBeforeExpiry, lifetime / 3);
    const absl::Duration jitter = random_.uniformDuration(lifetime * kJitterFraction);
    Session session;
    session.credentials = std::move(received.credentials);
    session.expiration = received.expiration;
    session.refresh_at = received.expiration - margin - jitter;
    log::info("STS session obtained", {{"identity", options_.type},
                                       {"access_key_id", session.credentials.access_key_id},
                                       {"expiration", formatTime(session.expiration)},
                                       {"refresh_at", formatTime(session.refresh_at)},
                                       {"request_id", received.request_id}});
    session_ = std::move(session);
    last_success_ = now;
    last_error_ = absl::OkStatus();
    next_attempt_ = absl::InfinitePast();
    failing_ = false;
  }

  void recordFailureLocked(const absl::Status& error, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    last_error_ = error;
    const bool serving_current = usableLocked(now);
    if (serving_current) next_attempt_ = now + kRetryHoldOff;
    if (failing_) return;
    // Once per failure streak: the scheduler's retries would otherwise
    // repeat the same line.
    failing_ = true;
    if (serving_current) {
      log::warn("STS session refresh failed; serving the current session until it expires",
                {{"identity", options_.type},
                 {"error", error},
                 {"session_expiration", formatTime(session_->expiration)}});
    } else {
      log::warn("STS session exchange failed; no valid session",
                {{"identity", options_.type}, {"error", error}});
    }
  }

  const SessionProviderOptions options_;
  const SessionExchange exchange_;
  const TimeSource& time_source_;
  Random& random_;

  mutable Mutex mutex_;
  CondVar exchange_done_;
  std::optional<Session> session_ ABSL_GUARDED_BY(mutex_);
  bool exchanging_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t exchanges_completed_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::Time next_attempt_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  absl::Status last_error_ ABSL_GUARDED_BY(mutex_);
  std::optional<absl::Time> last_success_ ABSL_GUARDED_BY(mutex_);
  bool failing_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace

CredentialProviderPtr makeSessionProvider(SessionProviderOptions options, SessionExchange exchange,
                                          const TimeSource& time_source, Random& random) {
  return std::make_unique<SessionProvider>(std::move(options), std::move(exchange), time_source,
                                           random);
}

}  // namespace credsync::identity
