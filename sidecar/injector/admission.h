#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "sidecar/injector/injection_settings.h"

// The injector's one operation: an admission.k8s.io/v1 AdmissionReview for a
// Pod in, the AdmissionReview answer (with an RFC 6902 JSONPatch when
// credsync is to be injected) out. Pure but for one thing: no I/O, no clock,
// no shared state, so it is safe from any number of threads and fuzzable;
// only a pod with credsync.io/credentials-uri draws a fresh random path
// secret for its local API, from a source the caller may pin.
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

// Draws the local API's path secret for one pod. Called at most once per
// review, and only for a pod with credsync.io/credentials-uri. Must be
// thread-safe.
using PathSecretSource = std::function<std::string()>;

// 32 bytes from OpenSSL's DRBG, base64url without padding: 43 characters of
// [A-Za-z0-9_-], 256 bits. Never the same twice, never derived from the pod.
std::string randomPathSecret();

// Answers `body`, the bytes the API server POSTed to /mutate. Never throws.
// Tests and the fuzzer pin `path_secret` to make answers reproducible.
AdmissionAnswer reviewAdmission(absl::string_view body, const InjectionSettings& settings,
                                const PathSecretSource& path_secret = randomPathSecret);

}  // namespace credsync::injector
