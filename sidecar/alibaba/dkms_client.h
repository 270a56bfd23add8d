#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "sidecar/alibaba/client_key_source.h"
#include "sidecar/alibaba/kms_client.h"
#include "sidecar/common/time_source.h"
#include "sidecar/http/client.h"

// GetSecretValue on a KMS instance's own endpoint
// (<kst-…>.cryptoservice.kms.aliyuncs.com) with an application access point's
// client key: the protobuf "dkms-gcs-0.2" API of the official KMS instance
// SDKs (docs/research/kms-instance-api.md). It returns the same SecretValue
// as the OpenAPI KmsClient, so the rest of the sidecar does not care which
// gateway answered.
namespace credsync::alibaba {

struct DkmsGetSecretValueRequest {
  // https URL of the instance, "https://kst-hzz65f176a0ogplgq.cryptoservice.kms.aliyuncs.com"
  // (a port may follow the host; no path).
  std::string endpoint;
  std::string secret_name;
  std::string version_stage = "ACSCurrent";
};

// Thread-safe: any number of threads may call getSecretValue at once.
class DkmsClient {
 public:
  virtual ~DkmsClient() = default;
  // POST / with a signed GetSecretValueRequest (FetchExtendedConfig true, as
  // the official caching clients send). Transport errors come from
  // http::Client with "KMS instance GetSecretValue: " in front; answers are
  // interpreted by parseDkmsGetSecretValueResponse. INVALID_ARGUMENT for an
  // empty secret name or an endpoint that is not an https URL.
  virtual absl::StatusOr<SecretValue> getSecretValue(const DkmsGetSecretValueRequest& request) = 0;
};
using DkmsClientPtr = std::unique_ptr<DkmsClient>;

// Interprets a GetSecretValue answer exactly as getSecretValue() does
// (exposed for tests and fuzzing).
//   2xx: a GetSecretValueResponse protobuf of at most 1 MiB with non-empty
//        SecretName, SecretData and VersionId; identifiers printable ASCII;
//        CreateTime/LastRotationDate/NextRotationDate "YYYY-MM-DDTHH:MM:SSZ"
//        (optionally with milliseconds) or empty; RotationInterval
//        "<seconds>s" or empty. Anything else is UNAVAILABLE naming the
//        field, never quoting SecretData.
//   otherwise: the protobuf Error body through statusFromApiError (action
//        "KMS instance GetSecretValue"): Unauthorized (unknown client key)
//        and SignatureNotMatch UNAUTHENTICATED; Forbidden.ResourceNotFound
//        NOT_FOUND; Forbidden.NoPermission PERMISSION_DENIED;
//        Rejected.Throttling, InternalFailure, ServiceUnavailableTemporary
//        and any 5xx UNAVAILABLE (retryable); RequestTimeTooSkewed and other
//        400s INVALID_ARGUMENT. A body that is no protobuf Error (a proxy's
//        HTML, a POP JSON error) still gives a status by the HTTP code.
// Values in `redact` never appear in an error message.
absl::StatusOr<SecretValue> parseDkmsGetSecretValueResponse(
    const http::Response& response, absl::Span<const absl::string_view> redact = {});

// The protobuf body getSecretValue sends (exposed for tests).
std::string dkmsGetSecretValueRequestBody(const DkmsGetSecretValueRequest& request);

// `http`, `keys` and `time_source` must outlive the client. Each request
// signs with keys.current(), so a replaced client key is used from the next
// request on.
DkmsClientPtr makeDkmsClient(http::Client& http, ClientKeySource& keys,
                             const TimeSource& time_source);

}  // namespace credsync::alibaba
