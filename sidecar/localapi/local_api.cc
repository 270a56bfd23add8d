#include "sidecar/localapi/local_api.h"

#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "sidecar/common/crypto.h"
#include "sidecar/common/files.h"
#include "sidecar/common/name_rules.h"
#include "sidecar/localapi/documents.h"

namespace credsync::localapi {
namespace {

constexpr size_t kMinPathSecretLength = 32;
constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxSecretBytes = 4096;
constexpr char kJson[] = "application/json";
constexpr char kCredentialsPrefix[] = "/v1/credentials/";

// Headers a proxy adds, or a client sends through one. The SDKs send none of
// them to a loopback URI, so a request carrying one came some other way.
constexpr const char* kForwardingHeaders[] = {
    "Forwarded",           "X-Forwarded-For",
    "X-Forwarded-Host",    "X-Forwarded-Proto",
    "X-Forwarded-Port",    "X-Forwarded-Server",
    "X-Real-IP",           "X-Original-URL",
    "X-Rewrite-URL",       "Via",
    "Proxy-Authorization", "Proxy-Connection",
};

// The KMS Agent's token headers, in the order they are looked at.
constexpr const char* kTokenHeaders[] = {"X-KMS-Token", "X-Vault-Token"};

bool isPathSecretChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
         c == '~';
}

// A file's or variable's value with surrounding whitespace (a trailing
// newline from `echo` or a Secret created from a file) dropped.
absl::StatusOr<SecretString> readValue(absl::string_view file_key, const std::string& file,
                                       absl::string_view env_key, const std::string& variable,
                                       const config::Environment& env) {
  if (!file.empty()) {
    absl::StatusOr<std::string> text = readSmallFile(file, kMaxSecretBytes, file_key);
    if (!text.ok()) return text.status();
    SecretString value(std::string(absl::StripAsciiWhitespace(*text)));
    std::fill(text->begin(), text->end(), '\0');
    return value;
  }
  std::optional<std::string> text = env(variable);
  if (!text || text->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(env_key, ": the variable ", variable, " is unset or empty"));
  }
  SecretString value(std::string(absl::StripAsciiWhitespace(*text)));
  std::fill(text->begin(), text->end(), '\0');
  return value;
}

// Where a secret came from, for its error messages.
std::string origin(absl::string_view file_key, const std::string& file, absl::string_view env_key,
                   const std::string& variable) {
  return file.empty() ? absl::StrCat(env_key, " (", variable, ")")
                      : absl::StrCat(file_key, " (", file, ")");
}

void answerEmpty(httplib::Response& response, int status) {
  response.status = status;
  response.body.clear();
}

void answerJson(httplib::Response& response, int status, const std::string& body) {
  response.status = status;
  response.set_content(body, kJson);
}

bool hasBody(const httplib::Request& request) {
  if (request.has_header("Transfer-Encoding")) return true;
  const std::string length = request.get_header_value("Content-Length");
  return !length.empty() && length != "0";
}

// Step 1 of the checks: whether the request plainly came to us directly
// from a process in the pod.
bool cameDirectly(const httplib::Request& request) {
  for (const char* header : kForwardingHeaders) {
    if (request.has_header(header)) return false;
  }
  if (!absl::StartsWith(request.target, "/")) return false;  // absolute-form or "*"
  const size_t hosts = request.get_header_value_count("Host");
  if (hosts > 1) return false;
  // A DNS-rebinding page reaches a loopback port under its own name; the
  // SDKs send the URI's own host (Python without the port).
  if (hosts == 1 && !isLoopbackHost(authorityHost(request.get_header_value("Host")))) {
    return false;
  }
  return true;
}

}  // namespace

void PublishedStore::onPublished(const std::shared_ptr<const sync::PublishedSet>& published) {
  MutexLock lock(&mutex_);
  latest_ = published;
}

std::shared_ptr<const sync::PublishedSet> PublishedStore::latest() const {
  MutexLock lock(&mutex_);
  return latest_;
}

absl::StatusOr<LocalApiSecrets> readLocalApiSecrets(const config::LocalApiConfig& config,
                                                    const config::Environment& env) {
  LocalApiSecrets secrets;
  absl::StatusOr<SecretString> path_secret =
      readValue("local_api.path_secret_file", config.path_secret_file, "local_api.path_secret_env",
                config.path_secret_env, env);
  if (!path_secret.ok()) return path_secret.status();
  const std::string& path_text = path_secret->reveal();
  if (path_text.size() < kMinPathSecretLength || !absl::c_all_of(path_text, isPathSecretChar)) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin("local_api.path_secret_file", config.path_secret_file, "local_api.path_secret_env",
               config.path_secret_env),
        ": the path secret must be at least ", kMinPathSecretLength,
        " characters of A-Z a-z 0-9 - _ . ~ (128 bits or more; `openssl rand -hex 32` makes one); "
        "it has ",
        path_text.size(), " characters",
        absl::c_all_of(path_text, isPathSecretChar) ? "" : ", some of them not allowed"));
  }
  secrets.path_secret = *std::move(path_secret);
  if (!config.kmsAgentEnabled()) return secrets;
  absl::StatusOr<SecretString> token =
      readValue("local_api.kms_agent_token_file", config.kms_agent_token_file,
                "local_api.kms_agent_token_env", config.kms_agent_token_env, env);
  if (!token.ok()) return token.status();
  const std::string& token_text = token->reveal();
  const bool visible = absl::c_all_of(token_text, [](char c) { return c > ' ' && c < 0x7f; });
  if (token_text.size() < kMinTokenLength || !visible) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin("local_api.kms_agent_token_file", config.kms_agent_token_file,
                            "local_api.kms_agent_token_env", config.kms_agent_token_env),
                     ": the token must be at least ", kMinTokenLength,
                     " visible ASCII characters without spaces; it has ", token_text.size(),
                     " characters", visible ? "" : ", some of them not visible"));
  }
  secrets.kms_agent_token = *std::move(token);
  return secrets;
}

LocalApiHandler::LocalApiHandler(std::vector<config::ProfileConfig> profiles,
                                 LocalApiSecrets secrets, absl::Duration refetch_within,
                                 const PublishedStore& store, const TimeSource& time_source,
                                 RequestObserver observer)
    : profiles_(std::move(profiles)),
      secrets_(std::move(secrets)),
      refetch_within_(refetch_within),
      store_(store),
      time_source_(time_source),
      observer_(std::move(observer)) {}

void LocalApiHandler::handle(const httplib::Request& request, httplib::Response& response) const {
  // The probe server's loop sets it already; the handler stands alone too.
  if (!response.has_header("Cache-Control")) response.set_header("Cache-Control", "no-store");
  std::string api = "refused";
  const int status = answer(request, response, api);
  if (observer_) observer_(api, status);
}

int LocalApiHandler::answer(const httplib::Request& request, httplib::Response& response,
                            std::string& api) const {
  if (!cameDirectly(request)) {
    answerEmpty(response, 403);
    return 403;
  }
  const absl::string_view target = request.target;
  const absl::string_view path = target.substr(0, target.find('?'));

  // /<path secret>/v1/credentials/<profile>. The secret is compared whole
  // and in constant time; its length is no secret (at least 32).
  absl::string_view rest = path.substr(1);
  const absl::string_view first = rest.substr(0, rest.find('/'));
  std::optional<absl::string_view> profile;
  if (crypto::constantTimeEquals(first, secrets_.path_secret.reveal())) {
    rest.remove_prefix(first.size());
    if (absl::ConsumePrefix(&rest, kCredentialsPrefix) && !rest.empty() &&
        !absl::StrContains(rest, '/')) {
      profile = rest;
    }
  }
  std::optional<std::string> secret_id;
  if (!profile && secrets_.kms_agent_token) {
    absl::string_view name = path;
    if (absl::ConsumePrefix(&name, "/v1/") && !name.empty()) {
      // The agent's path form: the rest of the path, slashes included
      // (acs/ram/user/app), raw or percent-encoded; httplib decoded it.
      secret_id = request.path.substr(std::string("/v1/").size());
    } else if (path == "/secretsmanager/get") {
      secret_id = request.get_param_value("secretId");
    }
  }
  if (!profile && !secret_id) {
    answerEmpty(response, 404);
    return 404;
  }
  api = profile ? "credentials_uri" : "kms_agent";
  // The KMS Agent checks its token before the method, as Alibaba's agent
  // (after the AWS Secrets Manager Agent it follows) does: a caller without
  // the token learns nothing more.
  if (secret_id && !hasValidToken(request)) {
    answerJson(response, 403, renderError("Forbidden", "Bad Token"));
    return 403;
  }
  if (request.method != "GET") {
    response.set_header("Allow", "GET");
    answerEmpty(response, 405);
    return 405;
  }
  if (hasBody(request)) {
    answerEmpty(response, 413);
    return 413;
  }
  if (profile) return answerCredentialsUri(request, *profile, response);
  return answerKmsAgent(request, *secret_id, response);
}

const sync::PublishedProfile* LocalApiHandler::publishedOrNotReady(
    const config::ProfileConfig& profile, const std::string& what,
    std::shared_ptr<const sync::PublishedSet>& published, httplib::Response& response) const {
  published = store_.latest();
  const sync::PublishedProfile* current =
      published == nullptr ? nullptr : published->find(profile.name);
  if (current == nullptr) {
    response.set_header("Retry-After", "1");
    answerJson(response, 503,
               renderError("NotReady", absl::StrCat(what, " has not been fetched yet")));
  }
  return current;
}

int LocalApiHandler::answerCredentialsUri(const httplib::Request& request,
                                          absl::string_view profile_name,
                                          httplib::Response& response) const {
  const std::string name(profile_name);
  const config::ProfileConfig* configured = nullptr;
  for (const config::ProfileConfig& profile : profiles_) {
    if (profile.name == name || (name == "default" && profile.is_default)) {
      configured = &profile;
      if (profile.name == name) break;
    }
  }
  if (configured == nullptr || configured->kind != config::ProfileKind::kRamCredentials) {
    answerJson(response, 404,
               renderError("NotFound", configured == nullptr
                                           ? absl::StrCat("no profile named ", name)
                                           : absl::StrCat("profile ", name,
                                                          " is generic: it has no AccessKey")));
    return 404;
  }
  std::shared_ptr<const sync::PublishedSet> published;
  const sync::PublishedProfile* current = publishedOrNotReady(
      *configured, absl::StrCat("profile ", configured->name), published, response);
  if (current == nullptr) return 503;
  const UriClient client = uriClientFromUserAgent(request.get_header_value("User-Agent"));
  answerJson(response, 200,
             renderUriDocument(current->credential,
                               uriExpiration(time_source_.systemTime(), client, refetch_within_)));
  return 200;
}

bool LocalApiHandler::hasValidToken(const httplib::Request& request) const {
  // Any one of the headers may carry it, and exactly one value of it.
  for (const char* header : kTokenHeaders) {
    if (!request.has_header(header)) continue;
    return request.get_header_value_count(header) == 1 &&
           crypto::constantTimeEquals(request.get_header_value(header),
                                      secrets_.kms_agent_token->reveal());
  }
  return false;
}

int LocalApiHandler::answerKmsAgent(const httplib::Request& request, absl::string_view secret_id,
                                    httplib::Response& response) const {
  // The agent's parameters; anything else is a mistake worth naming.
  for (const auto& [name, value] : request.params) {
    if (name != "secretId" && name != "versionId" && name != "versionStage" &&
        name != "refreshNow") {
      answerJson(response, 400,
                 renderError("InvalidParameter", absl::StrCat("unknown parameter: ", name)));
      return 400;
    }
  }
  if (request.has_param("refreshNow")) {
    // Accepted for compatibility and answered from the published files,
    // which credsync keeps current itself (docs/local-api.md).
    const std::string refresh = absl::AsciiStrToLower(request.get_param_value("refreshNow"));
    if (refresh != "true" && refresh != "false" && refresh != "1" && refresh != "0") {
      answerJson(response, 400, renderError("InvalidParameter", "invalid refreshNow value"));
      return 400;
    }
  }
  if (secret_id.empty()) {
    answerJson(response, 400, renderError("MissingParameter", "missing parameter secretId"));
    return 400;
  }
  const config::ProfileConfig* configured = nullptr;
  for (const config::ProfileConfig& profile : profiles_) {
    if (profile.secret_name == secret_id) {
      configured = &profile;
      break;
    }
  }
  if (configured == nullptr) {
    answerJson(response, 404,
               renderError("Forbidden.ResourceNotFound",
                           absl::StrCat("credsync does not manage secret ", secret_id)));
    return 404;
  }
  const std::string version_id = request.get_param_value("versionId");
  const std::string version_stage = request.get_param_value("versionStage");
  if (!version_stage.empty() && version_stage != configured->version_stage) {
    answerJson(response, 404,
               renderError("Forbidden.ResourceNotFound",
                           absl::StrCat("credsync serves secret ", secret_id, " at version stage ",
                                        configured->version_stage, " only")));
    return 404;
  }
  std::shared_ptr<const sync::PublishedSet> published;
  const sync::PublishedProfile* current =
      publishedOrNotReady(*configured, absl::StrCat("secret ", secret_id), published, response);
  if (current == nullptr) return 503;
  if (!version_id.empty() && version_id != current->credential.version_id) {
    answerJson(response, 404,
               renderError("Forbidden.ResourceNotFound",
                           absl::StrCat("credsync holds version ", current->credential.version_id,
                                        " of secret ", secret_id, ", not ", version_id)));
    return 404;
  }
  answerJson(response, 200, renderGetSecretValue(*current));
  return 200;
}

}  // namespace credsync::localapi
