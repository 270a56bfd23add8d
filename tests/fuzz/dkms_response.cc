// Fuzzes parseDkmsGetSecretValueResponse, which reads every KMS instance
// answer (protobuf GetSecretValueResponse on 2xx, protobuf Error otherwise),
// and feeds what it accepts to parseRamCredentials. Beyond not crashing: a
// success came with a 2xx and has SecretName, SecretData and VersionId;
// errors have a documented code and never contain the redacted secret.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "sidecar/alibaba/dkms_client.h"
#include "tests/fuzz/fuzz_response_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using credsync::fuzz::check;
  const credsync::http::Response response = credsync::fuzz::responseFromInput(data, size);
  const absl::string_view redact[] = {credsync::fuzz::kRedactedSecret};
  const auto value = credsync::alibaba::parseDkmsGetSecretValueResponse(response, redact);
  if (!value.ok()) {
    credsync::fuzz::checkError(value.status());
    return 0;
  }
  check(response.status >= 200 && response.status <= 299);
  check(!value->secret_name.empty() && !value->version_id.empty() && !value->secret_data.empty());
  const auto credentials = credsync::alibaba::parseRamCredentials(*value);
  if (credentials.ok()) {
    check(!credentials->access_key_id.empty() && !credentials->access_key_secret.empty());
  } else {
    check(credentials.status().code() == absl::StatusCode::kInvalidArgument);
  }
  return 0;
}
