#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "sidecar/injector/injection_settings.h"

// The injector's one operation: an admission.k8s.io/v1 AdmissionReview for a
// Pod in, the AdmissionReview answer (with an RFC 6902 JSONPatch when
// credsync is to be injected) out. Pure: no I/O, no clock, no shared state,
// so it is safe from any number of threads and fuzzable.
namespace credsync::injector {

// What became of one admission request; the label of the injector's
// admissions metric.
enum class AdmissionResult {
  kInjected,   // allowed, with a patch that adds credsync
  kSkipped,    // allowed unchanged: not opted in, already injected, not CREATE
  kDenied,     // allowed: false, one line naming the annotation and the rule
  kMalformed,  // not an AdmissionReview we can answer: HTTP 400
};
absl::string_view resultName(AdmissionResult result);  // "injected", ...

struct AdmissionAnswer {
  AdmissionResult result = AdmissionResult::kMalformed;
  // 200 with an AdmissionReview for every well-formed review (denials too,
  // as the API server expects); 400 for a malformed body.
  int http_status = 400;
  std::string content_type;  // "application/json" or "text/plain; charset=utf-8"
  std::string body;
  // One line for the log: why it was skipped or denied, or what was added.
  // Never holds a value of the pod beyond names (no env values).
  std::string summary;
  bool dry_run = false;
};

// Answers `body`, the bytes the API server POSTed to /mutate. Never throws.
AdmissionAnswer reviewAdmission(absl::string_view body, const InjectionSettings& settings);

}  // namespace credsync::injector
