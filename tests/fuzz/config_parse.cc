// Fuzzes the config loader (YAML/JSON through yaml-cpp, then validation)
// with a fixed fake environment. Invariants: any input yields a Config or
// INVALID_ARGUMENT with one printable line that never contains the static
// AccessKey secret or token (unless the input itself carries them); a
// Config that loads is complete and consistent; parsing is deterministic.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sidecar/config/config.h"

namespace {

constexpr char kSecret[] = "FuzzSecretValue0123456789";
constexpr char kToken[] = "FuzzSecurityTokenValue0123456789";

void check(bool condition) {
  if (!condition) std::abort();
}

std::optional<std::string> fakeEnvironment(const std::string& name) {
  if (name == "ALIBABA_CLOUD_ROLE_ARN") return "acs:ram::1234567890:role/fuzz";
  if (name == "ALIBABA_CLOUD_OIDC_PROVIDER_ARN") {
    return "acs:ram::1234567890:oidc-provider/ack-rrsa-fuzz";
  }
  if (name == "ALIBABA_CLOUD_OIDC_TOKEN_FILE") return "/var/run/secrets/token";
  if (name == "ALIBABA_CLOUD_STS_REGION") return "cn-hangzhou";
  if (name == "ALIBABA_CLOUD_REGION_ID") return "cn-hangzhou";
  if (name == "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED") return "true";
  if (name == "ALIBABA_CLOUD_ACCESS_KEY_ID") return "LTAI5tFuzzKeyId";
  if (name == "ALIBABA_CLOUD_ACCESS_KEY_SECRET") return kSecret;
  if (name == "ALIBABA_CLOUD_SECURITY_TOKEN") return kToken;
  if (name == "POD_NAME") return "fuzz-pod-0";
  return std::nullopt;
}

bool isUrl(const std::string& url) {
  return absl::StartsWith(url, "https://") || absl::StartsWith(url, "http://");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace config = credsync::config;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const config::Environment env = fakeEnvironment;

  const absl::StatusOr<config::Config> result = config::parseConfig(input, env);
  const absl::StatusOr<config::Config> again = config::parseConfig(input, env);
  check(result.status() == again.status());

  if (!result.ok()) {
    check(result.status().code() == absl::StatusCode::kInvalidArgument);
    const absl::string_view message = result.status().message();
    check(!message.empty());
    check(!absl::StrContains(message, '\n') && !absl::StrContains(message, '\r'));
    if (!absl::StrContains(input, kSecret)) check(!absl::StrContains(message, kSecret));
    if (!absl::StrContains(input, kToken)) check(!absl::StrContains(message, kToken));
    return 0;
  }

  const config::Config& c = *result;
  check(isUrl(c.identity.sts_endpoint));
  check(!c.kms.endpoints.empty());
  for (const std::string& endpoint : c.kms.endpoints) check(isUrl(endpoint));
  check(c.identity.session_duration >= absl::Minutes(15));
  check(c.identity.session_duration <= absl::Hours(12));
  check(c.identity.role_session_name.size() >= 2 && c.identity.role_session_name.size() <= 64);
  if (c.identity.type == config::IdentityType::kOidc) {
    check(!c.identity.role_arn.empty() && !c.identity.oidc_provider_arn.empty() &&
          !c.identity.oidc_token_file.empty());
    check(c.identity.static_access_key_secret.empty());
  } else {
    check(c.identity.static_access_key_secret.reveal() == kSecret);
  }
  check(c.refresh.jitter >= 0 && c.refresh.jitter <= 0.5);
  check(c.refresh.interval >= absl::Minutes(1));
  check(c.refresh.retry_initial_backoff > absl::ZeroDuration());
  check(c.refresh.retry_max_backoff >= c.refresh.retry_initial_backoff);
  check(c.refresh.throttled_max_backoff >= c.refresh.retry_initial_backoff);
  check(c.http.connect_timeout > absl::ZeroDuration());
  check(c.http.request_timeout > absl::ZeroDuration());
  check((c.output.file_mode & ~0644u) == 0 && (c.output.file_mode & 0444u) != 0);
  check(absl::StartsWith(c.output.directory, "/"));

  check(!c.profiles.empty());
  check(c.profiles.front().is_default);
  std::set<std::string> names;
  int defaults = 0;
  for (const config::ProfileConfig& profile : c.profiles) {
    check(names.insert(profile.name).second);
    check(!profile.secret_name.empty());
    check(profile.version_stage == "ACSCurrent" || profile.version_stage == "ACSPrevious");
    defaults += profile.is_default ? 1 : 0;
    if (profile.name == "default") check(profile.is_default);
  }
  check(defaults == 1);
  return 0;
}
