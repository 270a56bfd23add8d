#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "sidecar/injector/injection_settings.h"
#include "tests/common/read_file.h"

// Shared by the injector's tests: the AdmissionReview fixtures (real-world
// pods as the API server sends them; tests/e2e applies the same files with
// an npm JSON Patch library), the settings the tests inject with, and a
// JSON Patch applier for reading what a patch does to a pod.
namespace credsync::injector::testing {

using nlohmann::json;

inline const std::vector<std::string>& fixtureNames() {
  static const std::vector<std::string> names = {"deployment",      "job",
                                                 "init-containers", "multi-container",
                                                 "root-app",        "own-security-context",
                                                 "name-collision",  "already-injected",
                                                 "config-map",      "credentials-uri"};
  return names;
}

// tests/unit/injector/fixtures/<name>.review.json, parsed (null when missing).
inline json loadReview(const std::string& name) {
  const std::string text = credsync::testing::readFile(
      absl::StrCat(CREDSYNC_INJECTOR_FIXTURES, "/", name, ".review.json"));
  return json::parse(text, nullptr, false);
}

inline InjectionSettings testSettings() {
  InjectionSettings settings;
  settings.image = "registry.example.com/credsync:1.0.0";
  settings.kms_region = "cn-hangzhou";
  settings.oidc_provider_arn = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-cluster";
  return settings;
}

// `document` with `operations` (an RFC 6902 array) applied, or nullopt when
// an operation does not apply (a missing parent, a bad index): nlohmann's
// patch() reports that by throwing, which only this test helper catches.
inline std::optional<json> applyPatch(const json& document, const json& operations) {
  try {
    return document.patch(operations);
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// The operations of an answer's base64 patch.
inline json decodePatch(const json& response) {
  std::string text;
  if (!response.contains("patch") || !response["patch"].is_string() ||
      !absl::Base64Unescape(response["patch"].get<std::string>(), &text)) {
    return json();
  }
  return json::parse(text, nullptr, false);
}

// The container named `name` in spec.containers or spec.initContainers, or null.
inline const json* findContainer(const json& pod, const std::string& name) {
  for (const char* list : {"initContainers", "containers"}) {
    if (!pod["spec"].contains(list)) continue;
    for (const json& container : pod["spec"][list]) {
      if (container.value("name", "") == name) return &container;
    }
  }
  return nullptr;
}

// A container's env as name -> value (valueFrom entries map to "<valueFrom>").
inline std::map<std::string, std::string> envOf(const json& container) {
  std::map<std::string, std::string> out;
  if (!container.contains("env")) return out;
  for (const json& variable : container["env"]) {
    out[variable["name"].get<std::string>()] =
        variable.contains("value") ? variable["value"].get<std::string>() : "<valueFrom>";
  }
  return out;
}

inline std::vector<std::string> namesOf(const json& list) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  for (const json& item : list) out.push_back(item.value("name", ""));
  return out;
}

}  // namespace credsync::injector::testing
