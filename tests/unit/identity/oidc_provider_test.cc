#include "sidecar/identity/oidc_provider.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/alibaba/signature.h"
#include "sidecar/alibaba/sts_client.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"
#include "tests/common/fake_http_client.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"

namespace credsync::identity {
namespace {

using ::credsync::testing::FakeHttpClient;
using ::credsync::testing::IsOk;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

// Always draws the same value; counts the draws (jitter is drawn once per session).
class FixedRandom : public Random {
 public:
  explicit FixedRandom(double value) : value_(value) {}
  double uniform() override {
    ++draws_;
    return value_;
  }
  int draws() const { return draws_.load(); }

 private:
  const double value_;
  std::atomic<int> draws_{0};
};

std::string formatTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

class OidcProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "oidc_provider_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    token_path_ = dir_ + "/token";
    writeToken("eyJhbGciOiJSUzI1NiJ9.first-token.signature");

    config_.role_arn = "acs:ram::1234567890123456:role/credsync-demo";
    config_.oidc_provider_arn = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-cdemo";
    config_.oidc_token_file = token_path_;
    config_.role_session_name = "credsync-pod";
    config_.session_duration = absl::Hours(1);

    log::setSinkForTest([this](absl::string_view line) {
      MutexLock lock(&log_mutex_);
      log_lines_.emplace_back(line);
    });
    // Answers like STS: a new key per exchange, expiring `lifetime_` from now.
    http_.setHandler([this](const http::Request& request) { return answer(request); });
  }

  void TearDown() override {
    log::setSinkForTest(nullptr);
    // No secret of any exchange, nor any OIDC token, reached a log line.
    MutexLock lock(&log_mutex_);
    for (const std::string& line : log_lines_) {
      EXPECT_THAT(line, Not(HasSubstr("secret-"))) << line;
      EXPECT_THAT(line, Not(HasSubstr("token-"))) << line;
      for (const std::string& token : tokens_written_) {
        EXPECT_THAT(line, Not(HasSubstr(token))) << line;
      }
    }
    std::filesystem::remove_all(dir_);
  }

  absl::StatusOr<http::Response> answer(const http::Request& request) {
    const int n = ++exchanges_;
    absl::Duration lifetime;
    {
      MutexLock lock(&answer_mutex_);
      lifetime = lifetime_;
    }
    http::Response response;
    response.status = 200;
    response.body = absl::StrCat(
        R"({"RequestId":"R)", n,
        R"(","AssumedRoleUser":{"Arn":"acs:ram::1:role/credsync-demo/credsync-pod"},)",
        R"("Credentials":{"AccessKeyId":"STS.KEY)", n, R"(","AccessKeySecret":"secret-)", n,
        R"(-0123456789","SecurityToken":"token-)", n, R"(-abcdefghijklmnop","Expiration":")",
        formatTime(time_.systemTime() + lifetime), R"("}})");
    return response;
  }

  void writeToken(const std::string& token) {
    tokens_written_.push_back(token);
    // Written aside and renamed into place, as the kubelet swaps it.
    const std::string temporary = token_path_ + ".tmp";
    std::ofstream(temporary) << token;
    std::filesystem::rename(temporary, token_path_);
  }

  // The OIDCToken sent in the n-th (0-based) request's form body.
  std::string sentToken(size_t n) {
    const std::vector<http::Request> requests = http_.requests();
    EXPECT_GT(requests.size(), n);
    if (requests.size() <= n) return "";
    auto form = alibaba::parseQueryString(requests[n].body);
    EXPECT_THAT(form, IsOk());
    return form.ok() ? form->at("OIDCToken") : "";
  }

  void setLifetime(absl::Duration lifetime) {
    MutexLock lock(&answer_mutex_);
    lifetime_ = lifetime;
  }

  std::vector<std::string> warnings() {
    MutexLock lock(&log_mutex_);
    std::vector<std::string> found;
    for (const std::string& line : log_lines_) {
      if (absl::StrContains(line, R"("level":"warn")")) found.push_back(line);
    }
    return found;
  }

  std::string keyId(const absl::StatusOr<alibaba::AccessKeyCredentials>& credentials) {
    return credentials.ok() ? credentials->access_key_id : credentials.status().ToString();
  }

  CredentialProviderPtr makeProvider(double random_value = 0.0) {
    random_ = std::make_unique<FixedRandom>(random_value);
    return makeOidcProvider(config_, *sts_, time_, *random_);
  }

  // A scripted failure for the next exchange.
  void failNext(int status = 503, absl::string_view code = "ServiceUnavailableTemporary") {
    http_.enqueueResponse(
        status, absl::StrCat(R"({"Code":")", code, R"(","Message":"down","RequestId":"E"})"));
  }

  std::string dir_;
  std::string token_path_;
  std::vector<std::string> tokens_written_;
  config::IdentityConfig config_;
  SimulatedTimeSource time_;
  FakeHttpClient http_;
  alibaba::StsClientPtr sts_ = alibaba::makeStsClient(http_, time_, "https://sts.aliyuncs.com");
  std::unique_ptr<FixedRandom> random_;
  std::atomic<int> exchanges_{0};
  Mutex answer_mutex_;
  absl::Duration lifetime_ ABSL_GUARDED_BY(answer_mutex_) = absl::Hours(1);
  Mutex log_mutex_;
  std::vector<std::string> log_lines_ ABSL_GUARDED_BY(log_mutex_);
};

// Verifies the first call exchanges the token, later calls reuse the session,
// and status() and the info log describe it without secrets.
TEST_F(OidcProviderTest, ExchangesOnceAndCachesSession) {
  CredentialProviderPtr provider = makeProvider();
  absl::StatusOr<alibaba::AccessKeyCredentials> credentials = provider->credentials();
  ASSERT_THAT(credentials, IsOk());
  EXPECT_EQ(credentials->access_key_id, "STS.KEY1");
  EXPECT_EQ(credentials->access_key_secret.reveal(), "secret-1-0123456789");
  EXPECT_EQ(credentials->security_token.reveal(), "token-1-abcdefghijklmnop");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_EQ(http_.requestCount(), 1u);
  EXPECT_EQ(random_->draws(), 1);

  const IdentityStatus status = provider->status();
  EXPECT_EQ(status.type, "oidc");
  EXPECT_EQ(status.session_expiration, time_.systemTime() + absl::Hours(1));
  EXPECT_EQ(status.last_success, time_.systemTime());
  EXPECT_THAT(status.last_error, IsOk());

  MutexLock lock(&log_mutex_);
  ASSERT_THAT(log_lines_, SizeIs(1));
  EXPECT_THAT(log_lines_[0], HasSubstr(R"("level":"info")"));
  EXPECT_THAT(log_lines_[0], HasSubstr(R"("access_key_id":"STS.KEY1")"));
  EXPECT_THAT(log_lines_[0], HasSubstr(R"("expiration":"2026-01-01T01:00:00Z")"));
}

// Verifies the request carries the configured role, provider, session name,
// duration and policy.
TEST_F(OidcProviderTest, SendsConfiguredParameters) {
  config_.policy = R"({"Statement":[]})";
  config_.session_duration = absl::Minutes(20);
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  auto form = alibaba::parseQueryString(http_.lastRequest()->body);
  ASSERT_THAT(form, IsOk());
  EXPECT_EQ(form->at("RoleArn"), config_.role_arn);
  EXPECT_EQ(form->at("OIDCProviderArn"), config_.oidc_provider_arn);
  EXPECT_EQ(form->at("RoleSessionName"), "credsync-pod");
  EXPECT_EQ(form->at("DurationSeconds"), "1200");
  EXPECT_EQ(form->at("Policy"), config_.policy);
  EXPECT_EQ(form->at("OIDCToken"), "eyJhbGciOiJSUzI1NiJ9.first-token.signature");
}

// Verifies a one-hour session refreshes exactly 15 minutes before expiry (no jitter).
TEST_F(OidcProviderTest, RefreshesFifteenMinutesBeforeExpiry) {
  CredentialProviderPtr provider = makeProvider(0.0);
  ASSERT_THAT(provider->credentials(), IsOk());
  time_.advance(absl::Minutes(45) - absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_EQ(http_.requestCount(), 1u);
  time_.advance(absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
  EXPECT_EQ(http_.requestCount(), 2u);
}

// Verifies a 30-minute session refreshes at 2/3 of its lifetime (20 minutes).
TEST_F(OidcProviderTest, RefreshesAtTwoThirdsOfShortSession) {
  setLifetime(absl::Minutes(30));
  CredentialProviderPtr provider = makeProvider(0.0);
  ASSERT_THAT(provider->credentials(), IsOk());
  time_.advance(absl::Minutes(20) - absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  time_.advance(absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
}

// Verifies jitter moves the refresh earlier by random * 10% of the lifetime:
// 3 minutes at 0.5; just under 6 minutes at the top of the range.
TEST_F(OidcProviderTest, AppliesJitterWithinTenPercent) {
  CredentialProviderPtr provider = makeProvider(0.5);
  ASSERT_THAT(provider->credentials(), IsOk());
  time_.advance(absl::Minutes(42) - absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  time_.advance(absl::Seconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
  EXPECT_EQ(random_->draws(), 2);  // once per session, not per call
}

// Verifies the largest possible jitter never exceeds 10% of the lifetime.
TEST_F(OidcProviderTest, JitterUpperBound) {
  CredentialProviderPtr provider = makeProvider(0.999999);
  ASSERT_THAT(provider->credentials(), IsOk());
  // 45 min - 0.999999 * 6 min = 39 min + 0.00036 s.
  time_.advance(absl::Minutes(39));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  time_.advance(absl::Milliseconds(1));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
}

// Verifies the token file is read anew for every exchange, including after
// invalidate(), so the kubelet's rotated token is always the one sent.
TEST_F(OidcProviderTest, ReReadsTokenFileOnEveryExchange) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  writeToken("eyJhbGciOiJSUzI1NiJ9.second-token.signature\n");
  time_.advance(absl::Minutes(46));
  ASSERT_THAT(provider->credentials(), IsOk());
  writeToken("eyJhbGciOiJSUzI1NiJ9.third-token.signature");
  provider->invalidate();
  ASSERT_THAT(provider->credentials(), IsOk());
  ASSERT_EQ(http_.requestCount(), 3u);
  EXPECT_EQ(sentToken(0), "eyJhbGciOiJSUzI1NiJ9.first-token.signature");
  EXPECT_EQ(sentToken(1), "eyJhbGciOiJSUzI1NiJ9.second-token.signature");
  EXPECT_EQ(sentToken(2), "eyJhbGciOiJSUzI1NiJ9.third-token.signature");
}

// Verifies a missing, empty or unreadable token file is FAILED_PRECONDITION
// naming the path, and nothing is sent.
TEST_F(OidcProviderTest, TokenFileProblemsAreFailedPrecondition) {
  std::filesystem::remove(token_path_);
  CredentialProviderPtr provider = makeProvider();
  EXPECT_THAT(provider->credentials(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(absl::StrCat(token_path_, ": does not exist"))));

  writeToken("  \n");
  EXPECT_THAT(provider->credentials(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(absl::StrCat(token_path_, ": is empty"))));

  config_.oidc_token_file = dir_;  // a directory: opens, cannot be read
  CredentialProviderPtr directory = makeProvider();
  EXPECT_THAT(directory->credentials(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                 HasSubstr(absl::StrCat(dir_, ": cannot read"))));

  config_.oidc_token_file = token_path_;
  writeToken(std::string(70 * 1024, 'a'));
  CredentialProviderPtr huge = makeProvider();
  EXPECT_THAT(huge->credentials(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("larger than")));
  EXPECT_EQ(http_.requestCount(), 0u);
  EXPECT_THAT(provider->status().last_error, StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Verifies that while a refresh fails and the session is still valid, the
// session is served, the error shows in status(), a warning is logged once
// per failure streak, and retries are held off for 30 seconds.
TEST_F(OidcProviderTest, ServesCurrentSessionWhileRefreshFails) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  time_.advance(absl::Minutes(46));

  failNext();
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_EQ(http_.requestCount(), 2u);
  EXPECT_THAT(provider->status().last_error, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(warnings(), SizeIs(1));
  EXPECT_THAT(warnings()[0], HasSubstr("serving the current session"));

  // Held off: no new attempt for 30 s, the good session is served at once.
  time_.advance(absl::Seconds(29));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_EQ(http_.requestCount(), 2u);

  // Another failure in the same streak: no second warning.
  time_.advance(absl::Seconds(1));
  failNext();
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");
  EXPECT_EQ(http_.requestCount(), 3u);
  EXPECT_THAT(warnings(), SizeIs(1));

  // Recovery clears the error; the next failure starts a new streak.
  time_.advance(absl::Seconds(30));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
  EXPECT_THAT(provider->status().last_error, IsOk());
  time_.advance(absl::Minutes(46));
  failNext(400, "Throttling.User");
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
  EXPECT_THAT(warnings(), SizeIs(2));
  EXPECT_EQ(upstreamCode(provider->status().last_error), "Throttling.User");
}

// Verifies a session is never returned once less than a minute of it is
// left: the refresh error is returned instead, and stays so after expiry.
TEST_F(OidcProviderTest, NeverReturnsExpiredSession) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());

  time_.advance(absl::Minutes(59) - absl::Seconds(1));
  failNext();
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY1");

  time_.advance(absl::Seconds(1));  // exactly one minute left
  failNext();
  EXPECT_THAT(provider->credentials(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("ServiceUnavailableTemporary")));

  time_.advance(absl::Hours(2));
  failNext(400, "AuthenticationFail.OIDCToken.Expired");
  EXPECT_THAT(provider->credentials(), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(warnings(), SizeIs(1));
}

// Verifies a session already expired on arrival (a skewed clock) is refused.
TEST_F(OidcProviderTest, RefusesSessionExpiredOnArrival) {
  setLifetime(absl::Seconds(30));
  CredentialProviderPtr provider = makeProvider();
  EXPECT_THAT(provider->credentials(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("check the node's time")));
  setLifetime(-absl::Hours(1));
  EXPECT_THAT(provider->credentials(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(provider->status().session_expiration, std::nullopt);
}

// Verifies invalidate() forces a new exchange and never falls back to the
// rejected session.
TEST_F(OidcProviderTest, InvalidateForcesNewExchange) {
  CredentialProviderPtr provider = makeProvider();
  ASSERT_EQ(keyId(provider->credentials()), "STS.KEY1");
  provider->invalidate();
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY2");
  EXPECT_EQ(http_.requestCount(), 2u);

  provider->invalidate();
  failNext();
  EXPECT_THAT(provider->credentials(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(keyId(provider->credentials()), "STS.KEY3");  // no hold-off without a session
}

// Verifies an empty configured session name falls back to "credsync".
TEST_F(OidcProviderTest, DefaultsSessionName) {
  config_.role_session_name.clear();
  CredentialProviderPtr provider = makeProvider();
  ASSERT_THAT(provider->credentials(), IsOk());
  EXPECT_EQ(alibaba::parseQueryString(http_.lastRequest()->body)->at("RoleSessionName"),
            "credsync");
}

// Verifies 16 concurrent callers share one exchange: one request, one key.
TEST_F(OidcProviderTest, ConcurrentCallersShareOneExchange) {
  Notification release;
  http_.setHandler([&](const http::Request& request) {
    release.WaitForNotification();
    return answer(request);
  });
  CredentialProviderPtr provider = makeProvider();

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
  // The leader is inside the (blocked) exchange; everyone else waits on it.
  while (http_.requestCount() == 0) std::this_thread::yield();
  release.Notify();
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(http_.requestCount(), 1u);
  for (const std::string& key : keys) EXPECT_EQ(key, "STS.KEY1");
}

// Verifies callers waiting on a failing exchange get its error instead of
// each starting another exchange.
TEST_F(OidcProviderTest, WaitersShareFailedExchange) {
  Notification entered;
  Notification release;
  http_.setHandler([&](const http::Request&) -> absl::StatusOr<http::Response> {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
    return absl::UnavailableError("connect: refused");
  });
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
  // request count proves none of them started its own.
  for (int i = 0; i < 1000; ++i) std::this_thread::yield();
  EXPECT_EQ(http_.requestCount(), 1u);
  release.Notify();
  leader.join();
  for (std::thread& waiter : waiters) waiter.join();
  EXPECT_THAT(leader_result, StatusIs(absl::StatusCode::kUnavailable));
  for (const auto& result : results) EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnavailable));
  // Late arrivals (after the flight ended) may have tried again; never more
  // than one each.
  EXPECT_LE(http_.requestCount(), 5u);
}

}  // namespace
}  // namespace credsync::identity
