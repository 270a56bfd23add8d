#include "sidecar/config/config.h"

#include <signal.h>

#include <algorithm>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sidecar/common/endpoint.h"
#include "sidecar/common/files.h"
#include "sidecar/common/name_rules.h"
#include "sidecar/common/status_line.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace credsync::config {
namespace {

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

constexpr char kVpcEnv[] = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED";

constexpr KeySpec kKeys[] = {
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
    {"refresh.on_demand_burst", nullptr, false},
    {"refresh.on_demand_refill", nullptr, false},
    {"control.socket", nullptr, false},
    {"control.socket_mode", nullptr, false},
    {"control.tcp_address", nullptr, false},
    {"control.token_file", nullptr, false},
    {"control.http_address", nullptr, false},
    {"control.refresh_timeout", nullptr, false},
    {"log.level", nullptr, false},
};

constexpr const char* kSections[] = {"identity", "kms",     "tls",     "http",
                                     "output",   "refresh", "control", "log"};
constexpr const char* kProfileKeys[] = {"name",    "secret_name", "version_stage",
                                        "default", "required",    "kind",
                                        "format",  "file",        "file_prefix"};

// kms.instances[] keys, with the names the official secrets-manager clients
// use for the same field in cache_client_dkms_config_info.
struct InstanceKey {
  const char* key;
  const char* official;
};
constexpr InstanceKey kInstanceKeys[] = {
    {"endpoint", "endpoint"},
    {"region_id", "regionId"},
    {"client_key_file", "clientKeyFile"},
    {"password_file", "passwordFromFilePath"},
    {"password_env", "passwordFromEnvVariable"},
    {"ca_file", "caFilePath"},
    {"insecure_skip_verify", "ignoreSslCerts"},
};
constexpr char kDkmsConfigEnv[] = "cache_client_dkms_config_info";
// The official secrets-manager clients' list of KMS regions, tried in order:
// [{"regionId": "cn-hangzhou", "vpc": true, "endpoint": "…"}, …].
constexpr char kRegionsEnv[] = "cache_client_region_id";

// A generous ceiling on every duration, so later time arithmetic (deadlines,
// jitter, nanosecond conversions) cannot overflow on a typo such as "9999999h".
const absl::Duration kMaxDuration = absl::Hours(24 * 30);

const KeySpec* findKey(absl::string_view key) {
  for (const KeySpec& spec : kKeys) {
    if (key == spec.key) return &spec;
  }
  return nullptr;
}

bool isSection(absl::string_view name) {
  for (const char* section : kSections) {
    if (name == section) return true;
  }
  return false;
}

bool isProfileKey(absl::string_view name) {
  for (const char* key : kProfileKeys) {
    if (name == key) return true;
  }
  return false;
}

// Keys come from untrusted text and are echoed in errors; keep the message
// one printable line of bounded length.
std::string printable(absl::string_view text) {
  constexpr size_t kMax = 64;
  std::string out;
  for (const char c : text.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (text.size() > kMax) out += "...";
  return out;
}

std::string origin(const RawValue& raw, int line) {
  switch (raw.source) {
    case Source::kFile:
      return line > 0 ? absl::StrCat(" (line ", line, ")") : "";
    case Source::kEnvironment:
      return absl::StrCat(" (from ", raw.env_name, ")");
    case Source::kOverride:
      return " (from a flag)";
    case Source::kUnset:
      break;
  }
  return "";
}

absl::Status invalid(absl::string_view key, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", problem));
}

absl::Status invalid(absl::string_view key, absl::string_view problem, const RawValue& raw) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", problem, origin(raw, raw.line)));
}

bool isRegion(absl::string_view region) {
  if (region.empty() || region.size() > 64) return false;
  if (region.front() == '-' || region.back() == '-') return false;
  for (const char c : region) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
  }
  return true;
}

// acs:ram::<account id>:<kind><name>, e.g. acs:ram::123:role/app.
bool isRamArn(absl::string_view arn, absl::string_view kind) {
  if (!absl::ConsumePrefix(&arn, "acs:ram::")) return false;
  const size_t colon = arn.find(':');
  if (colon == 0 || colon == absl::string_view::npos) return false;
  for (const char c : arn.substr(0, colon)) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  absl::string_view name = arn.substr(colon + 1);
  if (!absl::ConsumePrefix(&name, kind) || name.empty() || name.size() > 256) return false;
  for (const char c : name) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("._-@/+=,", c)) return false;
  }
  return true;
}

bool isSessionNameChar(char c) { return absl::ascii_isalnum(c) || absl::StrContains(".@_-", c); }

// The credentials.ini renderer's rule, so a name that would make every
// publish fail is refused here, where the user can see which key is wrong.
bool isProfileName(absl::string_view name) {
  return name.size() <= 64 && validateIniProfileName(name).ok();
}

// What the output writer accepts as a file name ([A-Za-z0-9._-], not
// starting with '.', which the writer keeps for its own ..data links).
bool isOutputFileName(absl::string_view name) {
  return !name.empty() && name.size() <= 255 && name.front() != '.' &&
         absl::c_all_of(name, [](char c) {
           return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
         });
}

bool hasControlOrSpace(absl::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return true;
  }
  return false;
}

bool isLoopbackHost(absl::string_view authority) {
  if (absl::StartsWith(authority, "[")) return absl::StartsWith(authority, "[::1]");
  const absl::string_view host = authority.substr(0, authority.find(':'));
  if (host == "localhost") return true;
  const std::vector<absl::string_view> octets = absl::StrSplit(host, '.');
  if (octets.size() != 4) return false;
  for (const absl::string_view octet : octets) {
    int value = 0;
    if (octet.empty() || octet.size() > 3 || !absl::c_all_of(octet, absl::ascii_isdigit) ||
        !absl::SimpleAtoi(octet, &value) || value > 255) {
      return false;
    }
  }
  return octets[0] == "127";
}

// "host[:port]" or "https://host[:port]" -> "https://host[:port]" (lowercase).
// Plain http is accepted only for loopback, where the emulator may listen.
absl::StatusOr<std::string> normaliseEndpoint(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return absl::InvalidArgumentError("must not be empty");
  const std::string url =
      absl::StrContains(text, "://") ? std::string(text) : absl::StrCat("https://", text);
  absl::StatusOr<Endpoint> endpoint = parseEndpoint(url);
  if (!endpoint.ok()) return endpoint.status();
  const std::string authority = absl::AsciiStrToLower(endpoint->host);
  if (endpoint->scheme == "http" && !isLoopbackHost(authority)) {
    return absl::InvalidArgumentError(
        "http:// is accepted only for localhost and 127.0.0.0/8; use https://");
  }
  return absl::StrCat(endpoint->scheme, "://", authority);
}

// "true" / "false", any case. YAML 1.1's yes/no/on/off are refused because
// JSON and YAML 1.2 readers of the same file would disagree about them.
std::optional<bool> parseBool(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "true") return true;
  if (lower == "false") return false;
  return std::nullopt;
}

// One entry of a list of mappings: a profile, or a KMS instance.
struct RawProfile {
  int line = 0;
  std::map<std::string, RawValue> fields;
};

// A hook as read from the file, checked except for its profile names, which
// need the profile list.
struct RawHook {
  HookConfig config;
  std::vector<int> profile_lines;
};

// Turns the file, the overrides and the environment into a Config.
class Loader {
 public:
  explicit Loader(const Environment& env) : env_(env) {}

  absl::Status readText(absl::string_view text);
  absl::Status applyOverrides(const Overrides& overrides);
  void applyEnvironment();
  // cache_client_dkms_config_info, when the file has no kms.instances.
  absl::Status applyInstanceEnvironment();
  // cache_client_region_id, when neither the file nor a flag lists kms.endpoints.
  absl::Status applyRegionEnvironment();
  absl::StatusOr<Config> build();
  // Only what a client of a running sidecar needs: output and control.
  absl::StatusOr<ClientSettings> buildClientSettings();

 private:
  absl::Status readDocument(const YAML::Node& root);
  absl::Status readSection(const std::string& section, const YAML::Node& node);
  absl::Status readProfiles(const YAML::Node& node);
  absl::Status readInstances(const YAML::Node& node);
  // A list of mappings of scalars (profiles, kms.instances) whose keys
  // `is_known` accepts, into `out`.
  absl::Status readMappingList(const std::string& key, const YAML::Node& node,
                               bool (*is_known)(absl::string_view), std::vector<RawProfile>& out);
  absl::Status readHooks(const YAML::Node& node);
  absl::Status readHook(const std::string& path, const YAML::Node& node);
  absl::Status readScalar(const std::string& key, const YAML::Node& node, RawValue& out);

  const RawValue* find(absl::string_view key) const;
  std::optional<std::string> envValue(const char* name) const;

  absl::Status readString(absl::string_view key, std::string& out) const;
  absl::Status readBool(absl::string_view key, bool& out) const;
  absl::Status readDuration(absl::string_view key, absl::Duration min, absl::Duration& out) const;
  // `identity_needed`: whether an OpenAPI endpoint will use the identity; when not,
  // given values are still checked but none is required.
  absl::Status readIdentity(IdentityConfig& identity, bool identity_needed) const;
  absl::Status readStsEndpoint(IdentityConfig& identity) const;
  absl::Status readEcsRamRole(IdentityConfig& identity) const;
  absl::Status readStatic(IdentityConfig& identity) const;
  absl::Status readKms(KmsConfig& kms) const;
  absl::Status readCircuitBreaker(KmsConfig& kms) const;
  absl::Status readKmsInstances(std::vector<KmsInstanceConfig>& instances) const;
  absl::Status readOutput(OutputConfig& output) const;
  absl::Status readRefresh(RefreshConfig& refresh) const;
  absl::Status readControl(const OutputConfig& output, ControlConfig& control) const;
  absl::Status readListenAddress(absl::string_view key, std::string& out) const;
  absl::Status readProfileList(std::vector<ProfileConfig>& profiles) const;
  // kind, and for generic profiles format, file and file_prefix.
  absl::Status readProfileKind(const RawProfile& raw, const std::string& path,
                               ProfileConfig& profile) const;
  // No two generic profiles, and no generic profile and credsync itself, can
  // write the same file name.
  absl::Status checkOutputNames(const Config& config) const;
  absl::Status readHookList(const std::vector<ProfileConfig>& profiles,
                            std::vector<HookConfig>& hooks) const;

  const Environment& env_;
  std::map<std::string, RawValue, std::less<>> values_;
  std::vector<RawProfile> profiles_;
  std::vector<RawProfile> instances_;
  // Set when the file gives kms.instances, even as an empty list (not null).
  bool instances_in_file_ = false;
  bool instances_from_env_ = false;
  std::vector<RawHook> hooks_;
};

// Counts documents without building them. yaml-cpp 0.7 can return a
// document without consuming any input (jbeder/yaml-cpp#1040: a stray ','
// at the top level), so LoadAll loops forever allocating null documents; a
// second document starting where the first did is that case.
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  std::vector<YAML::Mark> starts;
};

absl::Status syntaxError(const YAML::Mark& mark, absl::string_view problem) {
  // yaml-cpp's messages are fixed phrases; a few append the offending
  // escape character, which printable() keeps on one line.
  return invalid("config", absl::StrCat("YAML syntax error at line ", mark.line + 1, ", column ",
                                        mark.column + 1, ": ", printable(problem)));
}

absl::Status Loader::readText(absl::string_view text) {
  const std::string input(text);
  YAML::Node root;
  try {
    std::istringstream stream(input);
    YAML::Parser parser(stream);
    DocumentCounter counter;
    // Two are enough to tell "one document" from "more than one".
    while (counter.starts.size() < 2 && parser.HandleNextDocument(counter)) {
    }
    if (counter.starts.size() > 1) {
      if (counter.starts[1].pos == counter.starts[0].pos) {
        return syntaxError(counter.starts[1], "unexpected character");
      }
      return invalid("config", "must hold exactly one YAML document");
    }
    root = YAML::Load(input);
  } catch (const YAML::Exception& e) {
    return syntaxError(e.mark, e.msg);
  } catch (const std::exception&) {
    return invalid("config", "could not be parsed");
  }
  try {
    return readDocument(root);
  } catch (const YAML::Exception& e) {
    return invalid("config", absl::StrCat("could not be read at line ", e.mark.line + 1));
  } catch (const std::exception&) {
    return invalid("config", "could not be read");
  }
}

// Walks a mapping, refusing non-scalar and duplicate keys, and hands each
// entry to `visit(name, dotted path, line of the key, value node)`.
template <typename Visit>
absl::Status forEachEntry(absl::string_view path, const YAML::Node& map, Visit visit) {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const int line = key.Mark().line + 1;
    if (!key.IsScalar()) {
      return invalid(path.empty() ? "config" : path,
                     absl::StrCat("keys must be plain names (line ", line, ")"));
    }
    const std::string& name = key.Scalar();
    const std::string full =
        path.empty() ? printable(name) : absl::StrCat(path, ".", printable(name));
    if (!seen.insert(name).second) {
      return invalid(full, absl::StrCat("duplicate key (line ", line, ")"));
    }
    if (absl::Status status = visit(name, full, line, value); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status Loader::readDocument(const YAML::Node& root) {
  if (root.IsNull()) return absl::OkStatus();
  if (!root.IsMap()) {
    return invalid("config", "the document must be a mapping of sections (identity, kms, ...)");
  }
  return forEachEntry("", root,
                      [&](const std::string& name, const std::string& full, int line,
                          const YAML::Node& value) -> absl::Status {
                        if (name == "profiles") return readProfiles(value);
                        if (name == "hooks") return readHooks(value);
                        if (isSection(name)) return readSection(name, value);
                        return invalid(full, absl::StrCat("unknown key (line ", line, ")"));
                      });
}

absl::Status Loader::readSection(const std::string& section, const YAML::Node& node) {
  if (node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) {
    return invalid(section, absl::StrCat("must be a mapping (line ", node.Mark().line + 1, ")"));
  }
  return forEachEntry(section, node,
                      [&](const std::string& name, const std::string& full, int line,
                          const YAML::Node& value) -> absl::Status {
                        if (full == "kms.instances") return readInstances(value);
                        const KeySpec* spec = findKey(full);
                        if (spec == nullptr)
                          return invalid(full, absl::StrCat("unknown key (line ", line, ")"));
                        RawValue raw;
                        raw.line = value.IsNull() ? line : value.Mark().line + 1;
                        if (value.IsNull()) return absl::OkStatus();  // null leaves the key unset
                        raw.source = Source::kFile;
                        if (!spec->is_list) {
                          if (absl::Status status = readScalar(full, value, raw); !status.ok())
                            return status;
                          values_[full] = std::move(raw);
                          return absl::OkStatus();
                        }
                        if (!value.IsSequence()) {
                          return invalid(full,
                                         absl::StrCat("must be a list (line ", raw.line, ")"));
                        }
                        for (size_t i = 0; i < value.size(); ++i) {
                          const YAML::Node item = value[i];
                          const int item_line = item.Mark().line + 1;
                          if (!item.IsScalar()) {
                            return invalid(absl::StrCat(full, "[", i, "]"),
                                           absl::StrCat("must be a string (line ", item_line, ")"));
                          }
                          raw.items.push_back(item.Scalar());
                          raw.item_lines.push_back(item_line);
                        }
                        values_[full] = std::move(raw);
                        return absl::OkStatus();
                      });
}

absl::Status Loader::readScalar(const std::string& key, const YAML::Node& node, RawValue& out) {
  if (!node.IsScalar()) {
    return invalid(key, absl::StrCat("must be a single value, not a list or mapping (line ",
                                     node.Mark().line + 1, ")"));
  }
  out.text = node.Scalar();
  return absl::OkStatus();
}

absl::Status Loader::readProfiles(const YAML::Node& node) {
  if (node.IsNull()) return absl::OkStatus();
  return readMappingList("profiles", node, isProfileKey, profiles_);
}

bool isInstanceKey(absl::string_view name) {
  for (const InstanceKey& key : kInstanceKeys) {
    if (name == key.key) return true;
  }
  return false;
}

absl::Status Loader::readInstances(const YAML::Node& node) {
  // A YAML null leaves the key unset, so the environment still applies.
  if (node.IsNull()) return absl::OkStatus();
  instances_in_file_ = true;
  return readMappingList("kms.instances", node, isInstanceKey, instances_);
}

absl::Status Loader::readMappingList(const std::string& key, const YAML::Node& node,
                                     bool (*is_known)(absl::string_view),
                                     std::vector<RawProfile>& out) {
  if (!node.IsSequence()) {
    return invalid(key, absl::StrCat("must be a list (line ", node.Mark().line + 1, ")"));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    const std::string path = absl::StrCat(key, "[", i, "]");
    RawProfile entry;
    entry.line = item.Mark().line + 1;
    if (!item.IsMap()) {
      return invalid(path, absl::StrCat("must be a mapping (line ", entry.line, ")"));
    }
    absl::Status status =
        forEachEntry(path, item,
                     [&](const std::string& name, const std::string& full, int line,
                         const YAML::Node& value) -> absl::Status {
                       if (!is_known(name)) {
                         return invalid(full, absl::StrCat("unknown key (line ", line, ")"));
                       }
                       if (value.IsNull()) return absl::OkStatus();
                       RawValue raw;
                       raw.source = Source::kFile;
                       raw.line = value.Mark().line + 1;
                       if (absl::Status scalar = readScalar(full, value, raw); !scalar.ok()) {
                         return scalar;
                       }
                       entry.fields[name] = std::move(raw);
                       return absl::OkStatus();
                     });
    if (!status.ok()) return status;
    out.push_back(std::move(entry));
  }
  return absl::OkStatus();
}

// "SIGHUP", "hup", or a number 1-31: the standard signals, by the names
// kill -l prints.
std::optional<int> parseSignal(absl::string_view text) {
  int number = 0;
  if (absl::SimpleAtoi(text, &number)) {
    if (number >= 1 && number <= 31) return number;
    return std::nullopt;
  }
  std::string name = absl::AsciiStrToUpper(text);
  absl::string_view bare = name;
  absl::ConsumePrefix(&bare, "SIG");
  for (int signal = 1; signal <= 31; ++signal) {
    const char* abbreviation = sigabbrev_np(signal);
    if (abbreviation != nullptr && bare == abbreviation) return signal;
  }
  return std::nullopt;
}

// A list of plain strings (hooks[].command, hooks[].profiles).
absl::Status readStringList(const std::string& path, const YAML::Node& node,
                            std::vector<std::string>& out, std::vector<int>* lines) {
  if (!node.IsSequence()) {
    return invalid(path, absl::StrCat("must be a list (line ", node.Mark().line + 1, ")"));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    const int line = item.Mark().line + 1;
    if (!item.IsScalar()) {
      return invalid(absl::StrCat(path, "[", i, "]"),
                     absl::StrCat("must be a string (line ", line, ")"));
    }
    if (absl::StrContains(item.Scalar(), '\0')) {
      return invalid(absl::StrCat(path, "[", i, "]"),
                     absl::StrCat("must not contain NUL (line ", line, ")"));
    }
    out.push_back(item.Scalar());
    if (lines != nullptr) lines->push_back(line);
  }
  return absl::OkStatus();
}

// The official clients' JSON array, e.g.
// [{"regionId":"cn-hangzhou","endpoint":"kst-….cryptoservice.kms.aliyuncs.com",
//   "clientKeyFile":"/keys/clientKey.json","passwordFromFilePath":"/keys/password",
//   "caFilePath":"/keys/ca.pem","ignoreSslCerts":false}]
// read with the YAML parser (JSON is YAML). Keys are matched exactly; a key
// credsync does not implement is an error rather than silently ignored.
absl::Status Loader::applyInstanceEnvironment() {
  if (instances_in_file_) return absl::OkStatus();
  std::optional<std::string> text = envValue(kDkmsConfigEnv);
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
      RawProfile instance;
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
      instances_.push_back(std::move(instance));
    }
  } catch (const std::exception&) {
    return invalid(kDkmsConfigEnv, absl::StrCat("could not be read", origin));
  }
  instances_from_env_ = true;
  return absl::OkStatus();
}

absl::Status Loader::applyRegionEnvironment() {
  if (const RawValue* listed = find("kms.endpoints"); listed != nullptr && !listed->items.empty()) {
    return absl::OkStatus();
  }
  std::optional<std::string> text = envValue(kRegionsEnv);
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
  values_["kms.endpoints"] = std::move(endpoints);
  return absl::OkStatus();
}

absl::Status Loader::readHooks(const YAML::Node& node) {
  if (node.IsNull()) return absl::OkStatus();
  if (!node.IsSequence()) {
    return invalid("hooks", absl::StrCat("must be a list (line ", node.Mark().line + 1, ")"));
  }
  // Each hook runs on one thread after every change; dozens would be a mistake.
  constexpr size_t kMaxHooks = 16;
  if (node.size() > kMaxHooks) {
    return invalid("hooks",
                   absl::StrCat("at most ", kMaxHooks, " hooks (line ", node.Mark().line + 1, ")"));
  }
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string path = absl::StrCat("hooks[", i, "]");
    if (absl::Status status = readHook(path, node[i]); !status.ok()) return status;
    const std::string& name = hooks_.back().config.name;
    if (const auto [it, inserted] = names.emplace(name, i); !inserted) {
      return invalid(absl::StrCat(path, ".name"),
                     absl::StrCat("same name as hooks[", it->second, "] (line ",
                                  node[i].Mark().line + 1, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status Loader::readHook(const std::string& path, const YAML::Node& node) {
  const int hook_line = node.Mark().line + 1;
  if (!node.IsMap()) {
    return invalid(path, absl::StrCat("must be a mapping (line ", hook_line, ")"));
  }
  RawHook hook;
  HookConfig& config = hook.config;
  config.name = path;
  bool has_signal = false;
  bool has_command = false;
  bool has_timeout = false;
  const auto scalar = [this](const std::string& full, const YAML::Node& value,
                             std::string& out) -> absl::Status {
    RawValue raw;
    if (absl::Status status = readScalar(full, value, raw); !status.ok()) return status;
    out = std::move(raw.text);
    return absl::OkStatus();
  };
  absl::Status status = forEachEntry(
      path, node,
      [&](const std::string& name, const std::string& full, int line,
          const YAML::Node& value) -> absl::Status {
        const std::string where = absl::StrCat(" (line ", value.Mark().line + 1, ")");
        if (value.IsNull()) {
          if (name == "name" || name == "signal" || name == "command" || name == "timeout" ||
              name == "profiles") {
            return absl::OkStatus();
          }
        }
        if (name == "name") {
          std::string text;
          if (absl::Status s = scalar(full, value, text); !s.ok()) return s;
          if (!isProfileName(text)) {
            return invalid(full,
                           absl::StrCat("must be 1 to 64 characters of A-Z a-z 0-9 _ -", where));
          }
          config.name = text;
          return absl::OkStatus();
        }
        if (name == "signal") {
          has_signal = true;
          config.kind = HookConfig::Kind::kSignal;
          if (!value.IsMap()) return invalid(full, absl::StrCat("must be a mapping", where));
          return forEachEntry(
              full, value,
              [&](const std::string& key, const std::string& key_path, int key_line,
                  const YAML::Node& item) -> absl::Status {
                const std::string item_where = absl::StrCat(" (line ", item.Mark().line + 1, ")");
                std::string text;
                if (key != "signal" && key != "process" && key != "pid_file") {
                  return invalid(key_path, absl::StrCat("unknown key (line ", key_line, ")"));
                }
                if (item.IsNull()) return absl::OkStatus();
                if (absl::Status s = scalar(key_path, item, text); !s.ok()) return s;
                if (key == "signal") {
                  const std::optional<int> signal = parseSignal(absl::StripAsciiWhitespace(text));
                  if (!signal.has_value()) {
                    return invalid(key_path, absl::StrCat("must be a signal name such as SIGHUP or "
                                                          "SIGUSR1, or a number from 1 to 31",
                                                          item_where));
                  }
                  config.signal = *signal;
                } else if (key == "process") {
                  // /proc/<pid>/comm holds at most 15 bytes; a longer name
                  // can still match the base name of argv[0].
                  if (text.empty() || text.size() > 255 || hasControlOrSpace(text) ||
                      absl::StrContains(text, '/')) {
                    return invalid(key_path,
                                   absl::StrCat("must be a process name (1 to 255 characters, "
                                                "no spaces or '/')",
                                                item_where));
                  }
                  config.process = text;
                } else {
                  if (!absl::StartsWith(text, "/") || hasControlOrSpace(text)) {
                    return invalid(key_path, absl::StrCat("must be an absolute path", item_where));
                  }
                  config.pid_file = text;
                }
                return absl::OkStatus();
              });
        }
        if (name == "command") {
          has_command = true;
          config.kind = HookConfig::Kind::kCommand;
          if (absl::Status s = readStringList(full, value, config.command, nullptr); !s.ok()) {
            return s;
          }
          if (config.command.empty() || config.command.front().empty()) {
            return invalid(full, absl::StrCat("must name a program: [program, args...]", where));
          }
          if (config.command.size() > 256) {
            return invalid(full, absl::StrCat("must have at most 256 arguments", where));
          }
          return absl::OkStatus();
        }
        if (name == "timeout") {
          has_timeout = true;
          std::string text;
          if (absl::Status s = scalar(full, value, text); !s.ok()) return s;
          absl::Duration timeout;
          if (!absl::ParseDuration(absl::StripAsciiWhitespace(text), &timeout) ||
              timeout < absl::Milliseconds(100) || timeout > absl::Hours(1)) {
            return invalid(full,
                           absl::StrCat("must be a duration from 100ms to 1h, such as 30s", where));
          }
          config.timeout = timeout;
          return absl::OkStatus();
        }
        if (name == "profiles") {
          return readStringList(full, value, config.profiles, &hook.profile_lines);
        }
        return invalid(full, absl::StrCat("unknown key (line ", line, ")"));
      });
  if (!status.ok()) return status;
  if (has_signal == has_command) {
    return invalid(
        path, absl::StrCat("must have exactly one of signal or command (line ", hook_line, ")"));
  }
  if (has_signal && config.process.empty() == config.pid_file.empty()) {
    return invalid(
        absl::StrCat(path, ".signal"),
        absl::StrCat("must have exactly one of process or pid_file (line ", hook_line, ")"));
  }
  if (has_signal && has_timeout) {
    return invalid(absl::StrCat(path, ".timeout"),
                   absl::StrCat("applies to command hooks only (line ", hook_line, ")"));
  }
  hooks_.push_back(std::move(hook));
  return absl::OkStatus();
}

absl::Status Loader::readHookList(const std::vector<ProfileConfig>& profiles,
                                  std::vector<HookConfig>& hooks) const {
  for (size_t i = 0; i < hooks_.size(); ++i) {
    const RawHook& raw = hooks_[i];
    for (size_t j = 0; j < raw.config.profiles.size(); ++j) {
      const std::string& name = raw.config.profiles[j];
      if (absl::c_none_of(profiles, [&](const ProfileConfig& p) { return p.name == name; })) {
        return invalid(
            absl::StrCat("hooks[", i, "].profiles[", j, "]"),
            absl::StrCat("names no configured profile (line ", raw.profile_lines[j], ")"));
      }
    }
    hooks.push_back(raw.config);
  }
  return absl::OkStatus();
}

absl::Status Loader::applyOverrides(const Overrides& overrides) {
  for (const auto& [key, value] : overrides) {
    absl::string_view rest = key;
    if (absl::ConsumePrefix(&rest, "profiles") &&
        (rest.empty() || rest.front() == '.' || rest.front() == '[')) {
      return invalid("profiles", "cannot be overridden by a flag; set profiles in the config file");
    }
    if (absl::StartsWith(key, "kms.instances")) {
      return invalid("kms.instances",
                     "cannot be overridden by a flag; set kms.instances in the config file");
    }
    const KeySpec* spec = findKey(key);
    if (spec == nullptr) return invalid(printable(key), "unknown key (from a flag)");
    RawValue raw;
    raw.source = Source::kOverride;
    if (spec->is_list) {
      for (absl::string_view item : absl::StrSplit(value, ',')) {
        item = absl::StripAsciiWhitespace(item);
        if (!item.empty()) raw.items.emplace_back(item);
      }
    } else {
      raw.text = value;
    }
    values_[spec->key] = std::move(raw);
  }
  return absl::OkStatus();
}

std::optional<std::string> Loader::envValue(const char* name) const {
  std::optional<std::string> value = env_ ? env_(name) : std::nullopt;
  // The SDKs treat an empty variable as unset; so do we.
  if (value.has_value() && value->empty()) return std::nullopt;
  return value;
}

void Loader::applyEnvironment() {
  for (const KeySpec& spec : kKeys) {
    if (spec.env == nullptr || find(spec.key) != nullptr) continue;
    std::optional<std::string> value = envValue(spec.env);
    if (!value.has_value()) continue;
    RawValue raw;
    raw.source = Source::kEnvironment;
    raw.env_name = spec.env;
    raw.text = *std::move(value);
    if (raw.env_name == kVpcEnv) {
      // As the SDKs read it: "true" in any case enables, anything else does not.
      raw.text = absl::AsciiStrToLower(raw.text) == "true" ? "true" : "false";
    }
    values_[spec.key] = std::move(raw);
  }
}

const RawValue* Loader::find(absl::string_view key) const {
  const auto it = values_.find(key);
  return it == values_.end() || !it->second.isSet() ? nullptr : &it->second;
}

absl::Status Loader::readString(absl::string_view key, std::string& out) const {
  const RawValue* raw = find(key);
  if (raw == nullptr) return absl::OkStatus();
  if (absl::StrContains(raw->text, '\0')) return invalid(key, "must not contain NUL", *raw);
  out = raw->text;
  return absl::OkStatus();
}

absl::Status Loader::readBool(absl::string_view key, bool& out) const {
  const RawValue* raw = find(key);
  if (raw == nullptr) return absl::OkStatus();
  const std::optional<bool> value = parseBool(raw->text);
  if (!value.has_value()) return invalid(key, "must be true or false", *raw);
  out = *value;
  return absl::OkStatus();
}

absl::Status Loader::readDuration(absl::string_view key, absl::Duration min,
                                  absl::Duration& out) const {
  const RawValue* raw = find(key);
  if (raw == nullptr) return absl::OkStatus();
  absl::Duration value;
  const std::string text(absl::StripAsciiWhitespace(raw->text));
  // absl accepts a bare "0"; every other value needs a unit, so "3600" is
  // refused rather than guessed to be seconds.
  if (!absl::ParseDuration(text, &value) || value == absl::InfiniteDuration() ||
      value == -absl::InfiniteDuration()) {
    return invalid(key, "must be a duration such as 30s, 5m or 1h30m", *raw);
  }
  if (value < min) {
    return invalid(key, absl::StrCat("must be at least ", absl::FormatDuration(min)), *raw);
  }
  if (value > kMaxDuration) {
    return invalid(key, absl::StrCat("must be at most ", absl::FormatDuration(kMaxDuration)), *raw);
  }
  out = value;
  return absl::OkStatus();
}

int rank(const RawValue* raw) { return raw == nullptr ? 0 : static_cast<int>(raw->source); }

absl::Status Loader::readIdentity(IdentityConfig& identity, bool identity_needed) const {
  if (const RawValue* raw = find("identity.type")) {
    const std::string type = absl::AsciiStrToLower(raw->text);
    if (type == "oidc") {
      identity.type = IdentityType::kOidc;
    } else if (type == "ecs_ram_role") {
      identity.type = IdentityType::kEcsRamRole;
    } else if (type == "static") {
      identity.type = IdentityType::kStatic;
    } else {
      return invalid("identity.type", "must be oidc, ecs_ram_role or static", *raw);
    }
  }

  struct ArnKey {
    const char* key;
    const char* kind;
    const char* shape;
    std::string* out;
  };
  const ArnKey arns[] = {
      {"identity.role_arn", "role/", "acs:ram::<account id>:role/<role name>", &identity.role_arn},
      {"identity.oidc_provider_arn", "oidc-provider/",
       "acs:ram::<account id>:oidc-provider/<provider name>", &identity.oidc_provider_arn},
  };
  for (const ArnKey& arn : arns) {
    const RawValue* raw = find(arn.key);
    if (raw == nullptr) continue;
    const std::string value(absl::StripAsciiWhitespace(raw->text));
    if (!value.empty() && !isRamArn(value, arn.kind)) {
      return invalid(arn.key, absl::StrCat("must look like ", arn.shape), *raw);
    }
    *arn.out = value;
  }

  if (absl::Status status = readString("identity.oidc_token_file", identity.oidc_token_file);
      !status.ok()) {
    return status;
  }

  if (const RawValue* raw = find("identity.role_session_name"); raw != nullptr) {
    const std::string& name = raw->text;
    if (name.size() < 2 || name.size() > 64 || !absl::c_all_of(name, isSessionNameChar)) {
      return invalid("identity.role_session_name",
                     "must be 2 to 64 characters of A-Z a-z 0-9 . @ _ -", *raw);
    }
    identity.role_session_name = name;
  } else {
    // The STS audit log shows the session name, so name it after the pod.
    std::optional<std::string> pod = envValue("POD_NAME");
    if (!pod.has_value()) pod = envValue("HOSTNAME");
    std::string name = pod.has_value() ? absl::StrCat("credsync-", *pod) : "credsync";
    for (char& c : name) {
      if (!isSessionNameChar(c)) c = '-';
    }
    if (name.size() > 64) name.resize(64);
    identity.role_session_name = name;
  }

  if (absl::Status status =
          readDuration("identity.session_duration", absl::Minutes(15), identity.session_duration);
      !status.ok()) {
    return status;
  }
  if (identity.session_duration > absl::Hours(12)) {
    return invalid("identity.session_duration", "must be at most 12h",
                   *find("identity.session_duration"));
  }
  if (identity.session_duration % absl::Seconds(1) != absl::ZeroDuration()) {
    // STS takes DurationSeconds, an integer.
    return invalid("identity.session_duration", "must be a whole number of seconds",
                   *find("identity.session_duration"));
  }
  if (absl::Status status = readString("identity.policy", identity.policy); !status.ok()) {
    return status;
  }
  if (absl::Status status = readStsEndpoint(identity); !status.ok()) return status;

  if (absl::Status status = readEcsRamRole(identity); !status.ok()) return status;

  // Only KMS instances with client keys: nothing signs with the identity.
  if (!identity_needed) return absl::OkStatus();
  if (identity.type == IdentityType::kStatic) return readStatic(identity);
  if (identity.type == IdentityType::kEcsRamRole) {
    // As the SDKs' builders: the variable switches the metadata identity off.
    std::optional<std::string> disabled = envValue("ALIBABA_CLOUD_ECS_METADATA_DISABLED");
    if (disabled.has_value() && absl::AsciiStrToLower(*disabled) == "true") {
      return invalid("identity.type",
                     "ecs_ram_role is disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED=true");
    }
    return absl::OkStatus();
  }
  struct Required {
    const char* key;
    const char* env;
    const std::string& value;
  };
  const Required required[] = {
      {"identity.role_arn", "ALIBABA_CLOUD_ROLE_ARN", identity.role_arn},
      {"identity.oidc_provider_arn", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", identity.oidc_provider_arn},
      {"identity.oidc_token_file", "ALIBABA_CLOUD_OIDC_TOKEN_FILE", identity.oidc_token_file},
  };
  for (const Required& field : required) {
    if (field.value.empty()) {
      return invalid(field.key,
                     absl::StrCat("must be set for identity.type oidc (or set ", field.env, ")"));
    }
  }
  return absl::OkStatus();
}

// As credentials-go's OIDC provider: an explicit endpoint, else
// sts[-vpc].<region>.aliyuncs.com for a region, else sts.aliyuncs.com (the
// VPC flag alone does not change the central endpoint). Across sources the
// precedence holds: a region set in the file beats an endpoint that only
// the environment gives.
absl::Status Loader::readStsEndpoint(IdentityConfig& identity) const {
  const RawValue* endpoint = find("identity.sts_endpoint");
  const RawValue* region = find("identity.sts_region");
  const RawValue* vpc_raw = find("identity.vpc_endpoint");
  bool vpc = false;
  if (absl::Status status = readBool("identity.vpc_endpoint", vpc); !status.ok()) return status;

  std::string explicit_endpoint;
  if (endpoint != nullptr && !absl::StripAsciiWhitespace(endpoint->text).empty()) {
    absl::StatusOr<std::string> normalised = normaliseEndpoint(endpoint->text);
    if (!normalised.ok()) {
      return invalid("identity.sts_endpoint", normalised.status().message(), *endpoint);
    }
    explicit_endpoint = *normalised;
  }
  std::string region_id;
  if (region != nullptr) {
    region_id = std::string(absl::StripAsciiWhitespace(region->text));
    if (!region_id.empty() && !isRegion(region_id)) {
      return invalid("identity.sts_region", "must be a region ID such as cn-hangzhou", *region);
    }
  }

  const bool region_wins =
      !region_id.empty() && std::max(rank(region), rank(vpc_raw)) > rank(endpoint);
  if (!explicit_endpoint.empty() && !region_wins) {
    identity.sts_endpoint = explicit_endpoint;
  } else if (!region_id.empty()) {
    identity.sts_endpoint =
        absl::StrCat("https://", vpc ? "sts-vpc." : "sts.", region_id, ".aliyuncs.com");
  } else {
    identity.sts_endpoint = "https://sts.aliyuncs.com";
  }
  return absl::OkStatus();
}

// The keys of identity.type ecs_ram_role, validated whatever the type so a
// typo surfaces before the type is switched.
absl::Status Loader::readEcsRamRole(IdentityConfig& identity) const {
  if (const RawValue* raw = find("identity.role_name"); raw != nullptr) {
    const std::string name(absl::StripAsciiWhitespace(raw->text));
    if (!name.empty() && !isValidEcsRoleName(name)) {
      return invalid("identity.role_name", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -", *raw);
    }
    identity.ecs_role_name = name;
  }
  if (const RawValue* raw = find("identity.metadata_endpoint"); raw != nullptr) {
    const absl::string_view text = absl::StripAsciiWhitespace(raw->text);
    // The metadata service speaks plain HTTP on a link-local address.
    const std::string url =
        absl::StrContains(text, "://") ? std::string(text) : absl::StrCat("http://", text);
    absl::StatusOr<Endpoint> endpoint = parseEndpoint(url);
    if (text.empty() || !endpoint.ok() || endpoint->scheme != "http") {
      return invalid("identity.metadata_endpoint",
                     "must be http://host[:port], such as http://100.100.100.200", *raw);
    }
    identity.ecs_metadata_endpoint = absl::StrCat("http://", absl::AsciiStrToLower(endpoint->host));
  }
  if (absl::Status status = readBool("identity.imdsv1_fallback", identity.ecs_imdsv1_fallback);
      !status.ok()) {
    return status;
  }
  // As the SDKs read it: "true" in any case forces the hardened mode, over
  // whatever the file says.
  std::optional<std::string> v1_disabled = envValue("ALIBABA_CLOUD_IMDSV1_DISABLED");
  if (v1_disabled.has_value() && absl::AsciiStrToLower(*v1_disabled) == "true") {
    identity.ecs_imdsv1_fallback = false;
  }
  if (absl::Status status = readDuration("identity.metadata_token_ttl", absl::Seconds(1),
                                         identity.ecs_metadata_token_ttl);
      !status.ok()) {
    return status;
  }
  if (identity.ecs_metadata_token_ttl > absl::Hours(6)) {
    return invalid("identity.metadata_token_ttl", "must be at most 6h",
                   *find("identity.metadata_token_ttl"));
  }
  if (identity.ecs_metadata_token_ttl % absl::Seconds(1) != absl::ZeroDuration()) {
    return invalid("identity.metadata_token_ttl", "must be a whole number of seconds",
                   *find("identity.metadata_token_ttl"));
  }
  return absl::OkStatus();
}

absl::Status Loader::readStatic(IdentityConfig& identity) const {
  std::optional<std::string> id = envValue("ALIBABA_CLOUD_ACCESS_KEY_ID");
  std::optional<std::string> secret = envValue("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
  std::optional<std::string> token = envValue("ALIBABA_CLOUD_SECURITY_TOKEN");
  const bool complete = id.has_value() && secret.has_value();
  if (complete) {
    identity.static_access_key_id = *id;
    identity.static_access_key_secret = SecretString(*secret);
    if (token.has_value()) identity.static_security_token = SecretString(*token);
  }
  // The copies above are the only ones that may outlive this call.
  if (secret.has_value()) wipeString(*secret);
  if (token.has_value()) wipeString(*token);
  if (!complete) {
    return invalid("identity.type",
                   "static needs ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
                   "in the environment");
  }
  return absl::OkStatus();
}

absl::Status Loader::readKms(KmsConfig& kms) const {
  const RawValue* endpoints = find("kms.endpoints");
  const RawValue* region = find("kms.region");
  const RawValue* vpc_raw = find("kms.vpc_endpoint");
  bool vpc = false;
  if (absl::Status status = readBool("kms.vpc_endpoint", vpc); !status.ok()) return status;
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

  if (absl::Status status = readKmsInstances(kms.instances); !status.ok()) return status;

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

  if (const RawValue* raw = find("kms.signature")) {
    const std::string signature = absl::AsciiStrToLower(raw->text);
    if (signature == "acs3") {
      kms.signature = alibaba::SignatureScheme::kAcs3HmacSha256;
    } else if (signature == "hmac-sha1") {
      kms.signature = alibaba::SignatureScheme::kRpcHmacSha1;
    } else {
      return invalid("kms.signature", "must be acs3 or hmac-sha1", *raw);
    }
  }
  return readCircuitBreaker(kms);
}

absl::Status Loader::readCircuitBreaker(KmsConfig& kms) const {
  if (const RawValue* raw = find("kms.circuit_failure_threshold")) {
    int threshold = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(raw->text), &threshold) || threshold < 0 ||
        threshold > 100) {
      return invalid("kms.circuit_failure_threshold", "must be a whole number from 0 (off) to 100",
                     *raw);
    }
    kms.circuit_failure_threshold = threshold;
  }
  if (absl::Status status =
          readDuration("kms.circuit_open_for", absl::Milliseconds(100), kms.circuit_open_for);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = readDuration("kms.circuit_max_open_for", absl::Milliseconds(100),
                                         kms.circuit_max_open_for);
      !status.ok()) {
    return status;
  }
  if (kms.circuit_max_open_for < kms.circuit_open_for) {
    // Blame the key that was set (defaults are consistent).
    const char* key = find("kms.circuit_max_open_for") != nullptr ? "kms.circuit_max_open_for"
                                                                  : "kms.circuit_open_for";
    return invalid(key, "kms.circuit_max_open_for must not be shorter than kms.circuit_open_for",
                   *find(key));
  }
  return absl::OkStatus();
}

bool isEnvironmentVariableName(absl::string_view name) {
  if (name.empty() || name.size() > 128 || absl::ascii_isdigit(name.front())) return false;
  return absl::c_all_of(name, [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

absl::Status Loader::readKmsInstances(std::vector<KmsInstanceConfig>& instances) const {
  std::map<std::string, size_t> endpoints;
  for (size_t i = 0; i < instances_.size(); ++i) {
    const RawProfile& raw = instances_[i];
    const std::string path = instances_from_env_ ? absl::StrCat(kDkmsConfigEnv, "[", i, "]")
                                                 : absl::StrCat("kms.instances[", i, "]");
    // Errors name the key as the user wrote it: ours, or the official one.
    const auto name = [&](const char* key) {
      for (const InstanceKey& known : kInstanceKeys) {
        if (absl::string_view(key) == known.key) {
          return absl::StrCat(path, ".", instances_from_env_ ? known.official : known.key);
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
      const std::string where = instances_from_env_ ? absl::StrCat(" (from ", kDkmsConfigEnv, ")")
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
      return invalid(
          name("password_file"),
          absl::StrCat(problem, instances_from_env_ ? absl::StrCat(" (from ", kDkmsConfigEnv, ")")
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

absl::Status Loader::readOutput(OutputConfig& output) const {
  if (const RawValue* raw = find("output.directory")) {
    if (!absl::StartsWith(raw->text, "/") || absl::StrContains(raw->text, '\0')) {
      return invalid("output.directory", "must be an absolute path", *raw);
    }
    output.directory = raw->text;
  }
  if (const RawValue* raw = find("output.file_mode")) {
    absl::string_view text = absl::StripAsciiWhitespace(raw->text);
    const bool octal_digits = (text.size() == 3 || text.size() == 4) &&
                              absl::c_all_of(text, [](char c) { return c >= '0' && c <= '7'; });
    if (!octal_digits) {
      return invalid("output.file_mode", "must be an octal mode such as \"0440\"", *raw);
    }
    const uint32_t mode =
        static_cast<uint32_t>(std::strtoul(std::string(text).c_str(), nullptr, 8));
    // The file holds an AccessKey: nobody executes it and only its owner
    // (credsync) may change it; reading is what group/other are for.
    if (mode & 07000) {
      return invalid("output.file_mode", "must not set setuid, setgid or sticky bits", *raw);
    }
    if (mode & ~0644u) {
      return invalid("output.file_mode",
                     "must not grant execute, or write to group or others (at most 0644)", *raw);
    }
    if ((mode & 0444u) == 0) return invalid("output.file_mode", "must grant read to someone", *raw);
    output.file_mode = mode;
  }
  if (const RawValue* raw = find("output.group")) {
    const absl::string_view text = absl::StripAsciiWhitespace(raw->text);
    uint32_t gid = 0;
    if (text.empty()) {
      output.group.reset();
    } else if (!absl::c_all_of(text, absl::ascii_isdigit) || !absl::SimpleAtoi(text, &gid) ||
               gid == std::numeric_limits<uint32_t>::max()) {
      // (gid_t)-1 means "leave unchanged" to chown, so it cannot be a group.
      return invalid("output.group", "must be a numeric group ID", *raw);
    } else {
      output.group = static_cast<gid_t>(gid);
    }
  }
  return absl::OkStatus();
}

absl::Status Loader::readRefresh(RefreshConfig& refresh) const {
  struct DurationKey {
    const char* key;
    absl::Duration min;
    absl::Duration* out;
  };
  const DurationKey durations[] = {
      // Seconds are allowed for tests and demos; production keeps the 1h default.
      {"refresh.interval", absl::Seconds(1), &refresh.interval},
      {"refresh.rotation_delay", absl::ZeroDuration(), &refresh.rotation_delay},
      {"refresh.rotation_jitter", absl::ZeroDuration(), &refresh.rotation_jitter},
      {"refresh.startup_jitter", absl::ZeroDuration(), &refresh.startup_jitter},
      {"refresh.retry_initial_backoff", absl::Milliseconds(1), &refresh.retry_initial_backoff},
      {"refresh.retry_max_backoff", absl::Milliseconds(1), &refresh.retry_max_backoff},
      {"refresh.on_demand_refill", absl::Milliseconds(1), &refresh.on_demand_refill},
  };
  for (const DurationKey& duration : durations) {
    if (absl::Status status = readDuration(duration.key, duration.min, *duration.out);
        !status.ok()) {
      return status;
    }
  }
  if (const RawValue* raw = find("refresh.jitter")) {
    double jitter = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(raw->text), &jitter) ||
        !std::isfinite(jitter) || jitter < 0 || jitter > 0.5) {
      return invalid("refresh.jitter", "must be a number from 0 to 0.5", *raw);
    }
    refresh.jitter = jitter;
  }
  if (const RawValue* raw = find("refresh.on_demand_burst")) {
    int burst = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(raw->text), &burst) || burst < 1 ||
        burst > 1000) {
      return invalid("refresh.on_demand_burst", "must be a whole number from 1 to 1000", *raw);
    }
    refresh.on_demand_burst = burst;
  }
  if (refresh.retry_max_backoff < refresh.retry_initial_backoff) {
    const RawValue* raw = find("refresh.retry_max_backoff");
    if (raw == nullptr) raw = find("refresh.retry_initial_backoff");
    return invalid("refresh.retry_max_backoff",
                   "must not be less than refresh.retry_initial_backoff", *raw);
  }
  return absl::OkStatus();
}

// "host:port" with a numeric port (0 picks one); IPv6 hosts in brackets.
absl::Status Loader::readListenAddress(absl::string_view key, std::string& out) const {
  const RawValue* raw = find(key);
  if (raw == nullptr) return absl::OkStatus();
  const std::string text(absl::StripAsciiWhitespace(raw->text));
  if (text.empty()) {
    out.clear();
    return absl::OkStatus();
  }
  const size_t colon = text.rfind(':');
  int port = -1;
  const bool bracketed = absl::StartsWith(text, "[");
  const std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
  const bool host_ok =
      !host.empty() && !hasControlOrSpace(host) &&
      (bracketed ? absl::EndsWith(host, "]") : host.find(':') == std::string::npos);
  if (colon == std::string::npos || !host_ok ||
      !absl::c_all_of(text.substr(colon + 1), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(text.substr(colon + 1), &port) || port > 65535) {
    return invalid(key, "must be host:port, such as 127.0.0.1:9901 (port 0 picks one)", *raw);
  }
  out = text;
  return absl::OkStatus();
}

absl::Status Loader::readControl(const OutputConfig& output, ControlConfig& control) const {
  control.socket_path = absl::StrCat(output.directory, "/credsync.sock");
  if (const RawValue* raw = find("control.socket")) {
    if (!raw->text.empty()) {
      if (!absl::StartsWith(raw->text, "/") || hasControlOrSpace(raw->text)) {
        return invalid("control.socket", "must be an absolute path", *raw);
      }
      control.socket_path = raw->text;
    }
  }
  // sockaddr_un holds 108 bytes including the terminating NUL.
  if (control.socket_path.size() > 107) {
    const RawValue* raw = find("control.socket");
    const std::string problem =
        "must be at most 107 bytes (a Unix socket path limit); set a shorter path";
    return raw != nullptr
               ? invalid("control.socket", problem, *raw)
               : invalid("control.socket", absl::StrCat(problem, " (the default is under ",
                                                        "output.directory, which is too long)"));
  }
  if (const RawValue* raw = find("control.socket_mode")) {
    absl::string_view text = absl::StripAsciiWhitespace(raw->text);
    const bool octal_digits = (text.size() == 3 || text.size() == 4) &&
                              absl::c_all_of(text, [](char c) { return c >= '0' && c <= '7'; });
    const uint32_t mode =
        octal_digits ? static_cast<uint32_t>(std::strtoul(std::string(text).c_str(), nullptr, 8))
                     : 0;
    // Connecting needs write permission; nobody executes a socket, and
    // "others" would let any container user trigger refreshes.
    if (!octal_digits || (mode & ~0660u) != 0 || (mode & 0200u) == 0) {
      return invalid("control.socket_mode",
                     "must be an octal mode granting the owner write, at most 0660", *raw);
    }
    control.socket_mode = mode;
  }
  if (absl::Status status = readListenAddress("control.tcp_address", control.tcp_address);
      !status.ok()) {
    return status;
  }
  if (const RawValue* raw = find("control.token_file")) {
    if (!raw->text.empty() && (!absl::StartsWith(raw->text, "/") || hasControlOrSpace(raw->text))) {
      return invalid("control.token_file", "must be an absolute path", *raw);
    }
    control.token_file = raw->text;
  }
  if (absl::Status status = readListenAddress("control.http_address", control.http_address);
      !status.ok()) {
    return status;
  }
  return readDuration("control.refresh_timeout", absl::Milliseconds(100), control.refresh_timeout);
}

absl::Status Loader::readProfileKind(const RawProfile& raw, const std::string& path,
                                     ProfileConfig& profile) const {
  const auto field = [&](const char* name) -> const RawValue* {
    const auto it = raw.fields.find(name);
    return it == raw.fields.end() ? nullptr : &it->second;
  };
  if (const RawValue* kind = field("kind")) {
    if (kind->text == "generic") {
      profile.kind = ProfileKind::kGeneric;
    } else if (kind->text != "ram_credentials") {
      return invalid(absl::StrCat(path, ".kind"), "must be ram_credentials or generic", *kind);
    }
  }
  if (profile.kind == ProfileKind::kRamCredentials) {
    // The file keys only mean something for a generic profile: refuse them
    // rather than let a forgotten `kind: generic` pass unnoticed.
    for (const char* key : {"format", "file", "file_prefix"}) {
      if (const RawValue* value = field(key)) {
        return invalid(absl::StrCat(path, ".", key), "is only for profiles with kind: generic",
                       *value);
      }
    }
    return absl::OkStatus();
  }
  if (profile.is_default) {
    return invalid(absl::StrCat(path, ".default"),
                   "a generic profile is not in credentials.ini, so it cannot be the default",
                   *field("default"));
  }
  if (profile.name == "default") {
    return invalid(absl::StrCat(path, ".name"),
                   "\"default\" is reserved for the default credentials.ini profile",
                   *field("name"));
  }
  if (const RawValue* format = field("format")) {
    if (format->text == "json_keys") {
      profile.format = GenericFormat::kJsonKeys;
    } else if (format->text != "raw") {
      return invalid(absl::StrCat(path, ".format"), "must be raw or json_keys", *format);
    }
  }
  const bool json_keys = profile.format == GenericFormat::kJsonKeys;
  if (const RawValue* key = field(json_keys ? "file" : "file_prefix")) {
    return invalid(absl::StrCat(path, json_keys ? ".file" : ".file_prefix"),
                   json_keys ? "is for format: raw; format: json_keys names files with file_prefix"
                             : "is for format: json_keys; format: raw names its file with file",
                   *key);
  }
  if (!json_keys) {
    profile.file = profile.name;
    if (const RawValue* file = field("file")) {
      if (!isOutputFileName(file->text)) {
        return invalid(absl::StrCat(path, ".file"),
                       "must be a file name of 1 to 255 characters of A-Z a-z 0-9 . _ - "
                       "(not starting with .)",
                       *file);
      }
      profile.file = file->text;
    }
    return absl::OkStatus();
  }
  profile.file_prefix = absl::StrCat(profile.name, ".");
  if (const RawValue* prefix = field("file_prefix")) {
    if (prefix->text.empty()) {
      return invalid(absl::StrCat(path, ".file_prefix"),
                     "must not be empty: files named by bare keys could replace credentials.ini "
                     "or another profile's files",
                     *prefix);
    }
    if (prefix->text.size() > 128 || !isOutputFileName(prefix->text)) {
      return invalid(absl::StrCat(path, ".file_prefix"),
                     "must be 1 to 128 characters of A-Z a-z 0-9 . _ - (not starting with .)",
                     *prefix);
    }
    profile.file_prefix = prefix->text;
  }
  return absl::OkStatus();
}

absl::Status Loader::checkOutputNames(const Config& config) const {
  // Names credsync writes itself, and the socket when it lives in the
  // output directory.
  std::vector<std::string> reserved = {kCredentialsIniFile, kControlTokenFile};
  const std::string& socket = config.control.socket_path;
  if (const size_t slash = socket.rfind('/');
      slash != std::string::npos && socket.substr(0, slash) == config.output.directory) {
    reserved.push_back(socket.substr(slash + 1));
  }
  struct Claim {
    size_t index;
    std::string name;  // a file name, or a prefix
    bool is_prefix;
  };
  // In file order (config.profiles has the default moved first), so errors
  // name the later of two clashing profiles.
  std::vector<Claim> claims;
  for (size_t i = 0; i < profiles_.size(); ++i) {
    const std::string& name = profiles_[i].fields.at("name").text;
    const ProfileConfig& profile =
        *absl::c_find_if(config.profiles, [&](const ProfileConfig& p) { return p.name == name; });
    if (profile.kind != ProfileKind::kGeneric) continue;
    const bool is_prefix = profile.format == GenericFormat::kJsonKeys;
    claims.push_back({i, is_prefix ? profile.file_prefix : profile.file, is_prefix});
  }
  const auto key_of = [&](const Claim& claim) {
    return absl::StrCat("profiles[", claim.index, "].", claim.is_prefix ? "file_prefix" : "file");
  };
  const auto raw_of = [&](const Claim& claim) -> const RawValue* {
    const auto& fields = profiles_[claim.index].fields;
    const auto it = fields.find(claim.is_prefix ? "file_prefix" : "file");
    return it == fields.end() ? &fields.at("name") : &it->second;
  };
  // Whether a file of one claim could bear a name of the other.
  const auto overlaps = [](const Claim& a, const Claim& b) {
    if (a.is_prefix && b.is_prefix) {
      return absl::StartsWith(a.name, b.name) || absl::StartsWith(b.name, a.name);
    }
    if (a.is_prefix) return absl::StartsWith(b.name, a.name) && b.name.size() > a.name.size();
    if (b.is_prefix) return absl::StartsWith(a.name, b.name) && a.name.size() > b.name.size();
    return a.name == b.name;
  };
  for (size_t i = 0; i < claims.size(); ++i) {
    for (const std::string& name : reserved) {
      if (overlaps(claims[i], Claim{0, name, false})) {
        return invalid(key_of(claims[i]),
                       absl::StrCat(claims[i].is_prefix ? "files with this prefix" : "this file",
                                    " could replace ", name, ", which credsync writes itself"),
                       *raw_of(claims[i]));
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (overlaps(claims[i], claims[j])) {
        return invalid(key_of(claims[i]),
                       absl::StrCat("its files could have the same names as those of profiles[",
                                    claims[j].index, "] (", key_of(claims[j]), ")"),
                       *raw_of(claims[i]));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Loader::readProfileList(std::vector<ProfileConfig>& profiles) const {
  if (profiles_.empty()) {
    return invalid("profiles", "at least one profile (name, secret_name) is required");
  }
  std::map<std::string, size_t> names;
  std::optional<size_t> marked_default;
  for (size_t i = 0; i < profiles_.size(); ++i) {
    const RawProfile& raw = profiles_[i];
    const std::string path = absl::StrCat("profiles[", i, "]");
    const auto field = [&](const char* name) -> const RawValue* {
      const auto it = raw.fields.find(name);
      return it == raw.fields.end() ? nullptr : &it->second;
    };
    ProfileConfig profile;
    const RawValue* name = field("name");
    if (name == nullptr || name->text.empty()) {
      return invalid(absl::StrCat(path, ".name"),
                     absl::StrCat("must be set (line ", raw.line, ")"));
    }
    if (!isProfileName(name->text)) {
      return invalid(absl::StrCat(path, ".name"),
                     "must be 1 to 64 characters of A-Z a-z 0-9 _ - (not DEFAULT or __proto__)",
                     *name);
    }
    if (const auto [it, inserted] = names.emplace(name->text, i); !inserted) {
      return invalid(absl::StrCat(path, ".name"),
                     absl::StrCat("same name as profiles[", it->second, "]"), *name);
    }
    profile.name = name->text;

    const RawValue* secret_name = field("secret_name");
    if (secret_name == nullptr || secret_name->text.empty()) {
      return secret_name == nullptr
                 ? invalid(absl::StrCat(path, ".secret_name"),
                           absl::StrCat("must not be empty (line ", raw.line, ")"))
                 : invalid(absl::StrCat(path, ".secret_name"), "must not be empty", *secret_name);
    }
    if (secret_name->text.size() > 192 || hasControlOrSpace(secret_name->text)) {
      return invalid(absl::StrCat(path, ".secret_name"),
                     "must be at most 192 characters without spaces or control characters",
                     *secret_name);
    }
    profile.secret_name = secret_name->text;

    if (const RawValue* stage = field("version_stage")) {
      if (stage->text != "ACSCurrent" && stage->text != "ACSPrevious") {
        return invalid(absl::StrCat(path, ".version_stage"), "must be ACSCurrent or ACSPrevious",
                       *stage);
      }
      profile.version_stage = stage->text;
    }
    for (const auto& [key, out] : {std::pair<const char*, bool*>{"default", &profile.is_default},
                                   std::pair<const char*, bool*>{"required", &profile.required}}) {
      const RawValue* flag = field(key);
      if (flag == nullptr) continue;
      const std::optional<bool> value = parseBool(flag->text);
      if (!value.has_value()) {
        return invalid(absl::StrCat(path, ".", key), "must be true or false", *flag);
      }
      *out = *value;
    }
    if (absl::Status status = readProfileKind(raw, path, profile); !status.ok()) return status;
    if (profile.is_default) {
      if (marked_default.has_value()) {
        return invalid(absl::StrCat(path, ".default"),
                       absl::StrCat("only one profile may be the default; profiles[",
                                    *marked_default, "] already is"),
                       *field("default"));
      }
      marked_default = i;
    }
    profiles.push_back(std::move(profile));
  }

  // Generic profiles are not in credentials.ini: a config of only those
  // writes no credentials.ini and has no default profile.
  const auto first_ram = absl::c_find_if(
      profiles, [](const ProfileConfig& p) { return p.kind == ProfileKind::kRamCredentials; });
  if (first_ram == profiles.end()) return absl::OkStatus();
  // Without an explicit default, a profile literally named "default" is the
  // obvious one; otherwise the first RAM credentials profile.
  size_t default_index = static_cast<size_t>(first_ram - profiles.begin());
  if (marked_default.has_value()) {
    default_index = *marked_default;
  } else if (const auto it = names.find("default"); it != names.end()) {
    default_index = it->second;
  }
  // The default profile is also written as [default], so no other profile
  // may take that section.
  if (const auto it = names.find("default"); it != names.end() && it->second != default_index) {
    return invalid(absl::StrCat("profiles[", it->second, "].name"),
                   "\"default\" is reserved for the default profile",
                   profiles_[it->second].fields.at("name"));
  }
  profiles[default_index].is_default = true;
  const auto first = profiles.begin() + static_cast<std::ptrdiff_t>(default_index);
  std::rotate(profiles.begin(), first, first + 1);
  return absl::OkStatus();
}

absl::StatusOr<Config> Loader::build() {
  Config config;
  // Whether any OpenAPI endpoint exists decides whether the identity is
  // required; identity errors are still reported before KMS errors.
  const absl::Status kms_status = readKms(config.kms);
  if (absl::Status status =
          readIdentity(config.identity, !kms_status.ok() || !config.kms.endpoints.empty());
      !status.ok()) {
    return status;
  }
  if (!kms_status.ok()) return kms_status;
  if (absl::Status status = readString("tls.ca_file", config.tls.ca_file); !status.ok()) {
    return status;
  }
  bool insecure = false;
  if (absl::Status status = readBool("tls.insecure_skip_verify", insecure); !status.ok()) {
    return status;
  }
  config.tls.verify = !insecure;
  if (absl::Status status =
          readDuration("http.connect_timeout", absl::Milliseconds(1), config.http.connect_timeout);
      !status.ok()) {
    return status;
  }
  if (absl::Status status =
          readDuration("http.request_timeout", absl::Milliseconds(1), config.http.request_timeout);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = readOutput(config.output); !status.ok()) return status;
  if (absl::Status status = readRefresh(config.refresh); !status.ok()) return status;
  if (absl::Status status = readControl(config.output, config.control); !status.ok()) {
    return status;
  }
  if (const RawValue* raw = find("log.level")) {
    absl::StatusOr<log::Level> level = log::parseLevel(raw->text);
    if (!level.ok()) return invalid("log.level", "must be one of debug, info, warn, error", *raw);
    config.log_level = *level;
  }
  if (absl::Status status = readProfileList(config.profiles); !status.ok()) return status;
  if (absl::Status status = checkOutputNames(config); !status.ok()) return status;
  if (absl::Status status = readHookList(config.profiles, config.hooks); !status.ok()) {
    return status;
  }
  return config;
}

absl::StatusOr<ClientSettings> Loader::buildClientSettings() {
  ClientSettings settings;
  if (absl::Status status = readOutput(settings.output); !status.ok()) return status;
  if (absl::Status status = readControl(settings.output, settings.control); !status.ok()) {
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
  Loader loader(env);
  if (absl::Status status = loader.readText(text); !status.ok()) return asOneLine(status);
  if (absl::Status status = loader.applyOverrides(overrides); !status.ok())
    return asOneLine(status);
  loader.applyEnvironment();
  if (absl::Status status = loader.applyInstanceEnvironment(); !status.ok()) {
    return asOneLine(status);
  }
  if (absl::Status status = loader.applyRegionEnvironment(); !status.ok()) {
    return asOneLine(status);
  }
  absl::StatusOr<Config> config = loader.build();
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
  Loader loader(env);
  if (absl::Status status = loader.readText(*text); !status.ok()) return asOneLine(status);
  loader.applyEnvironment();
  absl::StatusOr<ClientSettings> settings = loader.buildClientSettings();
  if (!settings.ok()) return asOneLine(settings.status());
  return settings;
}

absl::StatusOr<std::unique_ptr<alibaba::ReloadingClientKey>> openInstanceClientKey(
    const KmsInstanceConfig& instance, const Environment& env) {
  alibaba::ClientKeyPasswordSource password;
  password.file = instance.password_file;
  password.env_variable = instance.password_env;
  absl::StatusOr<std::unique_ptr<alibaba::ReloadingClientKey>> key =
      alibaba::ReloadingClientKey::open(instance.client_key_file, password, env, instance.endpoint);
  if (!key.ok()) {
    return asOneLine(absl::Status(
        key.status().code(),
        absl::StrCat("KMS instance ", instance.endpoint, ": ", key.status().message())));
  }
  return key;
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
