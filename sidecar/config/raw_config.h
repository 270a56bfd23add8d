#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/config/config.h"

// The loader's intermediate form: every value as text, with where it came
// from, before it is typed and validated. The readers (document, environment,
// overrides) fill a RawConfig; the sections read it into a Config. Only the
// loader's own files include this.
namespace credsync::config::loading {

// Where a value came from; the order is the precedence (higher wins).
enum class Source { kUnset = 0, kEnvironment = 1, kFile = 2, kOverride = 3 };

// One key's value before it is typed and validated. Everything is kept as
// text so the file, the environment and flag overrides share one parser.
struct RawValue {
  Source source = Source::kUnset;
  std::string text;                // scalar keys
  std::vector<std::string> items;  // list keys (kms.endpoints)
  std::vector<int> item_lines;     // per item, for file lists
  int line = 0;                    // 1-based line in the file
  std::string env_name;            // the variable, for kEnvironment

  bool isSet() const { return source != Source::kUnset; }
};

// Every key outside `profiles`, in the order errors are reported, with the
// environment variable that supplies it when the file does not.
struct KeySpec {
  const char* key;
  const char* env;
  bool is_list;
};

inline constexpr char kVpcEnv[] = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";

inline constexpr KeySpec kKeys[] = {
    {"identity.type", nullptr, false},
    {"identity.role_arn", "ALIBABA_CLOUD_ROLE_ARN", false},
    {"identity.oidc_provider_arn", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", false},
    {"identity.oidc_token_file", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", false},
    {"identity.role_session_name", "ALIBABA_CLOUD_ROLE_SESSION_NAME", false},
    {"identity.session_duration", nullptr, false},
    {"identity.policy", nullptr, false},
    {"identity.sts_endpoint", "ALIBABA_CLOUD_STS_ENDPOINT", false},
    {"identity.sts_region", "ALIBABA_CLOUD_STS_REGION", false},
    {"identity.vpc_endpoint", kVpcEnv, false},
    {"identity.role_name", "ALIBABA_CLOUD_ECS_METADATA", false},
    {"identity.metadata_endpoint", nullptr, false},
    {"identity.imdsv1_fallback", nullptr, false},
    {"identity.metadata_token_ttl", nullptr, false},
    {"kms.region", "ALIBABA_CLOUD_REGION_ID", false},
    {"kms.endpoints", nullptr, true},
    {"kms.vpc_endpoint", kVpcEnv, false},
    {"kms.signature", nullptr, false},
    {"kms.circuit_failure_threshold", nullptr, false},
    {"kms.circuit_open_for", nullptr, false},
    {"kms.circuit_max_open_for", nullptr, false},
    {"tls.ca_file", nullptr, false},
    {"tls.insecure_skip_verify", nullptr, false},
    {"http.connect_timeout", nullptr, false},
    {"http.request_timeout", nullptr, false},
    {"output.directory", nullptr, false},
    {"output.file_mode", nullptr, false},
    {"output.group", nullptr, false},
    {"refresh.interval", nullptr, false},
    {"refresh.jitter", nullptr, false},
    {"refresh.rotation_delay", nullptr, false},
    {"refresh.rotation_jitter", nullptr, false},
    {"refresh.startup_jitter", nullptr, false},
    {"refresh.retry_initial_backoff", nullptr, false},
    {"refresh.retry_max_backoff", nullptr, false},
    {"refresh.throttled_max_backoff", nullptr, false},
    {"refresh.on_demand_burst", nullptr, false},
    {"refresh.on_demand_refill", nullptr, false},
    {"control.socket", nullptr, false},
    {"control.socket_mode", nullptr, false},
    {"control.tcp_address", nullptr, false},
    {"control.token_file", nullptr, false},
    {"control.http_address", nullptr, false},
    {"control.refresh_timeout", nullptr, false},
    {"local_api.listen", nullptr, false},
    {"local_api.path_secret_file", nullptr, false},
    {"local_api.path_secret_env", nullptr, false},
    {"local_api.refetch_within", nullptr, false},
    {"local_api.kms_agent_token_file", nullptr, false},
    {"local_api.kms_agent_token_env", nullptr, false},
    {"log.level", nullptr, false},
};

// The spec of a key outside `profiles` and `kms.instances`, or null.
const KeySpec* findKey(absl::string_view key);

// kms.instances[] keys, with the names the official secrets-manager clients
// use for the same field in cache_client_dkms_config_info.
struct InstanceKey {
  const char* key;
  const char* official;
};
inline constexpr InstanceKey kInstanceKeys[] = {
    {"endpoint", "endpoint"},
    {"region_id", "regionId"},
    {"client_key_file", "clientKeyFile"},
    {"password_file", "passwordFromFilePath"},
    {"password_env", "passwordFromEnvVariable"},
    {"ca_file", "caFilePath"},
    {"insecure_skip_verify", "ignoreSslCerts"},
};
inline constexpr char kDkmsConfigEnv[] = "cache_client_dkms_config_info";

// One entry of a list of mappings: a profile, or a KMS instance.
struct RawEntry {
  int line = 0;
  std::map<std::string, RawValue> fields;
};

// A hook as read from the file, checked except for its profile names, which
// need the profile list.
struct RawHook {
  HookConfig config;
  std::vector<int> profile_lines;
};

// Everything the readers found, and typed access to it for the sections.
class RawConfig {
 public:
  explicit RawConfig(const Environment& env) : env_(env) {}

  // The value a key was given by any source, or null when none gave one.
  const RawValue* find(absl::string_view key) const;
  // An environment variable; empty counts as unset, as the SDKs treat it.
  std::optional<std::string> envValue(const char* name) const;
  // Typed reads of one key: `out` is left alone when the key is unset; a bad
  // value is INVALID_ARGUMENT naming the key and where the value came from.
  absl::Status readString(absl::string_view key, std::string& out) const;
  absl::Status readBool(absl::string_view key, bool& out) const;
  absl::Status readDuration(absl::string_view key, absl::Duration min, absl::Duration& out) const;

  std::map<std::string, RawValue, std::less<>> values;  // by dotted key
  std::vector<RawEntry> profiles;
  std::vector<RawEntry> instances;
  // Set when the file gives kms.instances, even as an empty list (not null).
  bool instances_in_file = false;
  bool instances_from_env = false;
  std::vector<RawHook> hooks;
  // Set when the document gives `profiles` / `hooks` (not null), so that a
  // document overlaid on another replaces those lists whole.
  bool profiles_in_file = false;
  bool hooks_in_file = false;

 private:
  const Environment& env_;
};

// A value's precedence (its Source), 0 when unset.
inline int rank(const RawValue* raw) { return raw == nullptr ? 0 : static_cast<int>(raw->source); }

}  // namespace credsync::config::loading
