#include "sidecar/config/config.h"

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/files.h"
#include "sidecar/common/status_line.h"
#include "sidecar/config/document_reader.h"
#include "sidecar/config/environment_reader.h"
#include "sidecar/config/hooks_section.h"
#include "sidecar/config/identity_section.h"
#include "sidecar/config/kms_section.h"
#include "sidecar/config/override_reader.h"
#include "sidecar/config/profiles_section.h"
#include "sidecar/config/raw_config.h"
#include "sidecar/config/service_sections.h"
#include "sidecar/config/value_checks.h"

namespace credsync::config {
namespace {

using loading::RawConfig;
using loading::RawValue;

absl::StatusOr<Config> buildConfig(const RawConfig& raw_config) {
  Config config;
  // Whether any OpenAPI endpoint exists decides whether the identity is
  // required; identity errors are still reported before KMS errors.
  const absl::Status kms_status = loading::readKms(raw_config, config.kms);
  if (absl::Status status = loading::readIdentity(
          raw_config, config.identity, !kms_status.ok() || !config.kms.endpoints.empty());
      !status.ok()) {
    return status;
  }
  if (!kms_status.ok()) return kms_status;
  if (absl::Status status = raw_config.readString("tls.ca_file", config.tls.ca_file);
      !status.ok()) {
    return status;
  }
  bool insecure = false;
  if (absl::Status status = raw_config.readBool("tls.insecure_skip_verify", insecure);
      !status.ok()) {
    return status;
  }
  config.tls.verify = !insecure;
  if (absl::Status status = raw_config.readDuration("http.connect_timeout", absl::Milliseconds(1),
                                                    config.http.connect_timeout);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = raw_config.readDuration("http.request_timeout", absl::Milliseconds(1),
                                                    config.http.request_timeout);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = loading::readOutput(raw_config, config.output); !status.ok())
    return status;
  if (absl::Status status = loading::readRefresh(raw_config, config.refresh); !status.ok())
    return status;
  if (absl::Status status = loading::readControl(raw_config, config.output, config.control);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = loading::readLocalApi(raw_config, config.local_api); !status.ok())
    return status;
  if (const RawValue* raw = raw_config.find("log.level")) {
    absl::StatusOr<log::Level> level = log::parseLevel(raw->text);
    if (!level.ok())
      return loading::invalid("log.level", "must be one of debug, info, warn, error", *raw);
    config.log_level = *level;
  }
  if (absl::Status status = loading::readProfiles(raw_config, config.profiles); !status.ok())
    return status;
  if (absl::Status status = loading::checkOutputNames(raw_config, config); !status.ok())
    return status;
  if (absl::Status status = loading::readHookList(raw_config, config.profiles, config.hooks);
      !status.ok()) {
    return status;
  }
  return config;
}

absl::StatusOr<ClientSettings> buildClientSettings(const RawConfig& raw_config) {
  ClientSettings settings;
  if (absl::Status status = loading::readOutput(raw_config, settings.output); !status.ok())
    return status;
  if (absl::Status status = loading::readControl(raw_config, settings.output, settings.control);
      !status.ok()) {
    return status;
  }
  return settings;
}

}  // namespace

Environment processEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

namespace {

// Lays `layer` over `merged`: its keys replace, its lists replace whole.
// `owners` records which document set each key (lists by their key).
void overlay(const loading::RawConfig& layer, const std::string& source, loading::RawConfig& merged,
             std::map<std::string, std::string>& owners) {
  for (const auto& [key, value] : layer.values) {
    merged.values[key] = value;
    owners[key] = source;
  }
  if (layer.profiles_in_file) {
    merged.profiles = layer.profiles;
    merged.profiles_in_file = true;
    owners["profiles"] = source;
  }
  if (layer.instances_in_file) {
    merged.instances = layer.instances;
    merged.instances_in_file = true;
    owners["kms.instances"] = source;
  }
  if (layer.hooks_in_file) {
    merged.hooks = layer.hooks;
    merged.hooks_in_file = true;
    owners["hooks"] = source;
  }
}

absl::Status withSource(const std::string& source, const absl::Status& status) {
  if (source.empty()) return status;
  return absl::Status(status.code(), absl::StrCat(source, ": ", status.message()));
}

// Names the document that set the key an error is about ("profiles[0].name:
// ..." belongs to whoever set profiles); errors about keys no document set
// stay as they are.
absl::Status attributed(const absl::Status& status,
                        const std::map<std::string, std::string>& owners) {
  const absl::string_view message = status.message();
  const absl::string_view key = message.substr(0, message.find(": "));
  for (const absl::string_view list : {"profiles", "kms.instances", "hooks"}) {
    if (absl::StartsWith(key, list) && (key.size() == list.size() || key[list.size()] == '[')) {
      const auto owner = owners.find(std::string(list));
      return owner == owners.end() ? status : withSource(owner->second, status);
    }
  }
  const auto owner = owners.find(std::string(key));
  return owner == owners.end() ? status : withSource(owner->second, status);
}

}  // namespace

absl::StatusOr<Config> parseConfig(absl::string_view text, const Environment& env,
                                   const Overrides& overrides) {
  return parseConfigDocuments({{"", std::string(text)}}, env, overrides);
}

absl::StatusOr<Config> parseConfigDocuments(const std::vector<ConfigDocument>& documents,
                                            const Environment& env, const Overrides& overrides) {
  loading::RawConfig raw_config(env);
  std::map<std::string, std::string> owners;
  for (const ConfigDocument& document : documents) {
    loading::RawConfig layer(env);
    if (absl::Status status = loading::readDocument(document.text, layer); !status.ok())
      return asOneLine(withSource(document.source, status));
    overlay(layer, document.source, raw_config, owners);
  }
  if (absl::Status status = loading::applyOverrides(overrides, raw_config); !status.ok())
    return asOneLine(status);
  loading::applyEnvironment(raw_config);
  if (absl::Status status = loading::applyInstanceEnvironment(raw_config); !status.ok()) {
    return asOneLine(status);
  }
  if (absl::Status status = loading::applyRegionEnvironment(raw_config); !status.ok()) {
    return asOneLine(status);
  }
  absl::StatusOr<Config> config = buildConfig(raw_config);
  if (!config.ok()) return asOneLine(attributed(config.status(), owners));
  return config;
}

namespace {

// A ConfigMap-rendered config is a few KiB; a huge file is a mistake.
constexpr size_t kMaxConfigFileBytes = 1 << 20;

absl::StatusOr<std::string> readConfigText(const std::string& path) {
  return readSmallFile(path, kMaxConfigFileBytes, "config file");
}

}  // namespace

absl::StatusOr<Config> loadConfigFile(const std::string& path, const Environment& env,
                                      const Overrides& overrides) {
  absl::StatusOr<std::string> text = readConfigText(path);
  if (!text.ok()) return text.status();
  return parseConfig(*text, env, overrides);
}

absl::StatusOr<Config> loadConfigSources(const std::string& path, const std::string& env_var,
                                         const Environment& env, const Overrides& overrides) {
  std::vector<ConfigDocument> documents;
  if (!path.empty()) {
    absl::StatusOr<std::string> text = readConfigText(path);
    if (!text.ok()) return text.status();
    // Alone, the file keeps its messages as they were; with an overlay each
    // message says which of the two it is about.
    documents.push_back({env_var.empty() ? "" : path, *std::move(text)});
  }
  if (!env_var.empty()) {
    const std::string source = absl::StrCat("$", env_var);
    std::optional<std::string> text = env(env_var);
    if (!text.has_value() || text->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": not set (--config-env names the variable holding the config)"));
    }
    if (text->size() > kMaxConfigFileBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": larger than ", kMaxConfigFileBytes, " bytes"));
    }
    documents.push_back({source, *std::move(text)});
  }
  if (documents.empty()) {
    return absl::InvalidArgumentError(
        "--config: required (a YAML or JSON file), or --config-env VAR");
  }
  return parseConfigDocuments(documents, env, overrides);
}

absl::StatusOr<ClientSettings> loadClientSettings(const std::string& path, const Environment& env) {
  absl::StatusOr<std::string> text = readConfigText(path);
  if (!text.ok()) return text.status();
  loading::RawConfig raw_config(env);
  if (absl::Status status = loading::readDocument(*text, raw_config); !status.ok())
    return asOneLine(status);
  loading::applyEnvironment(raw_config);
  absl::StatusOr<ClientSettings> settings = buildClientSettings(raw_config);
  if (!settings.ok()) return asOneLine(settings.status());
  return settings;
}

const char* profileKindName(ProfileKind kind) {
  return kind == ProfileKind::kGeneric ? "generic" : "ram_credentials";
}

const char* genericFormatName(GenericFormat format) {
  return format == GenericFormat::kJsonKeys ? "json_keys" : "raw";
}

const char* identityTypeName(IdentityType type) {
  switch (type) {
    case IdentityType::kOidc:
      return "oidc";
    case IdentityType::kEcsRamRole:
      return "ecs_ram_role";
    case IdentityType::kStatic:
      return "static";
  }
  return "unknown";
}

}  // namespace credsync::config
