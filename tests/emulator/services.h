#pragma once

#include <string>
#include <variant>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/emulator/api_error.h"
#include "tests/emulator/api_request.h"
#include "tests/emulator/oidc_issuer.h"
#include "tests/emulator/world.h"

// The emulated APIs. Each takes the parsed request (and, for signed APIs, the
// principal the authenticator established) and returns the JSON body of a
// 200 answer or the gateway error to send instead.
namespace credsync::emulator {

using Json = nlohmann::ordered_json;
using ApiResult = std::variant<Json, ApiError>;

std::string formatIso8601(absl::Time time);

// STS 2015-04-01, anonymous.
ApiResult assumeRoleWithOidc(const ApiRequest& request, World& world, const OidcIssuer& issuer);

// What GetSecretValue asks for, from either surface: the OpenAPI parameters
// or the KMS instance API's GetSecretValueRequest.
struct SecretValueQuery {
  std::string secret_name;
  std::string version_stage;  // empty: ACSCurrent (unless version_id is given)
  std::string version_id;     // empty: chosen by stage
  bool fetch_extended_config = true;
};

// GetSecretValue's answer fields, independent of the encoding: the OpenAPI
// JSON answer and the instance gateway's protobuf answer are both built from
// this, so the two surfaces cannot drift apart.
struct SecretValue {
  std::string secret_name;
  std::string secret_type;
  std::string secret_data;
  std::string secret_data_type;
  std::string version_id;
  std::vector<std::string> version_stages;
  std::string create_time;
  std::string last_rotation_date;  // empty when the type has no rotation
  std::string next_rotation_date;
  std::string rotation_interval;  // "604800s"
  std::string automatic_rotation;
  std::string extended_config;  // JSON text; empty unless fetch_extended_config
};

// Reads a secret for a caller that may read `readable` (names, "*" for all):
// permission first, as KMS authorizes before it reveals whether a name
// exists, then the version: version_id if given (Forbidden.ResourceNotFound
// if absent, or if version_stage is also given and the version lacks it),
// else the version carrying version_stage. Errors use the OpenAPI codes and
// messages (MissingParameter, Forbidden.NoPermission 403,
// Forbidden.ResourceNotFound 404, InvalidParameter 400 for a stage other than
// ACSCurrent/ACSPrevious); the instance gateway maps them to its own.
std::variant<SecretValue, ApiError> readSecretValue(World& world,
                                                    const std::vector<std::string>& readable,
                                                    const SecretValueQuery& query);

// KMS 2016-01-20.
ApiResult getSecretValue(const ApiRequest& request, World& world, const Principal& caller);
ApiResult rotateSecret(const ApiRequest& request, World& world, const Principal& caller);

// ECS 2014-05-26: the target service apps call with the managed key.
ApiResult describeRegions(const ApiRequest& request, World& world, const Principal& caller);

}  // namespace credsync::emulator
