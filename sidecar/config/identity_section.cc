#include "sidecar/config/identity_section.h"

#include <algorithm>
#include <optional>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "sidecar/common/endpoint.h"
#include "sidecar/common/name_rules.h"
#include "sidecar/common/secret.h"
#include "sidecar/config/value_checks.h"

namespace credsync::config::loading {
namespace {

bool isSessionNameChar(char c) { return absl::ascii_isalnum(c) || absl::StrContains(".@_-", c); }

// As credentials-go's OIDC provider: an explicit endpoint, else
// sts[-vpc].<region>.aliyuncs.com for a region, else sts.aliyuncs.com (the
// VPC flag alone does not change the central endpoint). Across sources the
// precedence holds: a region set in the file beats an endpoint that only
// the environment gives. One rule beyond the SDKs': with no STS endpoint or
// STS region from any source, STS follows KMS's region and VPC choice, so a
// VPC-only cluster that names only kms.region does not call the public
// central endpoint, which it cannot reach.
// STS in KMS's region: sts-vpc.<kms.region> when identity.vpc_endpoint says
// so, or, where it is not set, kms.vpc_endpoint. nullopt without a valid
// kms.region (kms_section reports an invalid one).
std::optional<std::string> followKms(const RawConfig& raw_config, const RawValue* identity_vpc,
                                     bool identity_vpc_value) {
  const RawValue* kms_region = raw_config.find("kms.region");
  if (kms_region == nullptr) return std::nullopt;
  const std::string region(absl::StripAsciiWhitespace(kms_region->text));
  if (region.empty() || !isRegion(region)) return std::nullopt;
  bool vpc = identity_vpc_value;
  if (identity_vpc == nullptr && !raw_config.readBool("kms.vpc_endpoint", vpc).ok()) vpc = false;
  return absl::StrCat("https://", vpc ? "sts-vpc." : "sts.", region, ".aliyuncs.com");
}

absl::Status readStsEndpoint(const RawConfig& raw_config, IdentityConfig& identity) {
  const RawValue* endpoint = raw_config.find("identity.sts_endpoint");
  const RawValue* region = raw_config.find("identity.sts_region");
  const RawValue* vpc_raw = raw_config.find("identity.vpc_endpoint");
  bool vpc = false;
  if (absl::Status status = raw_config.readBool("identity.vpc_endpoint", vpc); !status.ok())
    return status;

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
  } else if (std::optional<std::string> followed = followKms(raw_config, vpc_raw, vpc)) {
    identity.sts_endpoint = *followed;
  } else {
    identity.sts_endpoint = "https://sts.aliyuncs.com";
  }
  return absl::OkStatus();
}

// The keys of identity.type ecs_ram_role, validated whatever the type so a
// typo surfaces before the type is switched.
absl::Status readEcsRamRole(const RawConfig& raw_config, IdentityConfig& identity) {
  if (const RawValue* raw = raw_config.find("identity.role_name"); raw != nullptr) {
    const std::string name(absl::StripAsciiWhitespace(raw->text));
    if (!name.empty() && !isValidEcsRoleName(name)) {
      return invalid("identity.role_name", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -", *raw);
    }
    identity.ecs_role_name = name;
  }
  if (const RawValue* raw = raw_config.find("identity.metadata_endpoint"); raw != nullptr) {
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
  if (absl::Status status =
          raw_config.readBool("identity.imdsv1_fallback", identity.ecs_imdsv1_fallback);
      !status.ok()) {
    return status;
  }
  // As the SDKs read it: "true" in any case forces the hardened mode, over
  // whatever the file says.
  std::optional<std::string> v1_disabled = raw_config.envValue("ALIBABA_CLOUD_IMDSV1_DISABLED");
  if (v1_disabled.has_value() && absl::AsciiStrToLower(*v1_disabled) == "true") {
    identity.ecs_imdsv1_fallback = false;
  }
  if (absl::Status status = raw_config.readDuration("identity.metadata_token_ttl", absl::Seconds(1),
                                                    identity.ecs_metadata_token_ttl);
      !status.ok()) {
    return status;
  }
  if (identity.ecs_metadata_token_ttl > absl::Hours(6)) {
    return invalid("identity.metadata_token_ttl", "must be at most 6h",
                   *raw_config.find("identity.metadata_token_ttl"));
  }
  if (identity.ecs_metadata_token_ttl % absl::Seconds(1) != absl::ZeroDuration()) {
    return invalid("identity.metadata_token_ttl", "must be a whole number of seconds",
                   *raw_config.find("identity.metadata_token_ttl"));
  }
  return absl::OkStatus();
}

absl::Status readStatic(const RawConfig& raw_config, IdentityConfig& identity) {
  std::optional<std::string> id = raw_config.envValue("ALIBABA_CLOUD_ACCESS_KEY_ID");
  std::optional<std::string> secret = raw_config.envValue("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
  std::optional<std::string> token = raw_config.envValue("ALIBABA_CLOUD_SECURITY_TOKEN");
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

}  // namespace

absl::Status readIdentity(const RawConfig& raw_config, IdentityConfig& identity,
                          bool identity_needed) {
  if (const RawValue* raw = raw_config.find("identity.type")) {
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
    const RawValue* raw = raw_config.find(arn.key);
    if (raw == nullptr) continue;
    const std::string value(absl::StripAsciiWhitespace(raw->text));
    if (!value.empty() && !isRamArn(value, arn.kind)) {
      return invalid(arn.key, absl::StrCat("must look like ", arn.shape), *raw);
    }
    *arn.out = value;
  }

  if (absl::Status status =
          raw_config.readString("identity.oidc_token_file", identity.oidc_token_file);
      !status.ok()) {
    return status;
  }

  if (const RawValue* raw = raw_config.find("identity.role_session_name"); raw != nullptr) {
    const std::string& name = raw->text;
    if (name.size() < 2 || name.size() > 64 || !absl::c_all_of(name, isSessionNameChar)) {
      return invalid("identity.role_session_name",
                     "must be 2 to 64 characters of A-Z a-z 0-9 . @ _ -", *raw);
    }
    identity.role_session_name = name;
  } else {
    // The STS audit log shows the session name, so name it after the pod.
    std::optional<std::string> pod = raw_config.envValue("POD_NAME");
    if (!pod.has_value()) pod = raw_config.envValue("HOSTNAME");
    std::string name = pod.has_value() ? absl::StrCat("credsync-", *pod) : "credsync";
    for (char& c : name) {
      if (!isSessionNameChar(c)) c = '-';
    }
    if (name.size() > 64) name.resize(64);
    identity.role_session_name = name;
  }

  if (absl::Status status = raw_config.readDuration("identity.session_duration", absl::Minutes(15),
                                                    identity.session_duration);
      !status.ok()) {
    return status;
  }
  if (identity.session_duration > absl::Hours(12)) {
    return invalid("identity.session_duration", "must be at most 12h",
                   *raw_config.find("identity.session_duration"));
  }
  if (identity.session_duration % absl::Seconds(1) != absl::ZeroDuration()) {
    // STS takes DurationSeconds, an integer.
    return invalid("identity.session_duration", "must be a whole number of seconds",
                   *raw_config.find("identity.session_duration"));
  }
  if (absl::Status status = raw_config.readString("identity.policy", identity.policy);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = readStsEndpoint(raw_config, identity); !status.ok()) return status;

  if (absl::Status status = readEcsRamRole(raw_config, identity); !status.ok()) return status;

  // Only KMS instances with client keys: nothing signs with the identity.
  if (!identity_needed) return absl::OkStatus();
  if (identity.type == IdentityType::kStatic) return readStatic(raw_config, identity);
  if (identity.type == IdentityType::kEcsRamRole) {
    // As the SDKs' builders: the variable switches the metadata identity off.
    std::optional<std::string> disabled =
        raw_config.envValue("ALIBABA_CLOUD_ECS_METADATA_DISABLED");
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

}  // namespace credsync::config::loading
