#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/emulator/world.h"

namespace credsync::emulator {

// Which ECS metadata modes the emulated instance accepts.
enum class MetadataMode {
  kBoth,          // the default on ECS: a token is optional on GETs
  kHardenedOnly,  // the instance enforces the hardened mode: GETs need a token
  kNormalOnly,    // the token PUT is refused (an old image, a proxy in the way)
};

// The emulated instance: the RAM role attached to it and its metadata mode.
struct MetadataConfig {
  std::string role_name;  // empty: no role attached
  std::string role_arn;   // a role of the world, whose permissions sessions carry
  MetadataMode mode = MetadataMode::kBoth;
  // Lifetime of the sessions handed out (6 h on ECS); tests shorten it.
  int64_t session_duration_seconds = 21600;
};

// One answer of the metadata service, and how it is counted in
// /admin/counters (pseudo-actions MetadataToken, MetadataRoleName,
// MetadataCredentials).
struct MetadataAnswer {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain";
  std::string action;
  std::string failure;  // empty on success
};

// The ECS instance metadata service's RAM role endpoints, as the official
// credentials SDKs use them:
//   PUT /latest/api/token with X-aliyun-ecs-metadata-token-ttl-seconds
//       (1..21600) -> a token (text);
//   GET /latest/meta-data/ram/security-credentials/ -> the role name (text);
//   GET /latest/meta-data/ram/security-credentials/<role> -> JSON
//       {AccessKeyId, AccessKeySecret, Expiration, SecurityToken,
//        LastUpdated, Code: "Success"}, a real STS session of the world.
// GETs take the token in X-aliyun-ecs-metadata-token. Thread-safe.
class MetadataService {
 public:
  explicit MetadataService(World& world) : world_(world) {}

  void configure(MetadataConfig config);
  MetadataConfig config() const;

  MetadataAnswer putToken(const std::optional<std::string>& ttl_header);
  MetadataAnswer getRoleName(const std::optional<std::string>& token);
  MetadataAnswer getCredentials(const std::string& role_name,
                                const std::optional<std::string>& token);

 private:
  // Empty when the token rules let the GET through, else the failure.
  std::optional<MetadataAnswer> checkToken(const std::optional<std::string>& token,
                                           const std::string& action);

  World& world_;
  mutable absl::Mutex mutex_;
  MetadataConfig config_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, absl::Time> tokens_ ABSL_GUARDED_BY(mutex_);  // token -> expiry
};

}  // namespace credsync::emulator
