#include "sidecar/config/kms_section.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "sidecar/config/value_checks.h"

namespace credsync::config::loading {
namespace {

bool isEnvironmentVariableName(absl::string_view name) {
  if (name.empty() || name.size() > 128 || absl::ascii_isdigit(name.front())) return false;
  return absl::c_all_of(name, [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

absl::Status readKmsInstances(const RawConfig& raw_config,
                              std::vector<KmsInstanceConfig>& instances) {
  std::map<std::string, size_t> endpoints;
  for (size_t i = 0; i < raw_config.instances.size(); ++i) {
    const RawEntry& raw = raw_config.instances[i];
    const std::string path = raw_config.instances_from_env
                                 ? absl::StrCat(kDkmsConfigEnv, "[", i, "]")
                                 : absl::StrCat("kms.instances[", i, "]");
    // Errors name the key as the user wrote it: ours, or the official one.
    const auto name = [&](const char* key) {
      for (const InstanceKey& known : kInstanceKeys) {
        if (absl::string_view(key) == known.key) {
          return absl::StrCat(path, ".",
                              raw_config.instances_from_env ? known.official : known.key);
        }
      }
      return absl::StrCat(path, ".", key);
    };
    const auto field = [&](const char* key) -> const RawValue* {
      const auto it = raw.fields.find(key);
      if (it == raw.fields.end()) return nullptr;
      // An empty value means "not set", as the SDKs treat it.
      if (absl::StripAsciiWhitespace(it->second.text).empty()) return nullptr;
      return &it->second;
    };
    const auto missing = [&](const char* key) {
      const std::string where = raw_config.instances_from_env
                                    ? absl::StrCat(" (from ", kDkmsConfigEnv, ")")
                                    : absl::StrCat(" (line ", raw.line, ")");
      return invalid(name(key), absl::StrCat("must be set", where));
    };
    KmsInstanceConfig instance;

    const RawValue* endpoint = field("endpoint");
    if (endpoint == nullptr) return missing("endpoint");
    absl::StatusOr<std::string> normalised = normaliseEndpoint(endpoint->text);
    if (!normalised.ok())
      return invalid(name("endpoint"), normalised.status().message(), *endpoint);
    if (!absl::StartsWith(*normalised, "https://")) {
      return invalid(name("endpoint"), "must be https (the KMS instance API is HTTPS only)",
                     *endpoint);
    }
    if (const auto [it, inserted] = endpoints.emplace(*normalised, i); !inserted) {
      return invalid(
          name("endpoint"),
          absl::StrCat("same endpoint as ", path.substr(0, path.find('[')), "[", it->second, "]"),
          *endpoint);
    }
    instance.endpoint = *normalised;

    const RawValue* region = field("region_id");
    if (region == nullptr) return missing("region_id");
    instance.region_id = std::string(absl::StripAsciiWhitespace(region->text));
    if (!isRegion(instance.region_id)) {
      return invalid(name("region_id"), "must be a region ID such as cn-hangzhou", *region);
    }

    struct PathKey {
      const char* key;
      std::string* out;
    };
    for (const PathKey& path_key : {PathKey{"client_key_file", &instance.client_key_file},
                                    PathKey{"password_file", &instance.password_file},
                                    PathKey{"ca_file", &instance.ca_file}}) {
      const RawValue* value = field(path_key.key);
      if (value == nullptr) continue;
      if (absl::StrContains(value->text, '\0') || hasControlOrSpace(value->text)) {
        return invalid(name(path_key.key),
                       "must be a file path without spaces or control characters", *value);
      }
      *path_key.out = value->text;
    }
    if (instance.client_key_file.empty()) return missing("client_key_file");

    if (const RawValue* value = field("password_env")) {
      const std::string variable(absl::StripAsciiWhitespace(value->text));
      if (!isEnvironmentVariableName(variable)) {
        return invalid(name("password_env"),
                       "must be the name of an environment variable (A-Z a-z 0-9 _)", *value);
      }
      instance.password_env = variable;
    }
    if (instance.password_file.empty() == instance.password_env.empty()) {
      const RawValue* both = field("password_file");
      const std::string problem =
          absl::StrCat("set exactly one of ", name("password_file"), " and ", name("password_env"));
      if (both != nullptr) return invalid(name("password_file"), problem, *both);
      return invalid(name("password_file"),
                     absl::StrCat(problem, raw_config.instances_from_env
                                               ? absl::StrCat(" (from ", kDkmsConfigEnv, ")")
                                               : absl::StrCat(" (line ", raw.line, ")")));
    }

    if (const RawValue* value = field("insecure_skip_verify")) {
      const std::optional<bool> insecure = parseBool(absl::StripAsciiWhitespace(value->text));
      if (!insecure.has_value()) {
        return invalid(name("insecure_skip_verify"), "must be true or false", *value);
      }
      instance.verify = !*insecure;
    }
    instances.push_back(std::move(instance));
  }
  return absl::OkStatus();
}

absl::Status readCircuitBreaker(const RawConfig& raw_config, KmsConfig& kms) {
  if (const RawValue* raw = raw_config.find("kms.circuit_failure_threshold")) {
    int threshold = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(raw->text), &threshold) || threshold < 0 ||
        threshold > 100) {
      return invalid("kms.circuit_failure_threshold", "must be a whole number from 0 (off) to 100",
                     *raw);
    }
    kms.circuit_failure_threshold = threshold;
  }
  if (absl::Status status = raw_config.readDuration("kms.circuit_open_for", absl::Milliseconds(100),
                                                    kms.circuit_open_for);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = raw_config.readDuration(
          "kms.circuit_max_open_for", absl::Milliseconds(100), kms.circuit_max_open_for);
      !status.ok()) {
    return status;
  }
  if (kms.circuit_max_open_for < kms.circuit_open_for) {
    // Blame the key that was set (defaults are consistent).
    const char* key = raw_config.find("kms.circuit_max_open_for") != nullptr
                          ? "kms.circuit_max_open_for"
                          : "kms.circuit_open_for";
    return invalid(key, "kms.circuit_max_open_for must not be shorter than kms.circuit_open_for",
                   *raw_config.find(key));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status readKms(const RawConfig& raw_config, KmsConfig& kms) {
  const RawValue* endpoints = raw_config.find("kms.endpoints");
  const RawValue* region = raw_config.find("kms.region");
  const RawValue* vpc_raw = raw_config.find("kms.vpc_endpoint");
  bool vpc = false;
  if (absl::Status status = raw_config.readBool("kms.vpc_endpoint", vpc); !status.ok())
    return status;
  if (region != nullptr) {
    kms.region = std::string(absl::StripAsciiWhitespace(region->text));
    if (!kms.region.empty() && !isRegion(kms.region)) {
      return invalid("kms.region", "must be a region ID such as cn-hangzhou", *region);
    }
  }

  std::vector<std::string> listed;
  if (endpoints != nullptr) {
    for (size_t i = 0; i < endpoints->items.size(); ++i) {
      absl::StatusOr<std::string> normalised = normaliseEndpoint(endpoints->items[i]);
      if (!normalised.ok()) {
        const int line = i < endpoints->item_lines.size() ? endpoints->item_lines[i] : 0;
        return absl::InvalidArgumentError(absl::StrCat(
            "kms.endpoints[", i, "]: ", normalised.status().message(), origin(*endpoints, line)));
      }
      listed.push_back(*std::move(normalised));
    }
  }

  if (absl::Status status = readKmsInstances(raw_config, kms.instances); !status.ok())
    return status;

  const bool region_wins =
      !kms.region.empty() && std::max(rank(region), rank(vpc_raw)) > rank(endpoints);
  // With KMS instances configured, the shared gateway is added only when
  // asked for in the file or a flag: ALIBABA_CLOUD_REGION_ID is often in a
  // pod's environment for other reasons.
  const bool region_asked =
      kms.instances.empty() || rank(region) >= static_cast<int>(Source::kFile);
  if (!listed.empty() && !region_wins) {
    kms.endpoints = std::move(listed);
  } else if (!kms.region.empty() && region_asked) {
    kms.endpoints = {
        absl::StrCat("https://", vpc ? "kms-vpc." : "kms.", kms.region, ".aliyuncs.com")};
  } else if (kms.instances.empty()) {
    return invalid(
        "kms.endpoints",
        "set kms.endpoints or kms.region (or ALIBABA_CLOUD_REGION_ID), or kms.instances");
  }

  if (const RawValue* raw = raw_config.find("kms.signature")) {
    const std::string signature = absl::AsciiStrToLower(raw->text);
    if (signature == "acs3") {
      kms.signature = KmsSignature::kAcs3;
    } else if (signature == "hmac-sha1") {
      kms.signature = KmsSignature::kHmacSha1;
    } else {
      return invalid("kms.signature", "must be acs3 or hmac-sha1", *raw);
    }
  }
  return readCircuitBreaker(raw_config, kms);
}

}  // namespace credsync::config::loading
