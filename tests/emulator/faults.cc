#include "tests/emulator/faults.h"

#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "sidecar/common/crypto.h"

namespace credsync::emulator {
namespace {

double uniformUnit() {
  const std::string bytes = crypto::randomBytes(sizeof(uint64_t));
  uint64_t value;
  std::memcpy(&value, bytes.data(), sizeof(value));
  return static_cast<double>(value >> 11) / static_cast<double>(uint64_t{1} << 53);
}

}  // namespace

absl::StatusOr<FaultKind> parseFaultKind(const std::string& name) {
  static const std::map<std::string, FaultKind> kKinds = {
      {"latency", FaultKind::kLatency},
      {"http_5xx", FaultKind::kHttp5xx},
      {"internal_failure", FaultKind::kInternalFailure},
      {"throttling", FaultKind::kThrottling},
      {"reset", FaultKind::kReset},
      {"malformed_json", FaultKind::kMalformedJson},
      {"truncated_body", FaultKind::kTruncatedBody},
      {"body", FaultKind::kBody},
  };
  auto it = kKinds.find(name);
  if (it == kKinds.end()) {
    return absl::InvalidArgumentError(
        "kind must be one of latency, http_5xx, internal_failure, throttling, reset, "
        "malformed_json, truncated_body, body");
  }
  return it->second;
}

int FaultTable::add(Fault fault) {
  absl::MutexLock lock(&mutex_);
  fault.id = next_id_++;
  faults_.push_back(fault);
  return fault.id;
}

void FaultTable::clear() {
  absl::MutexLock lock(&mutex_);
  faults_.clear();
}

FaultDecision FaultTable::decide(const std::string& action, const std::string& instance) {
  absl::MutexLock lock(&mutex_);
  FaultDecision decision;
  for (Fault& fault : faults_) {
    if (fault.remaining == 0) continue;
    if (fault.action != "*" && fault.action != action) continue;
    const bool listener_matches = fault.instance.empty()  ? instance.empty()
                                  : fault.instance == "*" ? !instance.empty()
                                                          : fault.instance == instance;
    if (!listener_matches) continue;
    if (fault.kind != FaultKind::kLatency && decision.failure) continue;
    if (fault.fraction < 1.0 && uniformUnit() >= fault.fraction) continue;
    if (fault.remaining > 0) --fault.remaining;
    if (fault.kind == FaultKind::kLatency) {
      decision.latency += fault.latency;
    } else {
      decision.failure = fault;
    }
  }
  return decision;
}

void Counters::recordSuccess(const std::string& action) {
  absl::MutexLock lock(&mutex_);
  ActionCounts& counts = actions_[action];
  ++counts.requests;
  ++counts.successes;
}

void Counters::recordFailure(const std::string& action, const std::string& code) {
  absl::MutexLock lock(&mutex_);
  ActionCounts& counts = actions_[action];
  ++counts.requests;
  ++counts.failures[code];
}

nlohmann::json Counters::toJson() const {
  absl::MutexLock lock(&mutex_);
  nlohmann::json actions = nlohmann::json::object();
  for (const auto& [action, counts] : actions_) {
    actions[action] = {{"requests", counts.requests},
                       {"successes", counts.successes},
                       {"failures", counts.failures}};
  }
  return {{"actions", actions}};
}

void Counters::reset() {
  absl::MutexLock lock(&mutex_);
  actions_.clear();
}

}  // namespace credsync::emulator
