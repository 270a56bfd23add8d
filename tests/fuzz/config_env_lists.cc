// Fuzzes the two JSON lists the official secrets-manager clients take from
// the environment, cache_client_region_id (KMS regions) and
// cache_client_dkms_config_info (KMS instances), through parseConfig: the
// first input byte picks the variable, the rest is its value. Invariants: a
// Config whose KMS endpoints and instances are all URLs, or INVALID_ARGUMENT
// with one printable line naming the variable it came from; deterministic.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "sidecar/config/config.h"

namespace {

constexpr char kFile[] = "profiles:\n  - {name: app, secret_name: acs/ram/user/app}\n";

void check(bool condition) {
  if (!condition) std::abort();
}

bool isUrl(const std::string& url) {
  return absl::StartsWith(url, "https://") || absl::StartsWith(url, "http://");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace config = credsync::config;
  if (size == 0) return 0;
  const std::string variable =
      (data[0] & 1) != 0 ? "cache_client_dkms_config_info" : "cache_client_region_id";
  const std::string value(reinterpret_cast<const char*>(data) + 1, size - 1);
  const config::Environment env = [&](const std::string& name) -> std::optional<std::string> {
    if (name == variable) return value;
    if (name == "ALIBABA_CLOUD_ROLE_ARN") return "acs:ram::1234567890:role/fuzz";
    if (name == "ALIBABA_CLOUD_OIDC_PROVIDER_ARN") {
      return "acs:ram::1234567890:oidc-provider/ack-rrsa-fuzz";
    }
    if (name == "ALIBABA_CLOUD_OIDC_TOKEN_FILE") return "/var/run/secrets/token";
    return std::nullopt;
  };

  const absl::StatusOr<config::Config> result = config::parseConfig(kFile, env);
  const absl::StatusOr<config::Config> again = config::parseConfig(kFile, env);
  check(result.status() == again.status());
  if (!result.ok()) {
    check(result.status().code() == absl::StatusCode::kInvalidArgument);
    const absl::string_view message = result.status().message();
    check(!message.empty() && message.size() < 4096);
    check(!absl::StrContains(message, '\n') && !absl::StrContains(message, '\r'));
    // Every problem is traced to the variable (an instance list without a
    // KMS endpoint fails on kms.endpoints, which names none).
    check(absl::StrContains(message, variable) || absl::StartsWith(message, "kms.endpoints:"));
    return 0;
  }
  check(!result->kms.endpoints.empty() || !result->kms.instances.empty());
  for (const std::string& endpoint : result->kms.endpoints) check(isUrl(endpoint));
  for (const config::KmsInstanceConfig& instance : result->kms.instances) {
    check(absl::StartsWith(instance.endpoint, "https://"));
    check(!instance.client_key_file.empty());
  }
  return 0;
}
