#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/secret.h"

// credsync's configuration: one YAML or JSON file (the Helm chart renders it
// into a ConfigMap), the official ALIBABA_CLOUD_* environment variables, and
// flags. Every key is documented in docs/configuration.md. Loading resolves
// defaults and endpoints and validates everything, so the rest of the program
// receives a Config that is complete and consistent.
namespace credsync::config {

enum class IdentityType { kOidc, kEcsRamRole, kStatic };

// "oidc", "ecs_ram_role", "static": the identity.type value.
const char* identityTypeName(IdentityType type);

struct IdentityConfig {
  IdentityType type = IdentityType::kOidc;
  // oidc (RRSA):
  std::string role_arn;           // identity.role_arn / ALIBABA_CLOUD_ROLE_ARN
  std::string oidc_provider_arn;  // identity.oidc_provider_arn / ALIBABA_CLOUD_OIDC_PROVIDER_ARN
  std::string oidc_token_file;    // identity.oidc_token_file / ALIBABA_CLOUD_OIDC_TOKEN_FILE
  // identity.role_session_name / ALIBABA_CLOUD_ROLE_SESSION_NAME; default
  // "credsync-<pod name>" (POD_NAME, else HOSTNAME), cut to 64 characters.
  std::string role_session_name;
  std::string policy;                                // identity.policy (optional)
  absl::Duration session_duration = absl::Hours(1);  // identity.session_duration, >= 15m
  // The resolved STS endpoint as a URL, "https://sts.aliyuncs.com" by default,
  // chosen as the official SDKs choose: identity.sts_endpoint /
  // ALIBABA_CLOUD_STS_ENDPOINT, else ALIBABA_CLOUD_STS_REGION (identity.sts_region)
  // giving sts.<region>.aliyuncs.com, or sts-vpc.<region>.aliyuncs.com when
  // ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED (identity.vpc_endpoint) is true. An
  // explicit endpoint from a weaker source (the environment) yields to a
  // region set in the file or a flag; docs/configuration.md has the table.
  std::string sts_endpoint;
  // ecs_ram_role (instance metadata, for nodes without RRSA):
  // identity.role_name / ALIBABA_CLOUD_ECS_METADATA; empty: discovered.
  std::string ecs_role_name;
  // identity.metadata_endpoint: "http://100.100.100.200" by default.
  std::string ecs_metadata_endpoint = "http://100.100.100.200";
  // identity.imdsv1_fallback: whether the normal mode (no token) may be used
  // when the hardened mode's token request fails. True by default, as in the
  // official SDKs; ALIBABA_CLOUD_IMDSV1_DISABLED=true forces it off.
  bool ecs_imdsv1_fallback = true;
  // identity.metadata_token_ttl: 1s to 6h, whole seconds; 6h by default.
  absl::Duration ecs_metadata_token_ttl = absl::Hours(6);
  // static (local development only): ALIBABA_CLOUD_ACCESS_KEY_ID /
  // ALIBABA_CLOUD_ACCESS_KEY_SECRET (and optional ALIBABA_CLOUD_SECURITY_TOKEN).
  std::string static_access_key_id;
  SecretString static_access_key_secret;
  SecretString static_security_token;
};

// profiles[].kind: what a profile's secret becomes in the output directory.
enum class ProfileKind {
  kRamCredentials,  // an AccessKey pair: a section of credentials.ini (the default)
  kGeneric,         // any secret's value: files of its own (API keys, database credentials)
};
// "ram_credentials", "generic": the profiles[].kind value.
const char* profileKindName(ProfileKind kind);

// profiles[].format of a generic profile: how the value becomes files.
enum class GenericFormat {
  kRaw,       // one file (profiles[].file) holding SecretData as is
  kJsonKeys,  // SecretData is a JSON object: one file per top-level key
};
// "raw", "json_keys": the profiles[].format value.
const char* genericFormatName(GenericFormat format);

// Files credsync itself keeps in the output directory; no generic profile
// may write one of these names.
inline constexpr const char kCredentialsIniFile[] = "credentials.ini";
inline constexpr const char kControlTokenFile[] = "control-token";

struct ProfileConfig {
  std::string name;         // the credentials.ini section, or the generic profile's name
  std::string secret_name;  // the KMS secret (RAMCredentials, or any type for generic)
  std::string version_stage = "ACSCurrent";
  bool is_default = false;  // written as [default]; exactly one profile is
  // When true (the default) the sidecar is not ready until this profile has
  // been written.
  bool required = true;
  ProfileKind kind = ProfileKind::kRamCredentials;
  // Generic profiles only:
  GenericFormat format = GenericFormat::kRaw;
  std::string file;         // raw: the file name (default: the profile name)
  std::string file_prefix;  // json_keys: files are <file_prefix><key> (default "<name>.")
};

// A KMS instance reached with an application access point's client key (the
// "dkms-gcs-0.2" protobuf API of the official KMS instance SDKs), from
// kms.instances[] or, when the file has none, the official environment
// variable cache_client_dkms_config_info.
struct KmsInstanceConfig {
  // "https://<instance-id>.cryptoservice.kms.aliyuncs.com[:port]", normalised
  // from a host or an https URL.
  std::string endpoint;
  std::string region_id;        // region_id / regionId, e.g. cn-hangzhou
  std::string client_key_file;  // client_key_file / clientKeyFile: the console's JSON
  // Exactly one of these two is set: a file holding the PKCS#12 password
  // (surrounding whitespace stripped), or the name of an environment variable
  // holding it (password_file / passwordFromFilePath, password_env /
  // passwordFromEnvVariable).
  std::string password_file;
  std::string password_env;
  // ca_file / caFilePath: the instance's CA (PEM); empty means tls.ca_file,
  // else the system store.
  std::string ca_file;
  // insecure_skip_verify / ignoreSslCerts: true turns verification off (the
  // sidecar warns).
  bool verify = true;
};

// kms.signature: how OpenAPI requests are signed.
enum class KmsSignature {
  kAcs3,      // "acs3": ACS3-HMAC-SHA256, the default of current SDKs
  kHmacSha1,  // "hmac-sha1": the older RPC signature (SignatureVersion 1.0)
};

struct KmsConfig {
  std::string region;  // kms.region / ALIBABA_CLOUD_REGION_ID
  // Resolved OpenAPI (RAM-signed) URLs tried in order: kms.endpoints, else
  // from the region (kms.<region>.aliyuncs.com, or kms-vpc.<region>.aliyuncs.com
  // with kms.vpc_endpoint / ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED). Empty only
  // when `instances` is not: then a region from the environment alone does
  // not add the shared gateway, and no identity is needed.
  std::vector<std::string> endpoints;
  std::vector<KmsInstanceConfig> instances;
  KmsSignature signature = KmsSignature::kAcs3;
  // Each endpoint's circuit breaker (fetch::CircuitBreaker): after
  // kms.circuit_failure_threshold consecutive retryable failures (0: never)
  // an endpoint is skipped for kms.circuit_open_for, doubling after each
  // failed probe up to kms.circuit_max_open_for.
  int circuit_failure_threshold = 3;
  absl::Duration circuit_open_for = absl::Seconds(30);
  absl::Duration circuit_max_open_for = absl::Minutes(5);
};

struct TlsConfig {
  std::string ca_file;  // tls.ca_file: PEM bundle; empty means the system store
  bool verify = true;   // tls.insecure_skip_verify: true turns it off (with a warning)
};

struct HttpConfig {
  absl::Duration connect_timeout = absl::Seconds(5);   // http.connect_timeout
  absl::Duration request_timeout = absl::Seconds(10);  // http.request_timeout
};

struct OutputConfig {
  std::string directory = "/var/run/credsync";  // output.directory
  uint32_t file_mode = 0440;                    // output.file_mode (octal string "0440")
  std::optional<gid_t> group;                   // output.group (numeric gid)
};

struct RefreshConfig {
  absl::Duration interval = absl::Hours(1);  // refresh.interval
  double jitter = 0.1;                       // refresh.jitter: +- fraction of the interval
  // refresh.rotation_delay: refresh this long after the secret's
  // NextRotationDate, plus up to refresh.rotation_jitter.
  absl::Duration rotation_delay = absl::Minutes(5);
  absl::Duration rotation_jitter = absl::Minutes(5);
  // refresh.startup_jitter: a random delay of up to this before the first
  // fetch, so a rollout of many pods does not reach KMS in one instant.
  absl::Duration startup_jitter = absl::ZeroDuration();
  // Retries of retryable failures: full jitter over
  // min(retry_max_backoff, retry_initial_backoff * 2^attempt).
  absl::Duration retry_initial_backoff = absl::Seconds(2);
  absl::Duration retry_max_backoff = absl::Seconds(10);
  // Retries after a throttling answer (the upstream's quota is spent, so
  // every retry costs it more): decorrelated jitter, each delay uniform in
  // [retry_initial_backoff, min(throttled_max_backoff, 3 x the previous)].
  absl::Duration throttled_max_backoff = absl::Minutes(1);
  // Upstream calls made on an app's Refresh, per profile (docs/design.md
  // §3.4): a token bucket of refresh.on_demand_burst tokens, one more every
  // refresh.on_demand_refill, as the official managed-credentials plug-ins do.
  int on_demand_burst = 5;
  absl::Duration on_demand_refill = absl::Minutes(10);
};

// The control plane: gRPC (Refresh, Watch, GetStatus, grpc.health.v1) on a
// Unix socket and optionally TCP, and the HTTP probe and metrics port.
struct ControlConfig {
  // control.socket: the gRPC Unix socket; default <output.directory>/credsync.sock.
  std::string socket_path;
  uint32_t socket_mode = 0660;  // control.socket_mode
  // control.tcp_address: "host:port" for a gRPC TCP listener; empty (the
  // default) means none. Port 0 picks a free port (logged). Calls over TCP
  // must carry the pod token in the `credsync-token` metadata entry.
  std::string tcp_address;
  // control.token_file: where the pod token is read from; when empty and TCP
  // is on, credsync generates one into <output.directory>/control-token.
  std::string token_file;
  // control.http_address: /healthz, /readyz and /metrics; empty turns it off.
  std::string http_address = "0.0.0.0:9808";
  // control.refresh_timeout: the longest a Refresh call waits for KMS.
  absl::Duration refresh_timeout = absl::Seconds(30);
};

// local_api: the loopback HTTP listener in the pod that serves the official
// SDKs' credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI) and, with a token,
// the KMS Agent's API (docs/local-api.md). Off while `listen` is empty.
struct LocalApiConfig {
  // local_api.listen: "host:port" on a loopback host (127.0.0.0/8, ::1,
  // localhost); port 0 picks a free one (logged).
  std::string listen;
  // The unguessable first path segment, read at start: from the file
  // local_api.path_secret_file, or the variable local_api.path_secret_env.
  // Exactly one of the two is set when `listen` is.
  std::string path_secret_file;
  std::string path_secret_env;
  // local_api.refetch_within: every SDK asks again at most this long after
  // a change reaches the file (it sets each document's Expiration).
  absl::Duration refetch_within = absl::Seconds(60);
  // local_api.kms_agent_token_file / kms_agent_token_env: the KMS Agent
  // API's token (X-KMS-Token); at most one, and that API is off without one.
  std::string kms_agent_token_file;
  std::string kms_agent_token_env;

  bool enabled() const { return !listen.empty(); }
  bool kmsAgentEnabled() const {
    return !kms_agent_token_file.empty() || !kms_agent_token_env.empty();
  }
};

// hooks[]: what to do after each change of the published output
// (docs/configuration.md#hooks-what-to-do-after-each-change): signal a
// process in the pod, or run a command. Exactly one of the two kinds.
struct HookConfig {
  enum class Kind { kSignal, kCommand };
  std::string name;  // hooks[].name; default "hooks[<index>]"
  Kind kind = Kind::kSignal;
  // signal: the signal number (hooks[].signal.signal, SIGHUP by default) and
  // exactly one target: a process name (matched against /proc/<pid>/comm and
  // the base name of argv[0]) or a pid file.
  int signal = 1;
  std::string process;
  std::string pid_file;
  // command: argv, run without a shell, killed after `timeout`.
  std::vector<std::string> command;
  absl::Duration timeout = absl::Seconds(30);
  // Configured profile names whose change runs the hook; empty: any change.
  std::vector<std::string> profiles;
};

struct Config {
  IdentityConfig identity;
  KmsConfig kms;
  TlsConfig tls;
  HttpConfig http;
  std::vector<ProfileConfig> profiles;  // the default profile first
  OutputConfig output;
  RefreshConfig refresh;
  ControlConfig control;
  LocalApiConfig local_api;
  log::Level log_level = log::Level::kInfo;  // log.level
  std::vector<HookConfig> hooks;             // in the order they run
};

// Looks up an environment variable; injected so tests control it.
using Environment = std::function<std::optional<std::string>(const std::string& name)>;
Environment processEnvironment();

// Flag overrides by dotted key, e.g. {"output.directory", "/tmp/out"},
// {"log.level", "debug"}; applied over the file, before validation.
using Overrides = std::vector<std::pair<std::string, std::string>>;

// Parses `text` (YAML or JSON; empty text is an empty document), applies the
// environment and the overrides, resolves defaults and endpoints, and
// validates. Precedence: override > file > environment > default. An error
// is INVALID_ARGUMENT with one line naming the offending key:
// "profiles[1].secret_name: must not be empty". Unknown keys are errors.
absl::StatusOr<Config> parseConfig(absl::string_view text, const Environment& env,
                                   const Overrides& overrides = {});

// One config document and where it came from, for error messages: a file's
// path, or "$VAR" for an environment variable; empty names nothing (a lone
// --config file keeps its messages as they were).
struct ConfigDocument {
  std::string source;
  std::string text;
};

// Parses `documents` as one config: each key a later document sets replaces
// the earlier one's, and the lists (profiles, kms.endpoints, kms.instances,
// hooks) are replaced whole. Then as parseConfig. An error in a document, or
// about a key a named document set, starts with its source:
// "$CREDSYNC_CONFIG: profiles[0].secret_name: must not be empty".
absl::StatusOr<Config> parseConfigDocuments(const std::vector<ConfigDocument>& documents,
                                            const Environment& env,
                                            const Overrides& overrides = {});

// `--config FILE` and/or `--config-env VAR` (at least one non-empty): the
// file's document with the variable's overlaid (parseConfigDocuments), or
// either alone. An unset or empty VAR is an error naming it.
absl::StatusOr<Config> loadConfigSources(const std::string& path, const std::string& env_var,
                                         const Environment& env, const Overrides& overrides = {});

// What `credsync refresh` and `credsync probe` need to reach a running
// sidecar, read from the sidecar's own config file. Only the output and
// control sections are validated: a client container has no identity
// environment, and needs none.
struct ClientSettings {
  OutputConfig output;
  ControlConfig control;
};
absl::StatusOr<ClientSettings> loadClientSettings(const std::string& path, const Environment& env);

// Reads and parses a file; a missing or unreadable file names the path.
absl::StatusOr<Config> loadConfigFile(const std::string& path, const Environment& env,
                                      const Overrides& overrides = {});

}  // namespace credsync::config
