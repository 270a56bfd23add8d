#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "sidecar/alibaba/request_signer.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"
#include "sidecar/http/client.h"

namespace credsync::alibaba {

// A GetSecretValue answer (KMS 2016-01-20).
struct SecretValue {
  std::string secret_name;
  std::string secret_type;  // "RAMCredentials", "Generic", ...
  SecretString secret_data;
  std::string secret_data_type;  // "text" or "binary"
  std::string version_id;
  std::vector<std::string> version_stages;
  std::optional<absl::Time> create_time;
  std::optional<absl::Time> last_rotation_date;
  std::optional<absl::Time> next_rotation_date;
  std::optional<absl::Duration> rotation_interval;  // "604800s"
  std::string automatic_rotation;
  std::string extended_config;  // a JSON document, as sent
  std::string request_id;
};

// The AccessKey pair inside a RAMCredentials secret's SecretData.
struct RamCredentials {
  std::string access_key_id;
  SecretString access_key_secret;
  std::optional<absl::Time> generate_timestamp;
};

// Strict: SecretType must be RAMCredentials and SecretData a JSON object
// with non-empty string AccessKeyId and AccessKeySecret (GenerateTimestamp
// optional, "YYYY-MM-DDTHH:MM:SSZ"). Anything else is INVALID_ARGUMENT naming
// the field, never quoting SecretData.
absl::StatusOr<RamCredentials> parseRamCredentials(const SecretValue& value);

struct GetSecretValueRequest {
  std::string endpoint;  // URL, "https://kms.cn-hangzhou.aliyuncs.com"
  std::string secret_name;
  std::string version_stage = "ACSCurrent";
};

// KMS 2016-01-20. Thread-safe.
class KmsClient {
 public:
  virtual ~KmsClient() = default;
  // GetSecretValue signed with `credentials` (including an STS security
  // token). Errors as in api_error.h; a 200 answer that is not JSON or lacks
  // SecretName/SecretData/VersionId is UNAVAILABLE naming the problem.
  virtual absl::StatusOr<SecretValue> getSecretValue(const GetSecretValueRequest& request,
                                                     const AccessKeyCredentials& credentials) = 0;
};
using KmsClientPtr = std::unique_ptr<KmsClient>;

// Interprets a GetSecretValue answer exactly as getSecretValue() does
// (exposed for tests and fuzzing): non-2xx through api_error.h; a 2xx must be
// a JSON object of at most 1 MiB with string SecretName, SecretData and
// VersionId, and every other documented field, when present, of its
// documented type and format (dates "YYYY-MM-DDTHH:MM:SSZ", optionally with
// milliseconds, or empty; RotationInterval "<seconds>s"). Problems are
// UNAVAILABLE naming the field, never quoting SecretData. Values in `redact`
// never appear in an error message.
absl::StatusOr<SecretValue> parseGetSecretValueResponse(
    const http::Response& response, absl::Span<const absl::string_view> redact = {});

KmsClientPtr makeKmsClient(http::Client& http, const TimeSource& time_source,
                           SignatureScheme scheme);

}  // namespace credsync::alibaba
