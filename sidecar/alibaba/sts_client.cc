#include "sidecar/alibaba/sts_client.h"

#include <limits>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/alibaba/response_parsing.h"
#include "sidecar/common/crypto.h"

namespace credsync::alibaba {
namespace {

constexpr absl::string_view kAction = "STS AssumeRoleWithOIDC";
// Informational fields are kept for status pages; bound what we keep.
constexpr size_t kMaxInfoFieldBytes = 512;

absl::Status malformed(absl::string_view problem) {
  return internal::malformedAnswer(kAction, problem);
}

// A credential field must be a non-empty string of printable ASCII: it is
// sent back in HTTP headers, where anything else could split a header.
absl::StatusOr<std::string> credentialField(nlohmann::json& credentials, const char* name) {
  // No length bound beyond the body's: STS does not cap the SecurityToken.
  absl::StatusOr<std::string> field = internal::takeCredentialField(
      credentials, "Credentials", name, std::numeric_limits<size_t>::max());
  if (!field.ok()) return malformed(field.status().message());
  return field;
}

// An optional informational string, cleaned of control characters.
std::string infoField(const nlohmann::json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return "";
  const std::string& value = it->get_ref<const std::string&>();
  if (value.size() > kMaxInfoFieldBytes || !internal::isVisibleAscii(value)) return "";
  return value;
}

class StsClientImpl : public StsClient {
 public:
  StsClientImpl(http::Client& http, const TimeSource& time_source, std::string endpoint)
      : http_(http), time_source_(time_source), endpoint_(std::move(endpoint)) {}

  absl::StatusOr<StsSession> assumeRoleWithOidc(const AssumeRoleWithOidcRequest& request) override {
    for (const auto& [value, name] :
         {std::pair<absl::string_view, absl::string_view>{request.role_arn, "RoleArn"},
          {request.oidc_provider_arn, "OIDCProviderArn"},
          {request.role_session_name, "RoleSessionName"},
          {request.oidc_token.reveal(), "OIDCToken"}}) {
      if (value.empty())
        return absl::InvalidArgumentError(absl::StrCat(kAction, ": ", name, " is empty"));
    }
    RpcCall call;
    call.endpoint = endpoint_;
    call.action = "AssumeRoleWithOIDC";
    call.version = "2015-04-01";
    call.method = "POST";
    call.params = {
        {"RoleArn", request.role_arn},
        {"OIDCProviderArn", request.oidc_provider_arn},
        {"OIDCToken", request.oidc_token.reveal()},
        {"RoleSessionName", request.role_session_name},
        {"DurationSeconds", absl::StrCat(absl::ToInt64Seconds(request.duration))},
    };
    if (!request.policy.empty()) call.params["Policy"] = request.policy;

    // Anonymous and in the RPC form the credentials SDKs use: POST with the
    // parameters (the token among them) in the form body, out of URLs that
    // proxies log. Format=JSON comes with the common parameters.
    absl::StatusOr<http::Request> built =
        buildSignedRequest(call, /*credentials=*/nullptr, SignatureScheme::kRpcHmacSha1,
                           time_source_.systemTime(), crypto::randomUuid());
    wipeString(call.params["OIDCToken"]);
    if (!built.ok()) return withContext(built.status(), kAction);

    absl::StatusOr<http::Response> response = http_.send(*built);
    wipeString(built->body);
    if (!response.ok()) return withContext(response.status(), kAction);

    const absl::string_view redact[] = {request.oidc_token.reveal()};
    absl::StatusOr<StsSession> session = parseAssumeRoleWithOidcResponse(*response, redact);
    wipeString(response->body);
    return session;
  }

 private:
  http::Client& http_;
  const TimeSource& time_source_;
  const std::string endpoint_;
};

}  // namespace

absl::StatusOr<StsSession> parseAssumeRoleWithOidcResponse(
    const http::Response& response, absl::Span<const absl::string_view> redact) {
  if (response.status < 200 || response.status > 299) {
    return statusFromErrorResponse(kAction, response.status, response.body, redact);
  }
  absl::StatusOr<nlohmann::json> document = internal::parseJsonAnswer(kAction, response.body);
  if (!document.ok()) return document.status();
  const internal::JsonWiper wiper(*document);
  const auto credentials = document->find("Credentials");
  if (credentials == document->end() || credentials->is_null()) {
    // A 200 that carries an error document: some gateways answer that way.
    if (std::optional<ApiErrorInfo> error =
            parseApiErrorBody(response.body, response.status, redact)) {
      return statusFromApiError(kAction, *error);
    }
    return malformed("Credentials is missing");
  }
  if (!credentials->is_object()) {
    return malformed(
        absl::StrCat("Credentials is ", internal::jsonTypeName(*credentials), ", not an object"));
  }

  StsSession session;
  absl::StatusOr<std::string> access_key_id = credentialField(*credentials, "AccessKeyId");
  if (!access_key_id.ok()) return access_key_id.status();
  absl::StatusOr<std::string> secret = credentialField(*credentials, "AccessKeySecret");
  if (!secret.ok()) return secret.status();
  session.credentials.access_key_secret = SecretString(std::move(*secret));
  absl::StatusOr<std::string> token = credentialField(*credentials, "SecurityToken");
  if (!token.ok()) return token.status();
  session.credentials.security_token = SecretString(std::move(*token));
  session.credentials.access_key_id = std::move(*access_key_id);

  const auto expiration = credentials->find("Expiration");
  if (expiration == credentials->end() || expiration->is_null()) {
    return malformed("Credentials.Expiration is missing");
  }
  if (!expiration->is_string()) {
    return malformed(absl::StrCat("Credentials.Expiration is ", internal::jsonTypeName(*expiration),
                                  ", not a string"));
  }
  std::optional<absl::Time> expires_at =
      internal::parseUtcTimestamp(expiration->get_ref<const std::string&>());
  if (!expires_at) {
    return malformed("Credentials.Expiration is not a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
  }
  session.expiration = *expires_at;

  const auto user = document->find("AssumedRoleUser");
  if (user != document->end() && user->is_object()) {
    session.assumed_role_arn = infoField(*user, "Arn");
  }
  session.request_id = infoField(*document, "RequestId");
  return session;
}

StsClientPtr makeStsClient(http::Client& http, const TimeSource& time_source,
                           std::string endpoint) {
  return std::make_unique<StsClientImpl>(http, time_source, std::move(endpoint));
}

}  // namespace credsync::alibaba
