#include "sidecar/identity/oidc_provider.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/secret.h"

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
// instead of each waiting on a dead STS endpoint.
constexpr absl::Duration kRetryHoldOff = absl::Seconds(30);
// AssumeRoleWithOIDC accepts tokens of up to 20,000 characters.
constexpr size_t kMaxTokenFileBytes = 64 * 1024;

std::string formatTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// Reads the projected service-account token. The kubelet replaces the file
// (atomically, through a symlink swap) as the token ages, so it is read anew
// for every exchange and never cached.
absl::StatusOr<SecretString> readTokenFile(const std::string& path) {
  if (path.empty()) {
    return absl::FailedPreconditionError("OIDC token file: no path configured");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return absl::FailedPreconditionError(absl::StrCat(
        "OIDC token file ", path, ": ",
        error == ENOENT ? "does not exist" : absl::StrCat("cannot open: ", std::strerror(error))));
  }
  std::string buffer(kMaxTokenFileBytes + 1, '\0');
  size_t size = 0;
  int read_error = 0;
  while (size < buffer.size()) {
    const ssize_t count = ::read(fd, buffer.data() + size, buffer.size() - size);
    if (count < 0) {
      if (errno == EINTR) continue;
      read_error = errno;
      break;
    }
    if (count == 0) break;
    size += static_cast<size_t>(count);
  }
  ::close(fd);
  if (read_error != 0) {
    wipeString(buffer);
    return absl::FailedPreconditionError(
        absl::StrCat("OIDC token file ", path, ": cannot read: ", std::strerror(read_error)));
  }
  if (size > kMaxTokenFileBytes) {
    wipeString(buffer);
    return absl::FailedPreconditionError(
        absl::StrCat("OIDC token file ", path, ": larger than ", kMaxTokenFileBytes, " bytes"));
  }
  // A token written by hand often ends in a newline; the JWT itself has none.
  const absl::string_view token =
      absl::StripAsciiWhitespace(absl::string_view(buffer.data(), size));
  if (token.empty()) {
    wipeString(buffer);
    return absl::FailedPreconditionError(absl::StrCat("OIDC token file ", path, ": is empty"));
  }
  SecretString secret{std::string(token)};
  wipeString(buffer);
  return secret;
}

class OidcProvider : public CredentialProvider {
 public:
  OidcProvider(const config::IdentityConfig& config, alibaba::StsClient& sts,
               const TimeSource& time_source, Random& random)
      : role_arn_(config.role_arn),
        oidc_provider_arn_(config.oidc_provider_arn),
        token_file_(config.oidc_token_file),
        role_session_name_(config.role_session_name.empty() ? "credsync"
                                                            : config.role_session_name),
        policy_(config.policy),
        duration_(config.session_duration),
        sts_(sts),
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
    absl::StatusOr<alibaba::StsSession> result = exchange();

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
    // fallback while STS is down.
    session_.reset();
    next_attempt_ = absl::InfinitePast();
  }

  IdentityStatus status() const override {
    MutexLock lock(&mutex_);
    IdentityStatus status;
    status.type = "oidc";
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

  absl::StatusOr<alibaba::StsSession> exchange() {
    absl::StatusOr<SecretString> token = readTokenFile(token_file_);
    if (!token.ok()) return token.status();
    alibaba::AssumeRoleWithOidcRequest request;
    request.role_arn = role_arn_;
    request.oidc_provider_arn = oidc_provider_arn_;
    request.oidc_token = *std::move(token);
    request.role_session_name = role_session_name_;
    request.policy = policy_;
    request.duration = duration_;
    return sts_.assumeRoleWithOidc(request);
  }

  bool usableLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return session_ && now + kMinRemainingValidity < session_->expiration;
  }

  absl::StatusOr<alibaba::AccessKeyCredentials> outcomeLocked(absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (usableLocked(now)) return session_->credentials;
    if (!last_error_.ok()) return last_error_;
    return absl::UnavailableError("OIDC identity: no valid STS session");
  }

  void installLocked(alibaba::StsSession received, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    const absl::Duration lifetime = received.expiration - now;
    if (lifetime <= kMinRemainingValidity) {
      // Only a clock far off from STS's produces this; no retry fixes it.
      recordFailureLocked(
          absl::FailedPreconditionError(absl::StrCat(
              "OIDC identity: STS returned a session expiring at ", formatTime(received.expiration),
              ", already past (or nearly) by the local clock ", formatTime(now),
              "; check the node's time")),
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
    log::info("STS session obtained", {{"access_key_id", session.credentials.access_key_id},
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
                {{"error", error}, {"session_expiration", formatTime(session_->expiration)}});
    } else {
      log::warn("STS session exchange failed; no valid session", {{"error", error}});
    }
  }

  const std::string role_arn_;
  const std::string oidc_provider_arn_;
  const std::string token_file_;
  const std::string role_session_name_;
  const std::string policy_;
  const absl::Duration duration_;
  alibaba::StsClient& sts_;
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

CredentialProviderPtr makeOidcProvider(const config::IdentityConfig& config,
                                       alibaba::StsClient& sts, const TimeSource& time_source,
                                       Random& random) {
  return std::make_unique<OidcProvider>(config, sts, time_source, random);
}

}  // namespace credsync::identity
