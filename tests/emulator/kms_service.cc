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

ApiResult secretValueAnswer(const Secret& secret, const std::string& version_stage,
                            const std::string& version_id) {
  const bool generic = secret.type == kSecretTypeGeneric;
  if (version_stage != "ACSCurrent" && version_stage != "ACSPrevious") {
    return ApiError{400, "InvalidParameter",
                    generic ? "The parameter VersionStage is invalid."
                            : "The parameter VersionStage is invalid: RAMCredentials secrets "
                              "accept ACSCurrent and ACSPrevious."};
  }
  const SecretVersion* chosen = nullptr;
  for (const SecretVersion& version : secret.versions) {
    // KMS ignores VersionId for managed secrets (RAMCredentials).
    const bool match = generic && !version_id.empty()
                           ? version.version_id == version_id
                           : std::find(version.stages.begin(), version.stages.end(),
                                       version_stage) != version.stages.end();
    if (match) chosen = &version;
  }
  if (chosen == nullptr) return notFound();

  Json body;
  body["RequestId"] = requestId();
  body["SecretName"] = secret.name;
  if (generic) {
    // As the API reference's example: no rotation fields, no ExtendedConfig.
    body["SecretType"] = kSecretTypeGeneric;
    body["SecretData"] = chosen->data.reveal();
    body["SecretDataType"] = secret.data_type;
    body["VersionId"] = chosen->version_id;
    body["VersionStages"] = {{"VersionStage", chosen->stages}};
    body["CreateTime"] = formatIso8601(secret.create_time);
    return body;
  }
  Json secret_data;
  secret_data["AccessKeyId"] = chosen->access_key_id;
  secret_data["AccessKeySecret"] = chosen->access_key_secret.reveal();
  secret_data["GenerateTimestamp"] = formatIso8601(chosen->created);
  Json extended;
  extended["SecretSubType"] = "RamUserAccessKey";
  extended["UserName"] = secret.user_name;

  body["SecretType"] = kSecretTypeRamCredentials;
  body["SecretData"] = secret_data.dump();
  body["SecretDataType"] = "text";
  body["VersionId"] = chosen->version_id;
  body["VersionStages"] = {{"VersionStage", chosen->stages}};
  body["CreateTime"] = formatIso8601(secret.create_time);
  body["LastRotationDate"] = formatIso8601(secret.last_rotation);
  body["NextRotationDate"] = formatIso8601(secret.next_rotation);
  body["RotationInterval"] = absl::StrCat(secret.rotation_interval_seconds, "s");
  body["AutomaticRotation"] = "Enabled";
  body["ExtendedConfig"] = extended.dump();
  return body;
}

ApiResult getSecretValue(const ApiRequest& request, World& world, const Principal& caller) {
  auto found = readableSecret(request, world, caller);
  if (auto* error = std::get_if<ApiError>(&found)) return *error;
  return secretValueAnswer(std::get<Secret>(found),
                           request.param("VersionStage").value_or("ACSCurrent"),
                           request.param("VersionId").value_or(""));
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
