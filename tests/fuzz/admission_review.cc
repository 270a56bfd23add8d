// Fuzzes the injector's one operation, reviewAdmission, on AdmissionReview
// bodies (the bytes the API server, or anyone reaching the webhook, POSTs).
// Invariants: it never crashes; a malformed body is a 400 with one line; any
// other body is a 200 AdmissionReview for the request's uid, allowed exactly
// when injected or skipped, whose patch (when present) is base64 of a JSON
// array of add/replace operations on absolute paths; answers are
// deterministic for a pinned local-API path secret.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "sidecar/injector/admission.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

credsync::injector::InjectionSettings settings() {
  credsync::injector::InjectionSettings s;
  s.image = "registry.example.com/credsync:1.0.0";
  s.kms_region = "cn-hangzhou";
  s.oidc_provider_arn = "acs:ram::1234567890:oidc-provider/ack-rrsa-fuzz";
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace injector = credsync::injector;
  using nlohmann::json;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  static const injector::InjectionSettings kSettings = settings();
  const injector::PathSecretSource pinned = [] { return std::string(43, 'A'); };
  const injector::AdmissionAnswer answer = injector::reviewAdmission(input, kSettings, pinned);
  const injector::AdmissionAnswer again = injector::reviewAdmission(input, kSettings, pinned);
  check(answer.body == again.body && answer.result == again.result);
  check(!answer.summary.empty() && !absl::StrContains(answer.summary, '\n'));

  if (answer.result == injector::AdmissionResult::kMalformed) {
    check(answer.http_status == 400);
    check(absl::StartsWith(answer.body, "malformed AdmissionReview: "));
    check(answer.body.find('\n') == answer.body.size() - 1);
    return 0;
  }
  check(answer.http_status == 200 && answer.content_type == "application/json");
  const json body = json::parse(answer.body, nullptr, false);
  check(body.is_object() && body["apiVersion"] == "admission.k8s.io/v1");
  const json& response = body["response"];
  check(response.is_object() && response["uid"].is_string());
  const json request = json::parse(input.begin(), input.end(), nullptr, false);
  check(request.is_object() && response["uid"] == request["request"]["uid"]);
  const bool allowed = answer.result != injector::AdmissionResult::kDenied;
  check(response["allowed"] == allowed);
  if (!allowed) {
    const json& message = response["status"]["message"];
    check(message.is_string() && !absl::StrContains(message.get<std::string>(), '\n'));
  }
  check(response.contains("patch") == (answer.result == injector::AdmissionResult::kInjected));
  if (response.contains("patch")) {
    std::string text;
    check(absl::Base64Unescape(response["patch"].get<std::string>(), &text));
    const json operations = json::parse(text, nullptr, false);
    check(operations.is_array() && !operations.empty());
    for (const json& op : operations) {
      check(op["op"] == "add" || op["op"] == "replace");
      check(op["path"].is_string() && absl::StartsWith(op["path"].get<std::string>(), "/"));
      check(op.contains("value"));
    }
  }
  return 0;
}
