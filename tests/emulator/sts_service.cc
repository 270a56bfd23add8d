#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sidecar/common/crypto.h"
#include "tests/emulator/services.h"

namespace credsync::emulator {
namespace {

bool validSessionName(const std::string& name) {
  if (name.size() < 2 || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '@' || c == '-' ||
           c == '_';
  });
}

bool admits(const std::vector<std::string>& patterns, const std::string& value) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
    return pattern == "*" || pattern == value;
  });
}

// "acs:ram::123:role/name" -> "name".
std::string roleName(const std::string& arn) {
  const size_t slash = arn.rfind('/');
  return slash == std::string::npos ? arn : arn.substr(slash + 1);
}

// A stable numeric id per role, shaped like RAM's 17-18 digit role ids.
std::string roleId(const std::string& arn) {
  const std::string digest = crypto::sha256(arn);
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(digest[i]);
  return absl::StrCat(300000000000000000ULL + value % 100000000000000000ULL);
}

}  // namespace

ApiResult assumeRoleWithOidc(const ApiRequest& request, World& world, const OidcIssuer& issuer) {
  for (const char* name : {"RoleArn", "OIDCProviderArn", "OIDCToken", "RoleSessionName"}) {
    if (!request.param(name) || request.param(name)->empty()) return missingParameter(name);
  }
  const std::string role_arn = *request.param("RoleArn");
  const std::string provider_arn = *request.param("OIDCProviderArn");
  const std::string token = *request.param("OIDCToken");
  const std::string session_name = *request.param("RoleSessionName");

  if (!validSessionName(session_name)) {
    return ApiError{400, "InvalidParameter.RoleSessionName",
                    "The parameter RoleSessionName is wrongly formed: 2 to 64 characters of "
                    "letters, digits and .@-_ are allowed."};
  }
  if (token.size() < 4 || token.size() > 20000) {
    return ApiError{400, "InvalidParameter.OIDCToken",
                    "The parameter OIDCToken must be 4 to 20000 characters long."};
  }
  if (auto policy = request.param("Policy"); policy && policy->size() > 2048) {
    return ApiError{400, "InvalidParameter.PolicyGrammar",
                    "The parameter Policy must be at most 2048 characters long."};
  }
  if (!absl::StartsWith(provider_arn, "acs:ram::") ||
      !absl::StrContains(provider_arn, ":oidc-provider/")) {
    return ApiError{400, "AuthenticationFail.NoPermission",
                    "Parameter OIDCProviderArn is not valid"};
  }
  const std::optional<Role> role = world.findRole(role_arn);
  if (!role) {
    return ApiError{404, "EntityNotExist.Role",
                    absl::StrCat("The role not exists: ", role_arn, ".")};
  }
  int64_t duration_seconds = 3600;
  if (auto text = request.param("DurationSeconds"); text && !text->empty()) {
    if (!absl::SimpleAtoi(*text, &duration_seconds)) {
      return ApiError{400, "InvalidParameter.DurationSeconds",
                      "The parameter DurationSeconds must be an integer."};
    }
  }
  if (duration_seconds < 900 || duration_seconds > role->max_session_duration_seconds) {
    return ApiError{400, "InvalidParameter.DurationSeconds",
                    absl::StrCat("The Min/Max value of DurationSeconds is 900/",
                                 role->max_session_duration_seconds, " seconds.")};
  }
  const std::optional<OidcProvider> provider = world.findOidcProvider(provider_arn);
  if (!provider) {
    return ApiError{400, "AuthenticationFail.NoPermission", "No such OIDC Provider registered."};
  }
  auto verified = issuer.verify(token, world.now());
  if (auto* problem = std::get_if<TokenProblem>(&verified)) {
    switch (problem->kind) {
      case TokenProblem::Kind::kExpired:
        return ApiError{400, "AuthenticationFail.OIDCToken.Expired",
                        "This JsonWebToken is expired."};
      case TokenProblem::Kind::kNotYetValid:
      case TokenProblem::Kind::kMalformed:
      case TokenProblem::Kind::kBadSignature:
        return ApiError{400, "AuthenticationFail.OIDCToken.Invalid",
                        absl::StrCat("The OIDC token is invalid: ", problem->message)};
    }
  }
  const OidcClaims& claims = std::get<OidcClaims>(verified);
  if (claims.issuer != provider->issuer) {
    return ApiError{400, "AuthenticationFail.OIDCToken.IssuerNotMatch",
                    "The issuer in the OIDC Token doesn't match the OIDC Provider registered."};
  }
  const bool audience_ok =
      std::any_of(claims.audiences.begin(), claims.audiences.end(),
                  [&](const std::string& aud) { return admits(provider->audiences, aud); });
  if (!audience_ok) {
    return ApiError{400, "AuthenticationFail.OIDCToken.AudienceNotMatch", "Invalid audience."};
  }
  if (role->oidc_provider_arn != provider_arn || !admits(role->subjects, claims.subject)) {
    return ApiError{403, "AuthenticationFail.NoPermission", "There is no permission"};
  }

  const Session session = world.issueSession(*role, absl::Seconds(duration_seconds));
  const std::string request_id = absl::AsciiStrToUpper(crypto::randomUuid());
  Json body;
  body["RequestId"] = request_id;
  body["OIDCTokenInfo"] = {
      {"Subject", claims.subject},
      {"Issuer", claims.issuer},
      {"ClientIds", absl::StrJoin(claims.audiences, ",")},
      {"ExpirationTime", formatIso8601(claims.expires)},
      {"IssuanceTime", formatIso8601(claims.issued)},
      {"VerificationInfo", "Success"},
  };
  body["AssumedRoleUser"] = {
      {"AssumedRoleId", absl::StrCat(roleId(role_arn), ":", session_name)},
      {"Arn", absl::StrCat("acs:ram::", world.accountId(), ":role/", roleName(role_arn), "/",
                           session_name)},
  };
  body["Credentials"] = {
      {"SecurityToken", session.security_token.reveal()},
      {"Expiration", formatIso8601(session.expiration)},
      {"AccessKeySecret", session.secret.reveal()},
      {"AccessKeyId", session.access_key_id},
  };
  body["SourceIdentity"] = "";
  return body;
}

}  // namespace credsync::emulator
