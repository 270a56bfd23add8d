#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sidecar/common/crypto.h"
#include "tests/emulator/services.h"

namespace credsync::emulator {
namespace {

bool mayRead(const Principal& caller, const std::string& secret_name) {
  return std::any_of(caller.secrets.begin(), caller.secrets.end(),
                     [&](const std::string& name) { return name == "*" || name == secret_name; });
}

ApiError noPermission() {
  return {403, "Forbidden.NoPermission",
          "This operation for this resource is forbidden by permission system."};
}

ApiError notFound() { return {404, "Forbidden.ResourceNotFound", "Resource not found"}; }

std::string requestId() { return absl::AsciiStrToUpper(crypto::randomUuid()); }

// Looks the secret up after the permission check, as KMS authorizes before it
// reveals whether a name exists.
std::variant<Secret, ApiError> readableSecret(const ApiRequest& request, World& world,
                                              const Principal& caller) {
  const std::optional<std::string> name = request.param("SecretName");
  if (!name || name->empty()) return missingParameter("SecretName");
  if (!mayRead(caller, *name)) return noPermission();
  std::optional<Secret> secret = world.findSecret(*name);
  if (!secret) return notFound();
  return *std::move(secret);
}

}  // namespace

std::variant<SecretValue, ApiError> readSecretValue(World& world,
                                                    const std::vector<std::string>& readable,
                                                    const SecretValueQuery& query) {
  if (query.secret_name.empty()) return missingParameter("SecretName");
  const bool may_read = std::any_of(readable.begin(), readable.end(), [&](const std::string& name) {
    return name == "*" || name == query.secret_name;
  });
  if (!may_read) return noPermission();
  std::optional<Secret> secret = world.findSecret(query.secret_name);
  if (!secret) return notFound();
  const bool generic = secret->type == kSecretTypeGeneric;
  const std::string& stage = query.version_stage;
  if (!stage.empty() && stage != "ACSCurrent" && stage != "ACSPrevious") {
    return ApiError{400, "InvalidParameter",
                    generic ? "The parameter VersionStage is invalid."
                            : "The parameter VersionStage is invalid: RAMCredentials secrets "
                              "accept ACSCurrent and ACSPrevious."};
  }
  auto carries = [](const SecretVersion& version, const std::string& wanted) {
    return std::find(version.stages.begin(), version.stages.end(), wanted) != version.stages.end();
  };
  // KMS ignores VersionId for managed secrets (RAMCredentials).
  const bool by_id = generic && !query.version_id.empty();
  const SecretVersion* chosen = nullptr;
  for (const SecretVersion& version : secret->versions) {
    if (by_id) {
      if (version.version_id == query.version_id && (stage.empty() || carries(version, stage))) {
        chosen = &version;
      }
    } else if (carries(version, stage.empty() ? "ACSCurrent" : stage)) {
      chosen = &version;
    }
  }
  if (chosen == nullptr) return notFound();

  SecretValue value;
  value.secret_name = secret->name;
  value.version_id = chosen->version_id;
  value.version_stages = chosen->stages;
  value.create_time = formatIso8601(secret->create_time);
  if (generic) {
    // As the API reference's example: no rotation fields, no ExtendedConfig.
    value.secret_type = kSecretTypeGeneric;
    value.secret_data = chosen->data.reveal();
    value.secret_data_type = secret->data_type;
    return value;
  }
  Json secret_data;
  secret_data["AccessKeyId"] = chosen->access_key_id;
  secret_data["AccessKeySecret"] = chosen->access_key_secret.reveal();
  secret_data["GenerateTimestamp"] = formatIso8601(chosen->created);
  value.secret_type = kSecretTypeRamCredentials;
  value.secret_data = secret_data.dump();
  value.secret_data_type = "text";
  value.last_rotation_date = formatIso8601(secret->last_rotation);
  value.next_rotation_date = formatIso8601(secret->next_rotation);
  value.rotation_interval = absl::StrCat(secret->rotation_interval_seconds, "s");
  value.automatic_rotation = "Enabled";
  if (query.fetch_extended_config) {
    Json extended;
    extended["SecretSubType"] = "RamUserAccessKey";
    extended["UserName"] = secret->user_name;
    value.extended_config = extended.dump();
  }
  return value;
}

ApiResult getSecretValue(const ApiRequest& request, World& world, const Principal& caller) {
  SecretValueQuery query;
  query.secret_name = request.param("SecretName").value_or("");
  query.version_stage = request.param("VersionStage").value_or("");
  query.version_id = request.param("VersionId").value_or("");
  // The JSON answer has always carried ExtendedConfig; kept so.
  query.fetch_extended_config = true;
  auto read = readSecretValue(world, caller.secrets, query);
  if (auto* error = std::get_if<ApiError>(&read)) return *error;
  const SecretValue& value = std::get<SecretValue>(read);

  Json body;
  body["RequestId"] = requestId();
  body["SecretName"] = value.secret_name;
  body["SecretType"] = value.secret_type;
  body["SecretData"] = value.secret_data;
  body["SecretDataType"] = value.secret_data_type;
  body["VersionId"] = value.version_id;
  body["VersionStages"] = {{"VersionStage", value.version_stages}};
  body["CreateTime"] = value.create_time;
  if (!value.last_rotation_date.empty()) body["LastRotationDate"] = value.last_rotation_date;
  if (!value.next_rotation_date.empty()) body["NextRotationDate"] = value.next_rotation_date;
  if (!value.rotation_interval.empty()) body["RotationInterval"] = value.rotation_interval;
  if (!value.automatic_rotation.empty()) body["AutomaticRotation"] = value.automatic_rotation;
  if (!value.extended_config.empty()) body["ExtendedConfig"] = value.extended_config;
  return body;
}

ApiResult rotateSecret(const ApiRequest& request, World& world, const Principal& caller) {
  auto found = readableSecret(request, world, caller);
  if (auto* error = std::get_if<ApiError>(&found)) return *error;
  const Secret& secret = std::get<Secret>(found);
  if (!request.param("VersionId") || request.param("VersionId")->empty()) {
    return missingParameter("VersionId");
  }
  auto rotated =
      world.rotateSecret(secret.name, /*revoke_previous=*/false, *request.param("VersionId"));
  if (!rotated.ok()) return notFound();
  Json body;
  body["RequestId"] = requestId();
  body["SecretName"] = secret.name;
  body["VersionId"] = rotated->version_id;
  body["Arn"] =
      absl::StrCat("acs:kms:", world.region(), ":", world.accountId(), ":secret/", secret.name);
  return body;
}

}  // namespace credsync::emulator
