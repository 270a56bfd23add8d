#include "sidecar/config/environment_reader.h"

#include <exception>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sidecar/config/value_checks.h"
#include "yaml-cpp/yaml.h"

namespace credsync::config::loading {
namespace {

// The official secrets-manager clients' list of KMS regions, tried in order:
// [{"regionId": "cn-hangzhou", "vpc": true, "endpoint": "…"}, …].
constexpr char kRegionsEnv[] = "cache_client_region_id";

}  // namespace

void applyEnvironment(RawConfig& raw_config) {
  for (const KeySpec& spec : kKeys) {
    if (spec.env == nullptr || raw_config.find(spec.key) != nullptr) continue;
    std::optional<std::string> value = raw_config.envValue(spec.env);
    if (!value.has_value()) continue;
    RawValue raw;
    raw.source = Source::kEnvironment;
    raw.env_name = spec.env;
    raw.text = *std::move(value);
    if (raw.env_name == kVpcEnv) {
      // As the SDKs read it: "true" in any case enables, anything else does not.
      raw.text = absl::AsciiStrToLower(raw.text) == "true" ? "true" : "false";
    }
    raw_config.values[spec.key] = std::move(raw);
  }
}

// The official clients' JSON array, e.g.
// [{"regionId":"cn-hangzhou","endpoint":"kst-….cryptoservice.kms.aliyuncs.com",
//   "clientKeyFile":"/keys/clientKey.json","passwordFromFilePath":"/keys/password",
//   "caFilePath":"/keys/ca.pem","ignoreSslCerts":false}]
// read with the YAML parser (JSON is YAML). Keys are matched exactly; a key
// credsync does not implement is an error rather than silently ignored.
absl::Status applyInstanceEnvironment(RawConfig& raw_config) {
  if (raw_config.instances_in_file) return absl::OkStatus();
  std::optional<std::string> text = raw_config.envValue(kDkmsConfigEnv);
  if (!text.has_value()) return absl::OkStatus();
  const std::string origin = absl::StrCat(" (from ", kDkmsConfigEnv, ")");
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const std::exception&) {
    return invalid(kDkmsConfigEnv, absl::StrCat("must be a JSON array of objects", origin));
  }
  try {
    if (!root.IsSequence()) {
      return invalid(kDkmsConfigEnv, absl::StrCat("must be a JSON array of objects", origin));
    }
    for (size_t i = 0; i < root.size(); ++i) {
      const YAML::Node item = root[i];
      const std::string path = absl::StrCat(kDkmsConfigEnv, "[", i, "]");
      if (!item.IsMap()) return invalid(path, absl::StrCat("must be an object", origin));
      RawEntry instance;
      std::set<std::string> seen;
      for (auto it = item.begin(); it != item.end(); ++it) {
        const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
        const InstanceKey* known = nullptr;
        for (const InstanceKey& key : kInstanceKeys) {
          if (name == key.official) known = &key;
        }
        if (known == nullptr) {
          return invalid(absl::StrCat(path, ".", printable(name)),
                         absl::StrCat("not supported by credsync", origin));
        }
        if (!seen.insert(name).second) {
          return invalid(absl::StrCat(path, ".", name), absl::StrCat("duplicate key", origin));
        }
        if (it->second.IsNull()) continue;
        if (!it->second.IsScalar()) {
          return invalid(absl::StrCat(path, ".", name), absl::StrCat("must be a string", origin));
        }
        RawValue raw;
        raw.source = Source::kEnvironment;
        raw.env_name = kDkmsConfigEnv;
        raw.text = it->second.Scalar();
        instance.fields[known->key] = std::move(raw);
      }
      raw_config.instances.push_back(std::move(instance));
    }
  } catch (const std::exception&) {
    return invalid(kDkmsConfigEnv, absl::StrCat("could not be read", origin));
  }
  raw_config.instances_from_env = true;
  return absl::OkStatus();
}

absl::Status applyRegionEnvironment(RawConfig& raw_config) {
  if (const RawValue* listed = raw_config.find("kms.endpoints");
      listed != nullptr && !listed->items.empty()) {
    return absl::OkStatus();
  }
  std::optional<std::string> text = raw_config.envValue(kRegionsEnv);
  if (!text.has_value()) return absl::OkStatus();
  const std::string origin = absl::StrCat(" (from ", kRegionsEnv, ")");
  const auto notArray = [&] {
    return invalid(kRegionsEnv, absl::StrCat("must be a JSON array of objects", origin));
  };
  RawValue endpoints;
  endpoints.source = Source::kEnvironment;
  endpoints.env_name = kRegionsEnv;
  try {
    const YAML::Node root = YAML::Load(*text);
    if (!root.IsSequence()) return notArray();
    if (root.size() == 0) return invalid(kRegionsEnv, absl::StrCat("lists no region", origin));
    for (size_t i = 0; i < root.size(); ++i) {
      const YAML::Node item = root[i];
      const std::string path = absl::StrCat(kRegionsEnv, "[", i, "]");
      if (!item.IsMap()) return invalid(path, absl::StrCat("must be an object", origin));
      std::map<std::string, std::string> fields;
      for (auto it = item.begin(); it != item.end(); ++it) {
        const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
        if (name != "regionId" && name != "vpc" && name != "endpoint") {
          // caFilePath (newer Go client) included: one tls.ca_file serves
          // every OpenAPI endpoint here.
          return invalid(absl::StrCat(path, ".", printable(name)),
                         absl::StrCat("not supported by credsync", origin));
        }
        if (it->second.IsNull()) continue;
        if (!it->second.IsScalar()) {
          return invalid(absl::StrCat(path, ".", name), absl::StrCat("must be a scalar", origin));
        }
        if (!fields.emplace(name, it->second.Scalar()).second) {
          return invalid(absl::StrCat(path, ".", name), absl::StrCat("duplicate key", origin));
        }
      }
      // As the official clients: an explicit endpoint wins; otherwise the
      // region's VPC gateway when vpc is true (any case), else its shared one.
      if (const auto endpoint = fields.find("endpoint");
          endpoint != fields.end() && !endpoint->second.empty()) {
        endpoints.items.push_back(endpoint->second);
        continue;
      }
      const std::string region = fields.count("regionId") ? fields["regionId"] : "";
      if (!isRegion(region)) {
        return invalid(absl::StrCat(path, ".regionId"),
                       absl::StrCat(region.empty() ? "must be set when endpoint is not"
                                                   : "must be a region ID such as cn-hangzhou",
                                    origin));
      }
      const bool vpc = absl::AsciiStrToLower(fields["vpc"]) == "true";
      endpoints.items.push_back(
          absl::StrCat("https://", vpc ? "kms-vpc." : "kms.", region, ".aliyuncs.com"));
    }
  } catch (const std::exception&) {
    return notArray();
  }
  raw_config.values["kms.endpoints"] = std::move(endpoints);
  return absl::OkStatus();
}

}  // namespace credsync::config::loading
