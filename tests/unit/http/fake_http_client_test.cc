#include "tests/common/fake_http_client.h"

#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "tests/common/status_matchers.h"

namespace credsync::testing {
namespace {

using ::testing::Field;
using ::testing::HasSubstr;

http::Request get(std::string url) {
  http::Request request;
  request.url = std::move(url);
  return request;
}

// Verifies scripted responses and statuses are answered in FIFO order and
// every request is recorded with its fields.
TEST(FakeHttpClientTest, AnswersScriptInOrderAndRecordsRequests) {
  FakeHttpClient client;
  client.enqueueResponse(200, "first", {{"Content-Type", "text/plain"}});
  client.enqueueStatus(absl::UnavailableError("connection refused"));
  client.enqueueResponse(503, "third");

  http::Request post = get("https://sts.example/?Action=AssumeRole");
  post.method = "POST";
  post.headers = {{"x-acs-action", "AssumeRole"}};
  post.body = "payload";
  absl::StatusOr<http::Response> first = client.send(post);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "first");
  EXPECT_EQ(first->header("content-type"), "text/plain");
  EXPECT_THAT(client.send(get("https://a/")), StatusIs(absl::StatusCode::kUnavailable));
  absl::StatusOr<http::Response> third = client.send(get("https://b/"));
  ASSERT_THAT(third, IsOk());
  EXPECT_EQ(third->status, 503);

  EXPECT_EQ(client.pendingScripted(), 0u);
  const std::vector<http::Request> requests = client.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].url, "https://sts.example/?Action=AssumeRole");
  EXPECT_EQ(requests[0].headers, post.headers);
  EXPECT_EQ(requests[0].body, "payload");
  EXPECT_THAT(client.lastRequest(), ::testing::Optional(Field(&http::Request::url, "https://b/")));
}

// Verifies the handler answers once the script is used up, and sees the
// request.
TEST(FakeHttpClientTest, FallsBackToHandlerAfterScript) {
  FakeHttpClient client([](const http::Request& request) -> absl::StatusOr<http::Response> {
    http::Response response;
    response.status = 200;
    response.body = "echo " + request.url;
    return response;
  });
  client.enqueueResponse(418, "scripted");

  EXPECT_EQ(client.send(get("https://a/"))->status, 418);
  EXPECT_EQ(client.send(get("https://b/"))->body, "echo https://b/");
  client.setHandler([](const http::Request&) -> absl::StatusOr<http::Response> {
    return absl::DeadlineExceededError("slow");
  });
  EXPECT_THAT(client.send(get("https://c/")), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(client.requestCount(), 3u);
  client.clearRequests();
  EXPECT_EQ(client.requestCount(), 0u);
  EXPECT_EQ(client.lastRequest(), std::nullopt);
}

// Verifies an unscripted request fails the test and returns an error rather
// than inventing a response.
TEST(FakeHttpClientTest, UnscriptedRequestFailsTheTest) {
  FakeHttpClient client;
  absl::StatusOr<http::Response> result;
  EXPECT_NONFATAL_FAILURE(result = client.send(get("https://unexpected/")),
                          "unexpected GET https://unexpected/");
  EXPECT_THAT(result,
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("nothing scripted")));
  EXPECT_EQ(client.requestCount(), 1u);
}

// Verifies concurrent senders are all recorded and answered (run under ASan
// or TSan, it also checks the locking).
TEST(FakeHttpClientTest, ConcurrentSendsAreAllRecorded) {
  FakeHttpClient client([](const http::Request& request) -> absl::StatusOr<http::Response> {
    http::Response response;
    response.status = 204;
    return response;
  });
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&client] {
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<http::Response> response = client.send(get("https://x/"));
        EXPECT_THAT(response, IsOk());
        if (response.ok()) {
          EXPECT_EQ(response->status, 204);
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(client.requestCount(), static_cast<size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace credsync::testing
