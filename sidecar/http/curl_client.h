#pragma once

#include <cstddef>
#include <string>

#include "absl/time/time.h"
#include "sidecar/http/client.h"

namespace credsync::http {

struct CurlClientOptions {
  // PEM bundle of trusted CAs; empty means the system store.
  std::string ca_file;
  // Off only by an explicit setting; callers warn loudly when it is.
  bool verify_tls = true;
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration total_timeout = absl::Seconds(10);
  // Larger bodies fail with RESOURCE_EXHAUSTED instead of growing memory.
  size_t max_response_bytes = 1 << 20;
  std::string user_agent = "credsync";
};

// The production client: libcurl, TLS verified, keep-alive connection reuse,
// HTTP(S)_PROXY / NO_PROXY from the environment honoured.
ClientPtr makeCurlClient(const CurlClientOptions& options);

}  // namespace credsync::http
