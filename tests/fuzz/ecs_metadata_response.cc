// Fuzzes parseEcsRoleCredentials, which reads every ECS metadata credentials
// answer. Beyond not crashing: a success has the three credentials non-empty
// and printable; an error is UNAVAILABLE and never quotes a credential.
#include <cstddef>
#include <cstdint>

#include "absl/strings/match.h"
#include "sidecar/alibaba/ecs_metadata_client.h"
#include "tests/fuzz/fuzz_response_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using credsync::fuzz::check;
  const credsync::http::Response response = credsync::fuzz::responseFromInput(data, size);
  const auto session = credsync::alibaba::parseEcsRoleCredentials(response);
  if (!session.ok()) {
    check(session.status().code() == absl::StatusCode::kUnavailable);
    check(!absl::StrContains(session.status().message(), credsync::fuzz::kRedactedSecret) ||
          absl::StrContains(session.status().message(), "Code is"));
    return 0;
  }
  credsync::fuzz::checkSessionCredentials(session->credentials);
  return 0;
}
