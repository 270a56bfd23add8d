#include "sidecar/identity/session_provider.h"

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/upstream_error.h"
#include "tests/common/captured_log.h"
#include "tests/common/fake_random.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"

namespace credsync::identity {
namespace {

using ::credsync::testing::CapturedLog;
using ::credsync::testing::FakeRandom;
using ::credsync::testing::IsOk;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// The caching policy on its own, with a scripted exchange in place of STS or
// the metadata service: by default the n-th exchange hands out "STS.KEYn",
// expiring `lifetime` after the simulated now; failNext() scripts an error.
class SessionProviderTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // No secret of any session reached a log line.
    for (const std::string& line : log_.lines()) {
      EXPECT_THAT(line, Not(HasSubstr("secret-"))) << line;
      EXPECT_THAT(line, Not(HasSubstr("token-"))) << line;
    }
  }

  CredentialProviderPtr makeProvider(double random_value = 0.0) {
    random_.set(random_value);
    return makeSessionProvider(
        {"oidc", "OIDC identity", "STS"}, [this] { return exchange(); }, time_, random_);
  }

  // Counted as it starts, so a test can see an exchange that is under way.
  absl::StatusOr<alibaba::StsSession> exchange() {
    std::function<void()> during;
    int n;
    {
      MutexLock lock(&mutex_);
      n = ++exchanges_;
      during = during_exchange_;
    }
    if (during) during();
    MutexLock lock(&mutex_);
    if (!scripted_errors_.empty()) {
      absl::Status error = scripted_errors_.front();
      scripted_errors_.pop_front();
      return error;
    }
    alibaba::StsSession session;
    session.credentials.access_key_id = absl::StrCat("STS.KEY", n);
    session.credentials.access_key_secret = SecretString(absl::StrCat("secret-", n));
    session.credentials.security_token = SecretString(absl::StrCat("token-", n));
    session.expiration = time_.systemTime() + lifetime_;
    session.request_id = absl::StrCat("R", n);
    return session;
  }

  void failNext(absl::Status error = absl::UnavailableError("STS: connect: refused")) {
    MutexLock lock(&mutex_);
    scripted_errors_.push_back(std::move(error));
  }
  void setLifetime(absl::Duration lifetime) {
    MutexLock lock(&mutex_);
    lifetime_ = lifetime;
  }
  // Runs inside every exchange, before it answers, without the fixture's lock.
  void duringExchange(std::function<void()> action) {
    MutexLock lock(&mutex_);
    during_exchange_ = std::move(action);
  }
  int exchanges() {
    MutexLock lock(&mutex_);
    return exchanges_;
  }

  static std::string keyId(const absl::StatusOr<alibaba::AccessKeyCredentials>& credentials) {
    return credentials.ok() ? credentials->access_key_id : credentials.status().ToString();
  }

  CapturedLog log_;
  SimulatedTimeSource time_;
  FakeRandom random_{0.0};
  Mutex mutex_;
  int exchanges_ ABSL_GUARDED_BY(mutex_) = 0;
  std::deque<absl::Status> scripted_errors_ ABSL_GUARDED_BY(mutex_);
  absl::Duration lifetime_ ABSL_GUARDED_BY(mutex_) = absl::Hours(1);
  std::function<void()> during_exchange_ ABSL_GUARDED_BY(mutex_);
};

// Verifies nothing is exchanged before the first call, and status() then
// says only which identity this is.
TEST_F(SessionProviderTest, ExchangesLazily) {
  CredentialProviderPtr provider = makeProvider();
  EXPECT_EQ(exchanges(), 0);
  const IdentityStatus status = provider->status();
  EXPECT_EQ(status.type, "oidc");
  EXPECT_EQ(status.session_expiration, std::nullopt);
  EXPECT_EQ(status.last_success, std::nullopt);
  EXPECT_THAT(status.last_error, IsOk());
}

// Verifies the first call exchanges, later calls reuse the session with all
// three credentials intact, the jitter is drawn once, and status() and one
// info line (without secrets) describe the session.
TEST_F(SessionProviderTest, CachesSession) {
  CredentialProviderPtr provider = makeProvider();
  absl::StatusOr<alibaba::AccessKeyCredentials> first = provider->credentials();
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->access_key_id, "STS.KEY1");
  EXPECT_EQ(first->access_key_secret.reveal(), "secret-1");
  EXPECT_EQ(first->security_token.reveal(), "token-1");
  time_.advance(absl::Minutes(10));
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<alibaba::AccessKeyCredentials> again = provider->credentials();
    ASSERT_THAT(again, IsOk());
    EXPECT_EQ(again->access_key_id, "STS.KEY1");
    EXPECT_EQ(again->access_key_secret.reveal(), "secret-1");
    EXPECT_EQ(again->security_token.reveal(), "token-1");
  }
  EXPECT_EQ(exchanges(), 1);
  EXPECT_EQ(random_.draws(), 1);

  const IdentityStatus status = provider->status();
  EXPECT_EQ(status.session_expiration, time_.systemTime() - absl::Minutes(10) + absl::Hours(1));
  EXPECT_EQ(status.last_success, time_.systemTime() - absl::Minutes(10));
  EXPECT_THAT(status.last_error, IsOk());

  const std::vector<std::string> lines = log_.lines();
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0], HasSubstr(R"("level":"info")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("identity":"oidc")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("access_key_id":"STS.KEY1")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("expiration":"2026-01-01T01:00:00Z")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("refresh_at":"2026-01-01T00:45:00Z")"));
  EXPECT_THAT(lines[0], HasSubstr(R"("request_id":"R1")"));
}

// Verifies a one-hour session refreshes exactly 15 minutes before expiry (no jitter).
TEST_F(SessionProviderTest, RefreshesFifteenMinutesBeforeExpiry) {
  CredentialProviderPtr provider = makeProvider(0.0);
  ASSERT_THAT(provider->credentials(), IsOk());
  time_.advance(absl::Minutes(45) - absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_EQ(exchanges(), 1);
  time_.advance(absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
  EXPECT_EQ(exchanges(), 2);
  EXPECT_EQ(provider->status().session_expiration, time_.systemTime() + absl::Hours(1));
}

// Verifies a 30-minute session refreshes at 2/3 of its lifetime (20 minutes).
TEST_F(SessionProviderTest, RefreshesAtTwoThirdsOfShortSession) {
  setLifetime(absl::Minutes(30));
  CredentialProviderPtr provider = makeProvider(0.0);
  ASSERT_THAT(provider->credentials(), IsOk());
  time_.advance(absl::Minutes(20) - absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  time_.advance(absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
}

// Verifies a session with just over a minute of life is accepted and
// refreshed at 2/3 of it (after 40.7 of its 61 seconds).
TEST_F(SessionProviderTest, AcceptsSessionJustOverOneMinute) {
  setLifetime(absl::Seconds(61));
  CredentialProviderPtr provider = makeProvider(0.0);
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  time_.advance(absl::Seconds(40));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  time_.advance(absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
}

// Verifies jitter moves the refresh earlier by random * 10% of the lifetime:
// 3 minutes at 0.5, drawn once per session.
TEST_F(SessionProviderTest, AppliesJitterWithinTenPercent) {
  CredentialProviderPtr provider = makeProvider(0.5);
  ASSERT_THAT(provider->credentials(), IsOk());
  time_.advance(absl::Minutes(42) - absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  time_.advance(absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
  EXPECT_EQ(random_.draws(), 2);
}

// Verifies the largest possible jitter never exceeds 10% of the lifetime.
TEST_F(SessionProviderTest, JitterUpperBound) {
  CredentialProviderPtr provider = makeProvider(0.999999);
  ASSERT_THAT(provider->credentials(), IsOk());
  // 45 min - 0.999999 * 6 min = 39 min + 0.00036 s.
  time_.advance(absl::Minutes(39));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  time_.advance(absl::Milliseconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
}

// Verifies the exchange's error reaches the caller unchanged (code, message
// and upstream code), is kept in status(), and is logged once per streak.
TEST_F(SessionProviderTest, PropagatesExchangeErrorWithoutSession) {
  CredentialProviderPtr provider = makeProvider();
  failNext(withUpstreamCode(absl::UnauthenticatedError("STS: the OIDC token is expired"),
                            "AuthenticationFail.OIDCToken.Expired"));
  absl::StatusOr<alibaba::AccessKeyCredentials> result = provider->credentials();
  EXPECT_THAT(result,
              StatusIs(absl::StatusCode::kUnauthenticated, Eq("STS: the OIDC token is expired")));
  EXPECT_EQ(upstreamCode(result.status()), "AuthenticationFail.OIDCToken.Expired");
  EXPECT_THAT(provider->status().last_error, StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(provider->status().session_expiration, std::nullopt);

  // Without a session there is no hold-off: the next call tries again.
  failNext(absl::PermissionDeniedError("STS: not allowed"));
  EXPECT_THAT(provider->credentials(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(exchanges(), 2);
  const std::vector<std::string> warnings = log_.linesAt("warn");
  ASSERT_THAT(warnings, SizeIs(1));
  EXPECT_THAT(warnings[0], HasSubstr("no valid session"));
  EXPECT_THAT(warnings[0], HasSubstr("OIDC token is expired"));

  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY3");
  EXPECT_THAT(provider->status().last_error, IsOk());
  EXPECT_EQ(provider->status().last_success, time_.systemTime());
}

// Verifies that while a refresh fails and the session is still valid, the
// session is served, the error shows in status(), a warning is logged once
// per failure streak, and retries are held off for 30 seconds.
TEST_F(SessionProviderTest, ServesCurrentSessionWhileRefreshFails) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  const absl::Time obtained = time_.systemTime();
  time_.advance(absl::Minutes(46));

  failNext();
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_EQ(exchanges(), 2);
  EXPECT_THAT(provider->status().last_error, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(provider->status().last_success, obtained);
  ASSERT_THAT(log_.linesAt("warn"), SizeIs(1));
  EXPECT_THAT(log_.linesAt("warn")[0], HasSubstr("serving the current session"));

  // Held off: no new attempt for 30 s, the good session is served at once.
  time_.advance(absl::Seconds(29));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_EQ(exchanges(), 2);

  // Another failure in the same streak: no second warning.
  time_.advance(absl::Seconds(1));
  failNext();
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_EQ(exchanges(), 3);
  EXPECT_THAT(log_.linesAt("warn"), SizeIs(1));

  // Recovery clears the error; the next failure starts a new streak.
  time_.advance(absl::Seconds(30));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY4");
  EXPECT_THAT(provider->status().last_error, IsOk());
  time_.advance(absl::Minutes(46));
  failNext(absl::ResourceExhaustedError("STS: throttled"));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY4");
  EXPECT_THAT(log_.linesAt("warn"), SizeIs(2));
  EXPECT_THAT(provider->status().last_error, StatusIs(absl::StatusCode::kResourceExhausted));
}

// Verifies that while STS throttles, the valid session is used to its last
// minute (every fetch meanwhile succeeds), with one attempt per hold-off,
// and that after it the throttling error is returned with its mark, so the
// scheduler backs off as throttling asks.
TEST_F(SessionProviderTest, ThrottledStsKeepsTheValidSessionUntilItsLastMinute) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  const absl::Time expiration = time_.systemTime() + absl::Hours(1);
  const absl::Status throttled = markThrottled(absl::UnavailableError(
      "STS AssumeRoleWithOIDC: Throttling.User: Request was denied due to user flow control."));
  time_.advance(absl::Minutes(46));
  int served = 0;
  while (time_.systemTime() + absl::Minutes(1) < expiration - absl::Seconds(30)) {
    failNext(throttled);
    EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
    ++served;
    time_.advance(absl::Seconds(30));
  }
  EXPECT_EQ(served, 25);  // 46 min to 58.5 min, every 30 s
  EXPECT_EQ(exchanges(), 1 + served);
  EXPECT_THAT(log_.linesAt("warn"), SizeIs(1));
  time_.advance(absl::Seconds(31));  // under a minute left
  failNext(throttled);
  const absl::StatusOr<alibaba::AccessKeyCredentials> last = provider->credentials();
  EXPECT_THAT(last, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Throttling.User")));
  EXPECT_TRUE(isThrottled(last.status()));
}

// Verifies a session is never returned once less than a minute of it is
// left: the refresh error is returned instead, and stays so after expiry.
TEST_F(SessionProviderTest, NeverReturnsNearlyExpiredSession) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());

  time_.advance(absl::Minutes(59) - absl::Seconds(1));
  failNext();
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");

  time_.advance(absl::Seconds(1));  // exactly one minute left
  failNext(absl::UnavailableError("STS: 503 ServiceUnavailableTemporary"));
  EXPECT_THAT(provider->credentials(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("ServiceUnavailableTemporary")));

  time_.advance(absl::Hours(2));
  failNext(absl::UnauthenticatedError("STS: expired token"));
  EXPECT_THAT(provider->credentials(), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(log_.linesAt("warn"), SizeIs(1));
}

// Verifies a session expiring within a minute of its arrival (a skewed
// clock) is refused as FAILED_PRECONDITION naming the issuer and both times.
TEST_F(SessionProviderTest, RefusesSessionExpiredOnArrival) {
  setLifetime(absl::Minutes(1));
  CredentialProviderPtr provider = makeProvider();
  EXPECT_THAT(provider->credentials(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("OIDC identity: STS returned a session expiring at "
                                 "2026-01-01T00:01:00Z, already past (or nearly) by the local "
                                 "clock 2026-01-01T00:00:00Z; check the node's time")));
  setLifetime(-absl::Hours(1));
  EXPECT_THAT(provider->credentials(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(provider->status().session_expiration, std::nullopt);
  EXPECT_EQ(provider->status().last_success, std::nullopt);
  EXPECT_EQ(random_.draws(), 0);
}

// Verifies a session that arrives expired while the current one is still
// good leaves the current one in service.
TEST_F(SessionProviderTest, KeepsCurrentSessionWhenReplacementArrivesExpired) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  time_.advance(absl::Minutes(46));
  setLifetime(absl::Seconds(10));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_THAT(provider->status().last_error, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(provider->status().session_expiration, time_.systemTime() + absl::Minutes(14));
}

// Verifies invalidate() forces a new exchange and never falls back to the
// rejected session, not even while the exchange fails.
TEST_F(SessionProviderTest, InvalidateForcesNewExchange) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_EQ(keyId(provider->credentials()), "STS.KEY1");
  provider->invalidate();
  EXPECT_EQ(provider->status().session_expiration, std::nullopt);
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
  EXPECT_EQ(exchanges(), 2);

  provider->invalidate();
  failNext();
  EXPECT_THAT(provider->credentials(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY4");  // no hold-off without a session
}

// Verifies invalidate() also lifts the retry hold-off of a failing refresh.
TEST_F(SessionProviderTest, InvalidateEndsRetryHoldOff) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  time_.advance(absl::Minutes(46));
  failNext();
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");  // now held off for 30 s
  provider->invalidate();
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY3");
}

// Verifies the exchange runs without the provider's lock: status() answers
// from inside it (a locked exchange would deadlock here).
TEST_F(SessionProviderTest, ExchangeRunsUnlocked) {
  CredentialProviderPtr provider = makeProvider();
  std::optional<IdentityStatus> seen;
  duringExchange([&] { seen = provider->status(); });
  ASSERT_THAT(provider->credentials(), IsOk());
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->type, "oidc");
  EXPECT_EQ(seen->session_expiration, std::nullopt);
}

// Verifies 16 concurrent callers share one exchange: one exchange, one key.
TEST_F(SessionProviderTest, ConcurrentCallersShareOneExchange) {
  Notification entered;
  Notification release;
  duringExchange([&] {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
  });
  CredentialProviderPtr provider = makeProvider();

  std::string leader_key;
  std::thread leader([&] { leader_key = keyId(provider->credentials()); });
  entered.WaitForNotification();

  constexpr int kThreads = 16;
  Mutex mutex;
  int started = 0;
  std::vector<std::string> keys(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      {
        MutexLock lock(&mutex);
        ++started;
      }
      keys[i] = keyId(provider->credentials());
    });
  }
  {
    MutexLock lock(&mutex);
    mutex.Await(Condition(
        +[](int* count) { return *count == kThreads; }, &started));
  }
  release.Notify();
  leader.join();
  for (std::thread& thread : threads) thread.join();

  // Callers that came after the flight ended found the fresh session cached.
  EXPECT_EQ(exchanges(), 1);
  EXPECT_EQ(leader_key, "STS.KEY1");
  for (const std::string& key : keys) EXPECT_EQ(key, "STS.KEY1");
}

// Verifies callers waiting on a failing exchange get its error instead of
// each starting another exchange.
TEST_F(SessionProviderTest, WaitersShareFailedExchange) {
  Notification entered;
  Notification release;
  duringExchange([&] {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
  });
  for (int i = 0; i < 5; ++i) failNext();
  CredentialProviderPtr provider = makeProvider();
  absl::StatusOr<alibaba::AccessKeyCredentials> leader_result;
  std::thread leader([&] { leader_result = provider->credentials(); });
  entered.WaitForNotification();

  // The leader is now blocked inside its exchange: these arrive while it runs.
  std::vector<absl::StatusOr<alibaba::AccessKeyCredentials>> results(4);
  std::vector<std::thread> waiters;
  for (auto& result : results) {
    waiters.emplace_back([&] { result = provider->credentials(); });
  }
  // Waiters that already entered credentials() block on the flight; the
  // exchange count proves none of them started its own.
  for (int i = 0; i < 1000; ++i) std::this_thread::yield();
  EXPECT_EQ(exchanges(), 1);
  release.Notify();
  leader.join();
  for (std::thread& waiter : waiters) waiter.join();
  EXPECT_THAT(leader_result, StatusIs(absl::StatusCode::kUnavailable));
  for (const auto& result : results) EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnavailable));
  // Late arrivals (after the flight ended) may have tried again; never more
  // than one each.
  EXPECT_LE(exchanges(), 5);
  EXPECT_THAT(log_.linesAt("warn"), Not(IsEmpty()));
}

}  // namespace
}  // namespace credsync::identity
