// Fuzzes parseAssumeRoleWithOidcResponse, which reads every STS answer. Beyond
// not crashing: a success has the three credentials non-empty and printable
// and came with a 2xx; an error has a documented code and never contains the
// redacted secret.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "sidecar/alibaba/sts_client.h"
#include "tests/fuzz/fuzz_response_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using credsync::fuzz::check;
  const credsync::http::Response response = credsync::fuzz::responseFromInput(data, size);
  const absl::string_view redact[] = {credsync::fuzz::kRedactedSecret};
  const auto session = credsync::alibaba::parseAssumeRoleWithOidcResponse(response, redact);
  if (!session.ok()) {
    credsync::fuzz::checkError(session.status());
    return 0;
  }
  check(response.status >= 200 && response.status <= 299);
  credsync::fuzz::checkSessionCredentials(session->credentials);
  return 0;
}
