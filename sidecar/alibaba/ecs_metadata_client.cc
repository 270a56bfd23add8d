#include "sidecar/alibaba/ecs_metadata_client.h"

#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sidecar/alibaba/response_parsing.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/name_rules.h"
#include "sidecar/common/secret.h"

namespace credsync::alibaba {
namespace {

constexpr absl::string_view kAction = "ECS metadata RAM role credentials";
constexpr char kTokenPath[] = "/latest/api/token";
constexpr char kCredentialsPath[] = "/latest/meta-data/ram/security-credentials/";
// The header names the official SDKs send (HTTP header names are
// case-insensitive; the SDKs write them in lower case).
constexpr char kTokenTtlHeader[] = "X-aliyun-ecs-metadata-token-ttl-seconds";
constexpr char kTokenHeader[] = "X-aliyun-ecs-metadata-token";
// Metadata tokens are a few dozen characters; bound what is accepted.
constexpr size_t kMaxTokenBytes = 4096;

absl::Status malformed(absl::string_view problem) {
  return internal::malformedAnswer(kAction, problem);
}

// A non-200 answer from the metadata service, named by path, never by body.
absl::Status httpFailure(absl::string_view what, int status) {
  const std::string message = absl::StrCat("ECS metadata: ", what, ": HTTP ", status);
  if (status == 404) return absl::NotFoundError(message);
  return absl::UnavailableError(message);
}

class EcsMetadataClientImpl : public EcsMetadataClient {
 public:
  EcsMetadataClientImpl(http::Client& http, EcsMetadataOptions options)
      : http_(http), options_(std::move(options)) {}

  absl::StatusOr<StsSession> fetchRoleCredentials() override {
    // A token per fetch, as the SDKs do: fetches are hours apart, and a
    // cached token could outlive a metadata-service restart.
    absl::StatusOr<std::optional<SecretString>> token = metadataToken();
    if (!token.ok()) return token.status();
    std::string role = options_.role_name;
    if (role.empty()) {
      absl::StatusOr<std::string> discovered = discoverRoleName(*token);
      if (!discovered.ok()) return discovered.status();
      role = *std::move(discovered);
    }
    http::Request request = get(absl::StrCat(kCredentialsPath, role), *token);
    request.operation = "EcsMetadataCredentials";
    absl::StatusOr<http::Response> response = http_.send(request);
    if (!response.ok()) {
      return absl::Status(response.status().code(),
                          absl::StrCat("ECS metadata: credentials of role ", role, ": ",
                                       response.status().message()));
    }
    if (response->status != 200) {
      wipeString(response->body);
      return httpFailure(absl::StrCat("credentials of role ", role,
                                      response->status == 404 ? " (is the role attached?)" : ""),
                         response->status);
    }
    absl::StatusOr<StsSession> session = parseEcsRoleCredentials(*response);
    wipeString(response->body);
    if (session.ok()) session->assumed_role_arn = role;
    return session;
  }

 private:
  // The hardened mode's token, or nullopt to go on in the normal mode.
  absl::StatusOr<std::optional<SecretString>> metadataToken() {
    http::Request request;
    request.method = "PUT";
    request.url = absl::StrCat(options_.endpoint, kTokenPath);
    request.headers.emplace_back(kTokenTtlHeader,
                                 absl::StrCat(absl::ToInt64Seconds(options_.token_ttl)));
    request.operation = "EcsMetadataToken";
    absl::Status problem;
    absl::StatusOr<http::Response> response = http_.send(request);
    if (!response.ok()) {
      problem = response.status();
    } else if (response->status != 200) {
      problem = absl::UnavailableError(absl::StrCat("HTTP ", response->status));
    } else {
      const absl::string_view body = absl::StripAsciiWhitespace(response->body);
      if (body.empty() || body.size() > kMaxTokenBytes || !internal::isVisibleAscii(body)) {
        problem = absl::UnavailableError("the answer is not a token");
      } else {
        SecretString token{std::string(body)};
        wipeString(response->body);
        return std::optional<SecretString>(std::move(token));
      }
    }
    if (response.ok()) wipeString(response->body);
    if (!options_.imdsv1_fallback) {
      return absl::UnavailableError(absl::StrCat(
          "ECS metadata: hardened mode: the token request (PUT ", kTokenPath,
          ") failed: ", problem.message(),
          "; the normal mode without a token is not allowed (identity.imdsv1_fallback false or "
          "ALIBABA_CLOUD_IMDSV1_DISABLED=true)"));
    }
    // A degraded mode is never silent.
    log::warn("ECS metadata token request failed; falling back to the normal mode (no token)",
              {{"error", problem}, {"endpoint", options_.endpoint}});
    return std::optional<SecretString>();
  }

  absl::StatusOr<std::string> discoverRoleName(const std::optional<SecretString>& token) {
    http::Request request = get(kCredentialsPath, token);
    request.operation = "EcsMetadataRoleName";
    absl::StatusOr<http::Response> response = http_.send(request);
    if (!response.ok()) {
      return absl::Status(response.status().code(),
                          absl::StrCat("ECS metadata: role name: ", response.status().message()));
    }
    if (response->status != 200) {
      return httpFailure(
          absl::StrCat("role name",
                       response->status == 404 ? " (no RAM role attached to the instance?)" : ""),
          response->status);
    }
    const std::string name(absl::StripAsciiWhitespace(response->body));
    if (!isValidEcsRoleName(name)) {
      return malformed("the role name is not 1 to 64 of A-Z a-z 0-9 . _ -");
    }
    return name;
  }

  http::Request get(absl::string_view path, const std::optional<SecretString>& token) const {
    http::Request request;
    request.url = absl::StrCat(options_.endpoint, path);
    if (token.has_value()) request.headers.emplace_back(kTokenHeader, token->reveal());
    return request;
  }

  http::Client& http_;
  const EcsMetadataOptions options_;
};

}  // namespace

absl::StatusOr<StsSession> parseEcsRoleCredentials(const http::Response& response) {
  absl::StatusOr<nlohmann::json> document = internal::parseJsonAnswer(kAction, response.body);
  if (!document.ok()) return document.status();
  const internal::JsonWiper wiper(*document);
  const auto code = document->find("Code");
  if (code == document->end() || !code->is_string()) return malformed("Code is missing");
  const std::string& code_text = code->get_ref<const std::string&>();
  if (code_text != "Success") {
    return malformed(
        absl::StrCat("Code is ", code_text.size() <= 64 && internal::isVisibleAscii(code_text)
                                     ? absl::StrCat("\"", code_text, "\"")
                                     : std::string("not \"Success\"")));
  }
  StsSession session;
  const size_t unbounded = std::numeric_limits<size_t>::max();
  absl::StatusOr<std::string> id =
      internal::takeCredentialField(*document, "answer", "AccessKeyId", unbounded);
  if (!id.ok()) return malformed(id.status().message());
  absl::StatusOr<std::string> secret =
      internal::takeCredentialField(*document, "answer", "AccessKeySecret", unbounded);
  if (!secret.ok()) return malformed(secret.status().message());
  session.credentials.access_key_secret = SecretString(std::move(*secret));
  absl::StatusOr<std::string> token =
      internal::takeCredentialField(*document, "answer", "SecurityToken", unbounded);
  if (!token.ok()) return malformed(token.status().message());
  session.credentials.security_token = SecretString(std::move(*token));
  session.credentials.access_key_id = std::move(*id);

  const auto expiration = document->find("Expiration");
  if (expiration == document->end() || !expiration->is_string()) {
    return malformed("answer.Expiration is missing or not a string");
  }
  std::optional<absl::Time> expires_at =
      internal::parseUtcTimestamp(expiration->get_ref<const std::string&>());
  if (!expires_at) {
    return malformed("answer.Expiration is not a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
  }
  session.expiration = *expires_at;
  return session;
}

EcsMetadataClientPtr makeEcsMetadataClient(http::Client& http, EcsMetadataOptions options) {
  return std::make_unique<EcsMetadataClientImpl>(http, std::move(options));
}

}  // namespace credsync::alibaba
