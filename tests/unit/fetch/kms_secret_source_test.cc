#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/alibaba/kms_client.h"
#include "sidecar/alibaba/signature.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"
#include "sidecar/fetch/secret_source.h"
#include "tests/common/fake_http_client.h"
#include "tests/common/fake_identity.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"

namespace credsync::fetch {
namespace {

using ::credsync::testing::FakeIdentity;

using ::credsync::testing::FakeHttpClient;
using ::credsync::testing::IsOk;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr absl::string_view kManagedSecret = "ManagedKeySecretValue0123456789";

absl::Time utc(int year, int month, int day, int hour, int minute, int second) {
  return absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                         absl::UTCTimeZone());
}

nlohmann::json emulatorAnswer() {
  nlohmann::json secret_data = {{"AccessKeyId", "LTAI5tManagedKey0001"},
                                {"AccessKeySecret", std::string(kManagedSecret)},
                                {"GenerateTimestamp", "2026-01-01T00:00:00Z"}};
  return {
      {"RequestId", "7E1C4A44-6E0B-4D4B-9C7B-8A1E2B3C4D5E"},
      {"SecretName", "acs/ram/user/demo-app"},
      {"SecretType", "RAMCredentials"},
      {"SecretData", secret_data.dump()},
      {"SecretDataType", "text"},
      {"VersionId", "v0002"},
      {"VersionStages", {{"VersionStage", {"ACSCurrent"}}}},
      {"CreateTime", "2025-12-01T00:00:00Z"},
      {"LastRotationDate", "2026-01-01T00:00:00Z"},
      {"NextRotationDate", "2026-01-08T00:00:00Z"},
      {"RotationInterval", "604800s"},
      {"AutomaticRotation", "Enabled"},
      {"ExtendedConfig", R"({"SecretSubType":"RamUserAccessKey","UserName":"demo-app"})"},
  };
}

std::string errorBody(absl::string_view code) {
  return nlohmann::json{{"RequestId", "REQ"}, {"Code", std::string(code)}, {"Message", "no"}}
      .dump();
}

std::optional<std::string> headerOf(const http::Request& request, absl::string_view name) {
  for (const auto& [header, value] : request.headers) {
    if (absl::EqualsIgnoreCase(header, name)) return value;
  }
  return std::nullopt;
}

class KmsSecretSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::setSinkForTest([this](absl::string_view line) {
      MutexLock lock(&log_mutex_);
      log_lines_.emplace_back(line);
    });
    profile_.name = "default";
    profile_.secret_name = "acs/ram/user/demo-app";
  }
  void TearDown() override {
    log::setSinkForTest(nullptr);
    MutexLock lock(&log_mutex_);
    for (const std::string& line : log_lines_) {
      EXPECT_THAT(line, Not(HasSubstr("session-secret-")));
      EXPECT_THAT(line, Not(HasSubstr("session-token-")));
      EXPECT_THAT(line, Not(HasSubstr(std::string(kManagedSecret))));
    }
  }

  SecretSourcePtr source(std::vector<std::string> endpoints) {
    std::vector<KmsBackendPtr> backends;
    for (std::string& endpoint : endpoints) {
      backends.push_back(makeOpenApiBackend(*kms_, std::move(endpoint)));
    }
    return makeKmsSecretSource(&identity_, std::move(backends), breaker_, time_);
  }

  static void expectNoSecrets(const absl::Status& status) {
    for (const std::string& secret : {std::string("session-secret-"), std::string("session-token-"),
                                      std::string(kManagedSecret)}) {
      EXPECT_THAT(status.ToString(), Not(HasSubstr(secret)));
    }
  }

  std::vector<std::string> hosts() {
    std::vector<std::string> hosts;
    for (const http::Request& request : http_.requests()) {
      hosts.push_back(headerOf(request, "host").value_or(""));
    }
    return hosts;
  }

  size_t warningCount() {
    MutexLock lock(&log_mutex_);
    size_t count = 0;
    for (const std::string& line : log_lines_) {
      if (absl::StrContains(line, R"("level":"warn")")) ++count;
    }
    return count;
  }

  config::ProfileConfig profile_;
  CircuitBreakerOptions breaker_;
  FakeIdentity identity_;
  FakeHttpClient http_;
  SimulatedTimeSource time_;
  alibaba::KmsClientPtr kms_ =
      alibaba::makeKmsClient(http_, time_, alibaba::SignatureScheme::kAcs3HmacSha256);
  Mutex log_mutex_;
  std::vector<std::string> log_lines_ ABSL_GUARDED_BY(log_mutex_);
};

// Verifies a fetch fills every ManagedCredential field from the answer.
TEST_F(KmsSecretSourceTest, FillsManagedCredential) {
  http_.enqueueResponse(200, emulatorAnswer().dump());
  SecretSourcePtr kms = source({"https://kms.cn-hangzhou.aliyuncs.com"});
  absl::StatusOr<ManagedCredential> credential = kms->fetch(profile_);
  ASSERT_THAT(credential, IsOk());
  EXPECT_EQ(credential->access_key_id, "LTAI5tManagedKey0001");
  EXPECT_EQ(credential->access_key_secret.reveal(), kManagedSecret);
  EXPECT_EQ(credential->version_id, "v0002");
  EXPECT_EQ(credential->generate_timestamp, utc(2026, 1, 1, 0, 0, 0));
  EXPECT_EQ(credential->next_rotation_date, utc(2026, 1, 8, 0, 0, 0));
  EXPECT_EQ(credential->rotation_interval, absl::Hours(168));
  EXPECT_EQ(credential->endpoint, "https://kms.cn-hangzhou.aliyuncs.com");

  const http::Request sent = http_.lastRequest().value();
  EXPECT_EQ(headerOf(sent, "x-acs-security-token"), "session-token-1");
  EXPECT_THAT(sent.url, HasSubstr("SecretName=acs%2Fram%2Fuser%2Fdemo-app"));
  EXPECT_THAT(sent.url, HasSubstr("VersionStage=ACSCurrent"));
}

// Verifies the profile's version stage is what is asked for.
TEST_F(KmsSecretSourceTest, AsksForConfiguredStage) {
  profile_.version_stage = "ACSPrevious";
  http_.enqueueResponse(200, emulatorAnswer().dump());
  ASSERT_THAT(source({"https://kms.cn-hangzhou.aliyuncs.com"})->fetch(profile_), IsOk());
  EXPECT_THAT(http_.lastRequest()->url, HasSubstr("VersionStage=ACSPrevious"));
}

// Verifies endpoints are tried in order, moving on only after retryable
// failures (5xx, transport, throttling, malformed answer), with a warning each.
TEST_F(KmsSecretSourceTest, FailsOverInOrderOnRetryableErrors) {
  http_.enqueueResponse(503, errorBody("ServiceUnavailableTemporary"));
  http_.enqueueStatus(absl::UnavailableError("connect: refused"));
  http_.enqueueResponse(400, errorBody("Rejected.Throttling"));
  http_.enqueueResponse(200, "{truncated");
  http_.enqueueResponse(200, emulatorAnswer().dump());
  SecretSourcePtr kms =
      source({"https://kms-a.example", "https://kms-b.example", "https://kms-c.example",
              "https://kms-d.example", "https://kms-e.example"});
  absl::StatusOr<ManagedCredential> credential = kms->fetch(profile_);
  ASSERT_THAT(credential, IsOk());
  EXPECT_EQ(credential->endpoint, "https://kms-e.example");
  EXPECT_EQ(hosts(), (std::vector<std::string>{"kms-a.example", "kms-b.example", "kms-c.example",
                                               "kms-d.example", "kms-e.example"}));
  EXPECT_EQ(warningCount(), 4u);
}

// Verifies permission, not-found and invalid-argument answers do not fail over.
TEST_F(KmsSecretSourceTest, DoesNotFailOverOnDefinitiveErrors) {
  struct Case {
    int status;
    std::string code;
    absl::StatusCode expected;
  };
  for (const Case& test : {Case{403, "Forbidden.NoPermission", absl::StatusCode::kPermissionDenied},
                           Case{404, "Forbidden.ResourceNotFound", absl::StatusCode::kNotFound},
                           Case{400, "InvalidParameter", absl::StatusCode::kInvalidArgument}}) {
    http_.clearRequests();
    http_.enqueueResponse(test.status, errorBody(test.code));
    absl::StatusOr<ManagedCredential> credential =
        source({"https://kms-a.example", "https://kms-b.example"})->fetch(profile_);
    EXPECT_THAT(credential,
                StatusIs(test.expected,
                         AllOf(StartsWith("profile default (secret acs/ram/user/demo-app): "),
                               HasSubstr(test.code))));
    EXPECT_THAT(upstreamCode(credential.status()), Optional(test.code));
    EXPECT_FALSE(isRetryable(credential.status()));
    EXPECT_EQ(http_.requestCount(), 1u) << test.code;
  }
  EXPECT_EQ(identity_.invalidations(), 0);
}

// Verifies that when every endpoint fails retryably, the last error is
// returned, still retryable and with its upstream code.
TEST_F(KmsSecretSourceTest, ReturnsLastErrorWhenAllEndpointsFail) {
  http_.enqueueStatus(absl::DeadlineExceededError("timeout"));
  http_.enqueueResponse(500, errorBody("InternalFailure"));
  absl::StatusOr<ManagedCredential> credential =
      source({"https://kms-a.example", "https://kms-b.example"})->fetch(profile_);
  EXPECT_THAT(credential, StatusIs(absl::StatusCode::kUnavailable,
                                   AllOf(HasSubstr("all 2 KMS endpoints failed"),
                                         HasSubstr("InternalFailure"))));
  EXPECT_TRUE(isRetryable(credential.status()));
  EXPECT_THAT(upstreamCode(credential.status()), Optional(std::string("InternalFailure")));
  EXPECT_EQ(http_.requestCount(), 2u);
}

// Verifies a session KMS rejects as unauthenticated is invalidated and the
// call made once more with the new session, which succeeds.
TEST_F(KmsSecretSourceTest, InvalidatesAndRetriesRejectedSession) {
  http_.enqueueResponse(400, errorBody("InvalidSecurityToken.Expired"));
  http_.enqueueResponse(200, emulatorAnswer().dump());
  absl::StatusOr<ManagedCredential> credential =
      source({"https://kms-a.example", "https://kms-b.example"})->fetch(profile_);
  ASSERT_THAT(credential, IsOk());
  EXPECT_EQ(identity_.invalidations(), 1);
  const std::vector<http::Request> requests = http_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(headerOf(requests[0], "x-acs-security-token"), "session-token-1");
  EXPECT_EQ(headerOf(requests[1], "x-acs-security-token"), "session-token-2");
  // The retry starts over at the first endpoint.
  EXPECT_EQ(hosts(), (std::vector<std::string>{"kms-a.example", "kms-a.example"}));
}

// Verifies the invalidate-and-retry happens once only.
TEST_F(KmsSecretSourceTest, RetriesRejectedSessionOnlyOnce) {
  http_.enqueueResponse(404, errorBody("InvalidAccessKeyId.NotFound"));
  http_.enqueueResponse(400, errorBody("InvalidSecurityToken.MismatchWithAccessKey"));
  absl::StatusOr<ManagedCredential> credential = source({"https://kms-a.example"})->fetch(profile_);
  EXPECT_THAT(credential, StatusIs(absl::StatusCode::kUnauthenticated,
                                   HasSubstr("InvalidSecurityToken.MismatchWithAccessKey")));
  EXPECT_EQ(identity_.invalidations(), 1);
  EXPECT_EQ(http_.requestCount(), 2u);
  expectNoSecrets(credential.status());
}

// Verifies a permanent key (no security token) is not invalidated and retried.
TEST_F(KmsSecretSourceTest, DoesNotRetryPermanentKey) {
  identity_.setPermanent();
  http_.enqueueResponse(404, errorBody("InvalidAccessKeyId.NotFound"));
  EXPECT_THAT(source({"https://kms-a.example"})->fetch(profile_),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(identity_.invalidations(), 0);
  EXPECT_EQ(http_.requestCount(), 1u);
}

// Verifies identity failures are returned as they are, with no KMS call.
TEST_F(KmsSecretSourceTest, ReturnsIdentityErrors) {
  identity_.setError(absl::FailedPreconditionError("OIDC token file /t: does not exist"));
  EXPECT_THAT(source({"https://kms-a.example"})->fetch(profile_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("does not exist")));
  EXPECT_EQ(http_.requestCount(), 0u);
}

// Verifies a failing re-exchange after a rejected session is returned.
TEST_F(KmsSecretSourceTest, ReturnsErrorOfReExchange) {
  identity_.setErrorAfterInvalidate(alibaba::statusFromApiError(
      "STS AssumeRoleWithOIDC", {400, "AuthenticationFail.OIDCToken.Expired", "expired", "R"}));
  http_.enqueueResponse(400, errorBody("InvalidSecurityToken.Expired"));
  absl::StatusOr<ManagedCredential> credential = source({"https://kms-a.example"})->fetch(profile_);
  EXPECT_THAT(credential,
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("STS AssumeRoleWithOIDC")));
  EXPECT_THAT(upstreamCode(credential.status()),
              Optional(std::string("AuthenticationFail.OIDCToken.Expired")));
  EXPECT_EQ(http_.requestCount(), 1u);
}

// Verifies malformed RAM credentials are INVALID_ARGUMENT without failover
// and without quoting the secret.
TEST_F(KmsSecretSourceTest, RejectsMalformedSecretDataWithoutFailover) {
  nlohmann::json answer = emulatorAnswer();
  answer["SecretData"] =
      nlohmann::json{{"AccessKeyId", ""}, {"AccessKeySecret", std::string(kManagedSecret)}}.dump();
  http_.enqueueResponse(200, answer.dump());
  absl::StatusOr<ManagedCredential> credential =
      source({"https://kms-a.example", "https://kms-b.example"})->fetch(profile_);
  EXPECT_THAT(credential, StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("SecretData.AccessKeyId is empty")));
  expectNoSecrets(credential.status());
  EXPECT_EQ(http_.requestCount(), 1u);

  answer = emulatorAnswer();
  answer["SecretType"] = "Generic";
  http_.enqueueResponse(200, answer.dump());
  EXPECT_THAT(source({"https://kms-a.example"})->fetch(profile_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not RAMCredentials")));
}

// Verifies a source without endpoints fails clearly.
TEST_F(KmsSecretSourceTest, NoEndpointsIsFailedPrecondition) {
  EXPECT_THAT(source({})->fetch(profile_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no KMS endpoint")));
  EXPECT_EQ(http_.requestCount(), 0u);
}

// A backend that needs no identity (as a KMS instance with its client key),
// answering from a script.
class ScriptedBackend : public KmsBackend {
 public:
  explicit ScriptedBackend(std::string endpoint) : endpoint_(std::move(endpoint)) {}
  const std::string& endpoint() const override { return endpoint_; }
  bool usesIdentity() const override { return false; }
  absl::StatusOr<alibaba::SecretValue> getSecretValue(
      const config::ProfileConfig& profile,
      const alibaba::AccessKeyCredentials* credentials) override {
    EXPECT_EQ(credentials, nullptr);
    ++calls;
    if (!next.ok()) return next;
    http::Response response;
    response.status = 200;
    response.body = emulatorAnswer().dump();
    return alibaba::parseGetSecretValueResponse(response);
  }
  absl::Status next;
  int calls = 0;

 private:
  const std::string endpoint_;
};

// Verifies an endpoint that failed `failure_threshold` times in a row is
// skipped while its circuit is open, probed once when the period ends, and
// used again after the probe succeeds.
TEST_F(KmsSecretSourceTest, OpenCircuitSkipsEndpointUntilProbeSucceeds) {
  breaker_.failure_threshold = 2;
  breaker_.open_for = absl::Seconds(30);
  SecretSourcePtr kms = source({"https://kms-a.example", "https://kms-b.example"});
  for (int i = 0; i < 2; ++i) {
    http_.enqueueStatus(absl::UnavailableError("connect: refused"));
    http_.enqueueResponse(200, emulatorAnswer().dump());
    ASSERT_THAT(kms->fetch(profile_), IsOk());
  }
  EXPECT_EQ(kms->endpointHealth()[0].state, CircuitState::kOpen);
  EXPECT_EQ(kms->endpointHealth()[0].times_opened, 1u);
  EXPECT_EQ(kms->endpointHealth()[1].state, CircuitState::kClosed);

  // Open: only kms-b is asked.
  http_.clearRequests();
  http_.enqueueResponse(200, emulatorAnswer().dump());
  ASSERT_THAT(kms->fetch(profile_), IsOk());
  EXPECT_EQ(hosts(), std::vector<std::string>{"kms-b.example"});

  // After the open period the next fetch probes kms-a; it succeeds and closes.
  time_.advance(absl::Seconds(30));
  http_.clearRequests();
  http_.enqueueResponse(200, emulatorAnswer().dump());
  absl::StatusOr<ManagedCredential> credential = kms->fetch(profile_);
  ASSERT_THAT(credential, IsOk());
  EXPECT_EQ(credential->endpoint, "https://kms-a.example");
  EXPECT_EQ(kms->endpointHealth()[0].state, CircuitState::kClosed);
}

// Verifies a failed probe reopens the circuit for twice as long.
TEST_F(KmsSecretSourceTest, FailedProbeDoublesOpenPeriod) {
  breaker_.failure_threshold = 1;
  breaker_.open_for = absl::Seconds(10);
  SecretSourcePtr kms = source({"https://kms-a.example", "https://kms-b.example"});
  http_.enqueueStatus(absl::UnavailableError("reset"));
  http_.enqueueResponse(200, emulatorAnswer().dump());
  ASSERT_THAT(kms->fetch(profile_), IsOk());  // kms-a opens for 10s

  time_.advance(absl::Seconds(10));
  http_.enqueueStatus(absl::UnavailableError("reset"));  // the probe fails
  http_.enqueueResponse(200, emulatorAnswer().dump());
  ASSERT_THAT(kms->fetch(profile_), IsOk());
  EXPECT_EQ(kms->endpointHealth()[0].times_opened, 2u);

  // 10s later it is still open (20s this time): kms-b alone.
  time_.advance(absl::Seconds(10));
  http_.clearRequests();
  http_.enqueueResponse(200, emulatorAnswer().dump());
  ASSERT_THAT(kms->fetch(profile_), IsOk());
  EXPECT_EQ(hosts(), std::vector<std::string>{"kms-b.example"});
}

// Verifies open circuits are not refused locally: when every available
// endpoint failed, the ones with an open circuit are tried, soonest to
// reopen first.
TEST_F(KmsSecretSourceTest, OpenCircuitsAreTriedLastSoonestFirst) {
  breaker_.failure_threshold = 1;
  breaker_.open_for = absl::Seconds(30);
  SecretSourcePtr kms =
      source({"https://kms-a.example", "https://kms-b.example", "https://kms-c.example"});
  http_.enqueueStatus(absl::UnavailableError("down"));
  http_.enqueueResponse(200, emulatorAnswer().dump());
  ASSERT_THAT(kms->fetch(profile_), IsOk());  // kms-a open until +30s
  time_.advance(absl::Seconds(10));
  http_.enqueueStatus(absl::UnavailableError("down"));
  http_.enqueueResponse(200, emulatorAnswer().dump());
  ASSERT_THAT(kms->fetch(profile_), IsOk());  // kms-b open until +40s, kms-c answered
  EXPECT_EQ(kms->endpointHealth()[0].state, CircuitState::kOpen);
  EXPECT_EQ(kms->endpointHealth()[1].state, CircuitState::kOpen);

  // kms-c fails now: then kms-a (reopens at +30s) is tried before kms-b.
  time_.advance(absl::Seconds(5));
  http_.clearRequests();
  http_.enqueueStatus(absl::UnavailableError("down"));
  http_.enqueueStatus(absl::UnavailableError("down"));
  http_.enqueueResponse(200, emulatorAnswer().dump());
  absl::StatusOr<ManagedCredential> credential = kms->fetch(profile_);
  ASSERT_THAT(credential, IsOk());
  EXPECT_EQ(credential->endpoint, "https://kms-b.example");
  EXPECT_EQ(hosts(), (std::vector<std::string>{"kms-c.example", "kms-a.example", "kms-b.example"}));
  EXPECT_EQ(kms->endpointHealth()[1].state, CircuitState::kClosed);

  // All failing: the error counts every endpoint and says which were open.
  http_.enqueueStatus(absl::UnavailableError("down"));
  http_.enqueueStatus(absl::UnavailableError("down"));
  http_.enqueueStatus(absl::UnavailableError("down"));
  EXPECT_THAT(kms->fetch(profile_),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("all 3 KMS endpoints failed (2 with an open circuit)")));
}

// Verifies definitive answers (the endpoint answered) never open a circuit.
TEST_F(KmsSecretSourceTest, DefinitiveErrorsDoNotOpenCircuits) {
  breaker_.failure_threshold = 1;
  SecretSourcePtr kms = source({"https://kms-a.example", "https://kms-b.example"});
  for (int i = 0; i < 3; ++i) {
    http_.enqueueResponse(403, errorBody("Forbidden.NoPermission"));
    ASSERT_THAT(kms->fetch(profile_), StatusIs(absl::StatusCode::kPermissionDenied));
  }
  EXPECT_EQ(kms->endpointHealth()[0].state, CircuitState::kClosed);
  EXPECT_EQ(kms->endpointHealth()[0].times_opened, 0u);
}

// Verifies a threshold of 0 keeps every circuit closed.
TEST_F(KmsSecretSourceTest, ThresholdZeroDisablesBreaker) {
  breaker_.failure_threshold = 0;
  SecretSourcePtr kms = source({"https://kms-a.example", "https://kms-b.example"});
  for (int i = 0; i < 5; ++i) {
    http_.enqueueStatus(absl::UnavailableError("down"));
    http_.enqueueResponse(200, emulatorAnswer().dump());
    ASSERT_THAT(kms->fetch(profile_), IsOk());
  }
  EXPECT_EQ(http_.requestCount(), 10u);
  EXPECT_EQ(kms->endpointHealth()[0].state, CircuitState::kClosed);
}

// Verifies that when the identity fails, OpenAPI endpoints are skipped
// without charging their circuits and a backend that needs no identity (a
// KMS instance) still answers.
TEST_F(KmsSecretSourceTest, IdentityFailureSkipsToBackendsWithoutIdentity) {
  breaker_.failure_threshold = 1;
  identity_.setError(absl::UnavailableError("STS AssumeRoleWithOIDC: connect: refused"));
  std::vector<KmsBackendPtr> backends;
  backends.push_back(makeOpenApiBackend(*kms_, "https://kms-a.example"));
  auto instance = std::make_unique<ScriptedBackend>("https://kst-1.cryptoservice.example");
  ScriptedBackend* instance_ptr = instance.get();
  backends.push_back(std::move(instance));
  SecretSourcePtr kms = makeKmsSecretSource(&identity_, std::move(backends), breaker_, time_);
  absl::StatusOr<ManagedCredential> credential = kms->fetch(profile_);
  ASSERT_THAT(credential, IsOk());
  EXPECT_EQ(credential->endpoint, "https://kst-1.cryptoservice.example");
  EXPECT_EQ(instance_ptr->calls, 1);
  EXPECT_EQ(http_.requestCount(), 0u);
  EXPECT_EQ(kms->endpointHealth()[0].state, CircuitState::kClosed);

  // When the instance fails too, the error says both.
  instance_ptr->next = absl::UnavailableError("KMS instance GetSecretValue: HTTP 503");
  EXPECT_THAT(kms->fetch(profile_),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("HTTP 503"), HasSubstr("OpenAPI endpoints skipped"),
                             HasSubstr("connect: refused"))));
}

// Verifies a source of backends without identity needs no provider.
TEST_F(KmsSecretSourceTest, InstancesOnlyNeedNoIdentity) {
  std::vector<KmsBackendPtr> backends;
  backends.push_back(std::make_unique<ScriptedBackend>("https://kst-1.cryptoservice.example"));
  SecretSourcePtr kms = makeKmsSecretSource(nullptr, std::move(backends), breaker_, time_);
  EXPECT_THAT(kms->fetch(profile_), IsOk());
}

}  // namespace
}  // namespace credsync::fetch
