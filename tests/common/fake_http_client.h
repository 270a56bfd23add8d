#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sidecar/common/mutex.h"
#include "sidecar/http/client.h"

namespace credsync::testing {

// An http::Client that never touches the network, for unit tests of the
// components that send requests. Every request is recorded before it is
// answered. Answers come first from a FIFO queue of scripted responses or
// error statuses; once the queue is empty, from the handler, if one is set.
// A request with neither is a test bug: it fails the test and gets
// FAILED_PRECONDITION. Thread-safe; the handler runs unlocked, so it may
// block or call back into the fake.
class FakeHttpClient : public http::Client {
 public:
  using Handler = std::function<absl::StatusOr<http::Response>(const http::Request&)>;

  FakeHttpClient() = default;
  explicit FakeHttpClient(Handler handler) : handler_(std::move(handler)) {}

  absl::StatusOr<http::Response> send(const http::Request& request) override {
    Handler handler;
    {
      MutexLock lock(&mutex_);
      requests_.push_back(request);
      if (!scripted_.empty()) {
        absl::StatusOr<http::Response> answer = std::move(scripted_.front());
        scripted_.pop_front();
        return answer;
      }
      handler = handler_;
    }
    if (handler) {
      return handler(request);
    }
    ADD_FAILURE() << "FakeHttpClient: unexpected " << request.method << " " << request.url;
    return absl::FailedPreconditionError(
        absl::StrCat("FakeHttpClient: nothing scripted for ", request.method, " ", request.url));
  }

  void enqueueResponse(http::Response response) {
    MutexLock lock(&mutex_);
    scripted_.emplace_back(std::move(response));
  }
  void enqueueResponse(int status, std::string body, http::Headers headers = {}) {
    http::Response response;
    response.status = status;
    response.body = std::move(body);
    response.headers = std::move(headers);
    enqueueResponse(std::move(response));
  }
  // A transport failure, e.g. absl::UnavailableError("connection refused").
  void enqueueStatus(absl::Status status) {
    MutexLock lock(&mutex_);
    scripted_.emplace_back(std::move(status));
  }
  void setHandler(Handler handler) {
    MutexLock lock(&mutex_);
    handler_ = std::move(handler);
  }

  // Every request sent so far, in the order send() was entered.
  std::vector<http::Request> requests() const {
    MutexLock lock(&mutex_);
    return requests_;
  }
  size_t requestCount() const {
    MutexLock lock(&mutex_);
    return requests_.size();
  }
  std::optional<http::Request> lastRequest() const {
    MutexLock lock(&mutex_);
    if (requests_.empty()) {
      return std::nullopt;
    }
    return requests_.back();
  }
  // Scripted answers not yet consumed; tests assert it reaches zero.
  size_t pendingScripted() const {
    MutexLock lock(&mutex_);
    return scripted_.size();
  }
  void clearRequests() {
    MutexLock lock(&mutex_);
    requests_.clear();
  }

 private:
  mutable Mutex mutex_;
  std::deque<absl::StatusOr<http::Response>> scripted_ ABSL_GUARDED_BY(mutex_);
  Handler handler_ ABSL_GUARDED_BY(mutex_);
  std::vector<http::Request> requests_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::testing
