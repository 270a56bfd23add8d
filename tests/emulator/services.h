#pragma once

#include <string>
#include <variant>

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

// KMS 2016-01-20.
// The GetSecretValue answer for `secret` (already authorized): the version
// with VersionId `version_id` when given (Generic secrets only, as in KMS),
// else the one holding `version_stage` (ACSCurrent or ACSPrevious).
// RAMCredentials answers with the AccessKey JSON and its rotation schedule;
// Generic with the stored SecretData and SecretDataType text|binary. One
// function for every gateway that reads secrets (the shared KMS endpoint,
// and a KMS instance's).
ApiResult secretValueAnswer(const Secret& secret, const std::string& version_stage,
                            const std::string& version_id = "");
ApiResult getSecretValue(const ApiRequest& request, World& world, const Principal& caller);
ApiResult rotateSecret(const ApiRequest& request, World& world, const Principal& caller);

// ECS 2014-05-26: the target service apps call with the managed key.
ApiResult describeRegions(const ApiRequest& request, World& world, const Principal& caller);

}  // namespace credsync::emulator
