#include "sidecar/injector/admission.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/crypto.h"
#include "sidecar/common/json_depth.h"
#include "sidecar/injector/annotations.h"
#include "sidecar/injector/kube_values.h"
#include "sidecar/injector/pod_patch.h"

namespace credsync::injector {
namespace {

using nlohmann::json;

// Pods are a few KiB deep in a handful of levels; hostile nesting is
// refused before the parser recurses into it.
constexpr int kMaxJsonDepth = 64;
// Objects, arrays and commas in one review at most (json_depth.h): hostile
// JSON of small values would otherwise parse to ~28 times its text (over
// 100 MiB for a 4 MiB body of empty objects); at this bound a parsed
// document stays under ~25 MiB plus its strings (measured with "k":0
// members, the costliest shape). Real pods take 13 bytes or more a node
// (22 for a plain one), so any pod the API server accepts fits: its request
// bodies are at most 3 MiB, and etcd stores at most 1.5 MiB.
constexpr size_t kMaxJsonNodes = size_t{1} << 18;

std::string dumpJson(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

AdmissionAnswer malformed(absl::string_view why) {
  AdmissionAnswer answer;
  answer.result = AdmissionResult::kMalformed;
  answer.http_status = 400;
  answer.content_type = "text/plain; charset=utf-8";
  answer.body = absl::StrCat("malformed AdmissionReview: ", why, "\n");
  answer.summary = absl::StrCat("malformed: ", why);
  return answer;
}

// A string member of `object`, or null when it is absent or not a string.
const std::string* stringMember(const json& object, const char* name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

std::string stringOr(const json& object, const char* name, const char* fallback) {
  const std::string* value = stringMember(object, name);
  return value == nullptr ? fallback : *value;
}

// The answer to a well-formed review, with `response` completed.
AdmissionAnswer answered(AdmissionResult result, const std::string& uid, json response,
                         const std::string& summary, bool dry_run) {
  response["uid"] = uid;
  AdmissionAnswer answer;
  answer.result = result;
  answer.http_status = 200;
  answer.content_type = "application/json";
  answer.body = dumpJson(json{{"apiVersion", "admission.k8s.io/v1"},
                              {"kind", "AdmissionReview"},
                              {"response", std::move(response)}});
  // Names from the pod are not trusted to be one line of printable text.
  answer.summary = oneLine(summary, 4096);
  answer.dry_run = dry_run;
  return answer;
}

AdmissionAnswer denied(const std::string& uid, absl::string_view reason, const std::string& where,
                       bool dry_run) {
  const std::string message = oneLine(reason, 1024);
  return answered(AdmissionResult::kDenied, uid,
                  json{{"allowed", false}, {"status", {{"code", 400}, {"message", message}}}},
                  absl::StrCat(where, ": denied: ", message), dry_run);
}

// namespace/name of the pod, for the log line (a created pod may have only
// generateName).
std::string podName(const json& request, const json& pod) {
  std::string name = stringOr(request, "name", "");
  if (name.empty() && pod.is_object()) {
    const auto metadata = pod.find("metadata");
    if (metadata != pod.end() && metadata->is_object()) {
      name = stringOr(*metadata, "name", "");
      if (name.empty()) name = stringOr(*metadata, "generateName", "");
    }
  }
  return absl::StrCat(stringOr(request, "namespace", ""), "/", name.empty() ? "?" : name);
}

}  // namespace

absl::string_view resultName(AdmissionResult result) {
  switch (result) {
    case AdmissionResult::kInjected:
      return "injected";
    case AdmissionResult::kSkipped:
      return "skipped";
    case AdmissionResult::kDenied:
      return "denied";
    case AdmissionResult::kMalformed:
      return "malformed";
  }
  return "malformed";
}

std::string randomPathSecret() { return crypto::base64UrlEncode(crypto::randomBytes(32)); }

AdmissionAnswer reviewAdmission(absl::string_view body, const InjectionSettings& settings,
                                const PathSecretSource& path_secret) {
  if (!jsonDepthWithin(body, kMaxJsonDepth)) {
    return malformed(absl::StrCat("JSON nested deeper than ", kMaxJsonDepth));
  }
  if (!jsonShapeWithin(body, kMaxJsonDepth, kMaxJsonNodes)) {
    return malformed(absl::StrCat("more than ", kMaxJsonNodes, " JSON objects, arrays and commas"));
  }
  const json review = json::parse(body.begin(), body.end(), nullptr, false);
  if (review.is_discarded()) return malformed("not valid JSON");
  if (!review.is_object()) return malformed("not a JSON object");
  const std::string* api_version = stringMember(review, "apiVersion");
  if (api_version == nullptr || *api_version != "admission.k8s.io/v1") {
    return malformed("apiVersion must be admission.k8s.io/v1");
  }
  const std::string* kind = stringMember(review, "kind");
  if (kind == nullptr || *kind != "AdmissionReview")
    return malformed("kind must be AdmissionReview");
  const auto request_it = review.find("request");
  if (request_it == review.end() || !request_it->is_object()) {
    return malformed("request must be an object");
  }
  const json& request = *request_it;
  const std::string* uid = stringMember(request, "uid");
  if (uid == nullptr || uid->empty()) return malformed("request.uid must be a non-empty string");

  bool dry_run = false;
  if (const auto it = request.find("dryRun"); it != request.end() && !it->is_null()) {
    if (!it->is_boolean()) return malformed("request.dryRun must be true or false");
    dry_run = it->get<bool>();
  }
  const auto kind_it = request.find("kind");
  const auto resource_it = request.find("resource");
  if (kind_it == request.end() || !kind_it->is_object() || resource_it == request.end() ||
      !resource_it->is_object()) {
    return malformed("request.kind and request.resource must be objects");
  }
  const std::string group = stringOr(*kind_it, "group", "");
  const std::string version = stringOr(*kind_it, "version", "");
  const std::string object_kind = stringOr(*kind_it, "kind", "");
  const std::string resource = stringOr(*resource_it, "resource", "");
  const auto object_it = request.find("object");
  const json& pod = object_it == request.end() ? request : *object_it;
  const std::string where = podName(request, object_it == request.end() ? json() : pod);
  if (!group.empty() || object_kind != "Pod" || resource != "pods") {
    const std::string what = group.empty() ? absl::StrCat(version, " ", object_kind)
                                           : absl::StrCat(group, "/", version, " ", object_kind);
    return denied(*uid, absl::StrCat("credsync injector mutates only pods, not ", what), where,
                  dry_run);
  }
  const std::string* operation = stringMember(request, "operation");
  if (operation == nullptr) return malformed("request.operation must be a string");
  if (*operation != "CREATE") {
    return answered(AdmissionResult::kSkipped, *uid, json{{"allowed", true}},
                    absl::StrCat(where, ": skipped: operation ", *operation, ", not CREATE"),
                    dry_run);
  }
  if (object_it == request.end() || !object_it->is_object()) {
    return malformed("request.object must be a Pod object");
  }

  absl::StatusOr<AnnotationDecision> decision = readAnnotations(pod, settings);
  if (!decision.ok()) return denied(*uid, decision.status().message(), where, dry_run);
  if (!decision->inject) {
    return answered(AdmissionResult::kSkipped, *uid, json{{"allowed", true}},
                    absl::StrCat(where, ": skipped: ", decision->skip_reason), dry_run);
  }
  // Per admission, not per workload: pods of one Deployment each get their
  // own, and none is derived from anything an observer of the pod sees.
  if (!decision->request.uri_containers.empty()) {
    decision->request.local_api_path_secret = path_secret();
  }
  absl::StatusOr<PodPatch> patch = buildPodPatch(pod, decision->request, settings);
  if (!patch.ok()) return denied(*uid, patch.status().message(), where, dry_run);
  json response = {{"allowed", true},
                   {"patchType", "JSONPatch"},
                   {"patch", absl::Base64Escape(dumpJson(patch->operations))}};
  if (!patch->warnings.empty()) response["warnings"] = patch->warnings;
  return answered(AdmissionResult::kInjected, *uid, std::move(response),
                  absl::StrCat(where, ": injected: ", patch->summary), dry_run);
}

}  // namespace credsync::injector
