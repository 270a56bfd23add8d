#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "sidecar/http/client.h"

namespace credsync::http {

struct CurlClientOptions {
  // PEM bundle of trusted CAs for the upstream; empty means the system store.
  // An HTTPS proxy, if any, is always verified against the system store.
  std::string ca_file;
  // Off only by an explicit setting; callers warn loudly when it is.
  bool verify_tls = true;
  // DNS, TCP and TLS handshake together. absl::InfiniteDuration() means no
  // limit of our own; any finite value is rounded to at least 1 ms.
  absl::Duration connect_timeout = absl::Seconds(5);
  // The whole exchange, connect included. Same conventions as above.
  absl::Duration total_timeout = absl::Seconds(10);
  // Larger responses (header lines plus body) fail with RESOURCE_EXHAUSTED
  // instead of growing memory.
  size_t max_response_bytes = 1 << 20;
  std::string user_agent = "credsync";
  // Idle easy handles (each keeping its connections alive) kept for reuse;
  // more concurrent callers than this still work, their extra handles are
  // closed after use.
  size_t max_idle_handles = 8;
};

// The production client: libcurl, TLS verified (1.2 or later), keep-alive
// connection reuse through a pool of easy handles, http_proxy / https_proxy /
// no_proxy from the environment honoured, redirects not followed, only http
// and https. Thread-safe.
class CurlClient : public Client {
 public:
  explicit CurlClient(const CurlClientOptions& options);
  ~CurlClient() override;
  CurlClient(const CurlClient&) = delete;
  CurlClient& operator=(const CurlClient&) = delete;

  absl::StatusOr<Response> send(const Request& request) override;

  // New connections opened so far, over all callers (a reused connection
  // does not count; a connection to a proxy does). Lets tests prove reuse.
  uint64_t connectionsOpened() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

ClientPtr makeCurlClient(const CurlClientOptions& options);

}  // namespace credsync::http
