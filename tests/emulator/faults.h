#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace credsync::emulator {

enum class FaultKind {
  kLatency,          // delay, then answer normally
  kHttp5xx,          // ServiceUnavailableTemporary with the given status
  kInternalFailure,  // 500 InternalFailure
  kThrottling,       // Rejected.Throttling (KMS) / Throttling.User (STS)
  kReset,            // drop the connection without an answer
  kMalformedJson,    // 200 with a body that is not JSON
  kTruncatedBody,    // the real answer, cut off mid-body
  kBody,             // a chosen body instead of the answer (hostile-input tests)
};

absl::StatusOr<FaultKind> parseFaultKind(const std::string& name);

struct Fault {
  int id = 0;
  std::string action;  // an API action, or "*"
  // Which listener: "" the OpenAPI listeners (main and wrong-host), a KMS
  // instance id that instance's gateway, "*" every instance gateway.
  std::string instance;
  FaultKind kind = FaultKind::kHttp5xx;
  int64_t remaining = -1;  // requests left to affect; -1 until cleared
  double fraction = 1.0;   // share of matching requests affected
  absl::Duration latency = absl::ZeroDuration();
  int status = 503;  // kHttp5xx; kBody's HTTP status (200 unless given)
  // kBody: the bytes to answer with, or, when huge_bytes > 0, a generated
  // JSON object of exactly that many bytes, streamed without being held in
  // memory. chunked: chunked transfer encoding instead of Content-Length.
  std::string body;
  int64_t huge_bytes = 0;
  bool chunked = false;
};

// What applies to one request: a total added latency, and at most one
// failing fault (the first that matches).
struct FaultDecision {
  absl::Duration latency = absl::ZeroDuration();
  std::optional<Fault> failure;
};

// Faults injected through the admin API. Thread-safe.
class FaultTable {
 public:
  int add(Fault fault);
  void clear();
  // `instance` is the KMS instance id whose gateway received the request, or
  // "" for the OpenAPI listeners.
  FaultDecision decide(const std::string& action, const std::string& instance = "");

 private:
  absl::Mutex mutex_;
  int next_id_ ABSL_GUARDED_BY(mutex_) = 1;
  std::vector<Fault> faults_ ABSL_GUARDED_BY(mutex_);
};

// Per-action counts of requests, successes and failures by code, so tests can
// assert exactly how many upstream calls a client made. Thread-safe.
class Counters {
 public:
  void recordSuccess(const std::string& action);
  void recordFailure(const std::string& action, const std::string& code);
  nlohmann::json toJson() const;
  void reset();

 private:
  struct ActionCounts {
    int64_t requests = 0;
    int64_t successes = 0;
    std::map<std::string, int64_t> failures;
  };
  mutable absl::Mutex mutex_;
  std::map<std::string, ActionCounts> actions_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace credsync::emulator
