#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sidecar/alibaba/sts_client.h"
#include "sidecar/http/client.h"

namespace credsync::alibaba {

struct EcsMetadataOptions {
  // "http://100.100.100.200" on ECS; the emulator's listener in tests.
  std::string endpoint = "http://100.100.100.200";
  // The instance's RAM role; empty means discover it from the metadata.
  std::string role_name;
  // When the hardened-mode token PUT fails, retry without a token (the
  // normal mode, "IMDSv1"). The official SDKs allow this unless
  // disableIMDSv1 / ALIBABA_CLOUD_IMDSV1_DISABLED is set.
  bool imdsv1_fallback = true;
  // X-aliyun-ecs-metadata-token-ttl-seconds: 1 s to 6 h (the SDKs ask for 6 h).
  absl::Duration token_ttl = absl::Hours(6);
};

// The ECS instance metadata service's RAM role credentials
// (/latest/meta-data/ram/security-credentials/<role>), fetched as the
// official credentials SDKs fetch them: a metadata token first (PUT
// /latest/api/token), then GETs carrying it. Thread-safe.
class EcsMetadataClient {
 public:
  virtual ~EcsMetadataClient() = default;
  // Gets a token, discovers the role name when none is configured, and
  // fetches the role's STS session. Errors: the token PUT failing without a
  // fallback allowed is UNAVAILABLE naming the hardened mode; non-200 answers
  // are UNAVAILABLE (404 for an unknown role is NOT_FOUND); a malformed
  // answer or Code other than "Success" is UNAVAILABLE naming the problem.
  // Messages never carry tokens, keys or bodies.
  virtual absl::StatusOr<StsSession> fetchRoleCredentials() = 0;
};
using EcsMetadataClientPtr = std::unique_ptr<EcsMetadataClient>;

// Interprets a credentials answer (exposed for tests and fuzzing): JSON with
// Code "Success", non-empty printable AccessKeyId, AccessKeySecret and
// SecurityToken, and Expiration "YYYY-MM-DDTHH:MM:SSZ".
absl::StatusOr<StsSession> parseEcsRoleCredentials(const http::Response& response);

EcsMetadataClientPtr makeEcsMetadataClient(http::Client& http, EcsMetadataOptions options);

}  // namespace credsync::alibaba
