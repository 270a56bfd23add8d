#include "sidecar/http/observed_client.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/mutex.h"
#include "tests/common/fake_http_client.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"

namespace credsync::http {
namespace {

using credsync::testing::FakeHttpClient;
using credsync::testing::SimulatedTimeSource;
using credsync::testing::StatusIs;

// A throttling rule of the test's own: the body "SLOW". Which codes mean
// throttling is the service client's rule (alibaba::isThrottlingResponse,
// tested in api_error_test); here only how the HTTP layer applies a rule.
bool slowDown(int http_status, absl::string_view body) { return body == "SLOW"; }

struct Observation {
  std::string operation;
  absl::string_view outcome;
  absl::Duration latency;
};

class ObservedClientTest : public ::testing::Test {
 protected:
  ClientPtr makeClient() {
    return makeObservedClient(
        fake_, time_,
        [this](const Request& request, const absl::StatusOr<Response>& result,
               absl::Duration latency) {
          MutexLock lock(&mutex_);
          observations_.push_back(
              {request.operation, classifyUpstreamOutcome(result, slowDown), latency});
        });
  }
  std::vector<Observation> observations() {
    MutexLock lock(&mutex_);
    return observations_;
  }

  SimulatedTimeSource time_;
  FakeHttpClient fake_;
  Mutex mutex_;
  std::vector<Observation> observations_ ABSL_GUARDED_BY(mutex_);
};

Request request(std::string operation) {
  Request result;
  result.url = "https://kms.cn-hangzhou.aliyuncs.com/?Action=" + operation;
  result.operation = std::move(operation);
  return result;
}

absl::StatusOr<Response> response(int status, std::string body = "") {
  Response result;
  result.status = status;
  result.body = std::move(body);
  return result;
}

// Verifies the response passes through untouched and the observer sees the
// request's operation and the time send() took on the monotonic clock.
TEST_F(ObservedClientTest, ReportsLatencyOfEachCall) {
  fake_.setHandler([this](const Request&) -> absl::StatusOr<Response> {
    time_.advance(absl::Milliseconds(250));
    return response(200, "{\"ok\":true}");
  });
  const ClientPtr client = makeClient();
  const absl::StatusOr<Response> result = client->send(request("GetSecretValue"));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "{\"ok\":true}");
  ASSERT_EQ(fake_.requestCount(), 1u);
  EXPECT_EQ(fake_.lastRequest()->operation, "GetSecretValue");
  const std::vector<Observation> seen = observations();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].operation, "GetSecretValue");
  EXPECT_EQ(seen[0].outcome, "ok");
  EXPECT_EQ(seen[0].latency, absl::Milliseconds(250));
}

// Verifies a transport failure passes through as the same status and is
// observed as a network error with its latency.
TEST_F(ObservedClientTest, ReportsTransportFailures) {
  fake_.setHandler([this](const Request&) -> absl::StatusOr<Response> {
    time_.advance(absl::Seconds(30));
    return absl::DeadlineExceededError("kms.cn-hangzhou.aliyuncs.com: timed out");
  });
  const ClientPtr client = makeClient();
  EXPECT_THAT(client->send(request("AssumeRoleWithOIDC")),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  const std::vector<Observation> seen = observations();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].operation, "AssumeRoleWithOIDC");
  EXPECT_EQ(seen[0].outcome, "network_error");
  EXPECT_EQ(seen[0].latency, absl::Seconds(30));
}

// Verifies a wall-clock step during a call does not distort its latency.
TEST_F(ObservedClientTest, LatencyIgnoresWallClockSteps) {
  fake_.setHandler([this](const Request&) -> absl::StatusOr<Response> {
    time_.setSystemTime(time_.systemTime() - absl::Hours(1));
    time_.advance(absl::Milliseconds(40));
    return response(200);
  });
  const ClientPtr client = makeClient();
  ASSERT_TRUE(client->send(request("GetSecretValue")).ok());
  EXPECT_EQ(observations().at(0).latency, absl::Milliseconds(40));
}

// Verifies every call is observed exactly once, from any number of threads.
TEST_F(ObservedClientTest, ObservesConcurrentCalls) {
  fake_.setHandler([](const Request&) -> absl::StatusOr<Response> { return response(200); });
  const ClientPtr client = makeClient();
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 50; ++j) EXPECT_TRUE(client->send(request("GetSecretValue")).ok());
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(observations().size(), 400u);
  EXPECT_EQ(fake_.requestCount(), 400u);
}

// Verifies a client without an observer just passes calls through.
TEST_F(ObservedClientTest, NoObserverIsAPassThrough) {
  fake_.enqueueResponse(204, "");
  const ClientPtr client = makeObservedClient(fake_, time_, nullptr);
  const absl::StatusOr<Response> result = client->send(request("GetSecretValue"));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, 204);
}

// Verifies the outcome of each kind of answer: 429 is throttled whatever the
// body; a 4xx or 5xx is throttled when the rule says so, whatever the status;
// a 2xx is the API answering, whatever the rule.
TEST(ClassifyUpstreamOutcomeTest, ClassifiesAnswers) {
  struct Case {
    absl::StatusOr<Response> result;
    absl::string_view outcome;
  };
  const std::vector<Case> cases = {
      {response(200, "{}"), "ok"},
      {response(204), "ok"},
      {response(200, "SLOW"), "ok"},
      {response(429), "throttled"},
      {response(429, "slow down"), "throttled"},
      {response(400, "SLOW"), "throttled"},
      {response(403, "SLOW"), "throttled"},
      {response(500, "SLOW"), "throttled"},
      {response(503, "SLOW"), "throttled"},
      {response(400, "slow"), "client_error"},
      {response(401), "client_error"},
      {response(404, "{}"), "client_error"},
      {response(500, "{}"), "server_error"},
      {response(502, "<html>bad gateway</html>"), "server_error"},
      {response(504), "server_error"},
      {response(302, "SLOW"), "server_error"},
      {response(101), "server_error"},
      {absl::UnavailableError("connection refused"), "network_error"},
      {absl::DeadlineExceededError("timed out"), "network_error"},
      {absl::ResourceExhaustedError("too big"), "network_error"},
  };
  for (const Case& test : cases) {
    EXPECT_EQ(classifyUpstreamOutcome(test.result, slowDown), test.outcome)
        << (test.result.ok() ? std::to_string(test.result->status) + " " + test.result->body
                             : test.result.status().ToString());
  }
}

// Verifies that without a rule nothing but 429 is throttled.
TEST(ClassifyUpstreamOutcomeTest, WithoutARuleOnly429IsThrottled) {
  EXPECT_EQ(classifyUpstreamOutcome(response(400, "SLOW"), nullptr), "client_error");
  EXPECT_EQ(classifyUpstreamOutcome(response(503, "SLOW"), nullptr), "server_error");
  EXPECT_EQ(classifyUpstreamOutcome(response(429), nullptr), "throttled");
}

}  // namespace
}  // namespace credsync::http
