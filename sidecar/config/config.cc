#include "sidecar/config/config.h"

#include <cstdlib>
#include <string>

#include "absl/status/status.h"
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

absl::StatusOr<Config> parseConfig(absl::string_view text, const Environment& env,
                                   const Overrides& overrides) {
  loading::RawConfig raw_config(env);
  if (absl::Status status = loading::readDocument(text, raw_config); !status.ok())
    return asOneLine(status);
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
  if (!config.ok()) return asOneLine(config.status());
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
