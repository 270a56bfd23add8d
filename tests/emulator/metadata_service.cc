#include "tests/emulator/metadata_service.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/crypto.h"

namespace credsync::emulator {
namespace {

constexpr int64_t kMaxTokenTtlSeconds = 21600;

MetadataAnswer failure(int status, std::string action, std::string code) {
  MetadataAnswer answer;
  answer.status = status;
  answer.body = code;
  answer.action = std::move(action);
  answer.failure = std::move(code);
  return answer;
}

std::string formatTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

}  // namespace

void MetadataService::configure(MetadataConfig config) {
  absl::MutexLock lock(&mutex_);
  config_ = std::move(config);
}

MetadataConfig MetadataService::config() const {
  absl::MutexLock lock(&mutex_);
  return config_;
}

MetadataAnswer MetadataService::putToken(const std::optional<std::string>& ttl_header) {
  const std::string action = "MetadataToken";
  absl::MutexLock lock(&mutex_);
  if (config_.mode == MetadataMode::kNormalOnly) return failure(403, action, "TokenRefused");
  int64_t ttl = 0;
  if (!ttl_header.has_value() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*ttl_header), &ttl) ||
      ttl < 1 || ttl > kMaxTokenTtlSeconds) {
    return failure(400, action, "InvalidTokenTtl");
  }
  const absl::Time now = world_.now();
  // Forget expired tokens so the table stays small.
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    it = it->second <= now ? tokens_.erase(it) : std::next(it);
  }
  std::string token = crypto::base64Encode(crypto::randomBytes(40));
  for (char& c : token) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  tokens_[token] = now + absl::Seconds(ttl);
  world_.recordIssuedSecret("metadata_token", token);
  MetadataAnswer answer;
  answer.body = std::move(token);
  answer.action = action;
  return answer;
}

std::optional<MetadataAnswer> MetadataService::checkToken(const std::optional<std::string>& token,
                                                          const std::string& action) {
  absl::MutexLock lock(&mutex_);
  if (!token.has_value()) {
    if (config_.mode == MetadataMode::kHardenedOnly) return failure(401, action, "TokenRequired");
    return std::nullopt;
  }
  const auto it = tokens_.find(*token);
  if (it == tokens_.end() || it->second <= world_.now()) {
    return failure(401, action, "InvalidToken");
  }
  return std::nullopt;
}

MetadataAnswer MetadataService::getRoleName(const std::optional<std::string>& token) {
  const std::string action = "MetadataRoleName";
  if (auto refused = checkToken(token, action)) return *std::move(refused);
  const MetadataConfig config = this->config();
  if (config.role_name.empty()) return failure(404, action, "RoleNotAttached");
  MetadataAnswer answer;
  answer.body = config.role_name;
  answer.action = action;
  return answer;
}

MetadataAnswer MetadataService::getCredentials(const std::string& role_name,
                                               const std::optional<std::string>& token) {
  const std::string action = "MetadataCredentials";
  if (auto refused = checkToken(token, action)) return *std::move(refused);
  const MetadataConfig config = this->config();
  if (config.role_name.empty() || role_name != config.role_name) {
    return failure(404, action, "RoleNotAttached");
  }
  std::optional<Role> role = world_.findRole(config.role_arn);
  if (!role.has_value()) return failure(500, action, "RoleNotInWorld");
  const absl::Time now = world_.now();
  const Session session =
      world_.issueSession(*role, absl::Seconds(config.session_duration_seconds));
  nlohmann::json body = {
      {"AccessKeyId", session.access_key_id},
      {"AccessKeySecret", session.secret.reveal()},
      {"Expiration", formatTime(session.expiration)},
      {"SecurityToken", session.security_token.reveal()},
      {"LastUpdated", formatTime(now)},
      {"Code", "Success"},
  };
  MetadataAnswer answer;
  answer.body = body.dump();
  answer.content_type = "text/plain";
  answer.action = action;
  return answer;
}

}  // namespace credsync::emulator
