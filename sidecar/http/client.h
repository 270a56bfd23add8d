#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace credsync::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";
  // Absolute URL: scheme, host, optional port, path and query.
  std::string url;
  Headers headers;
  std::string body;
};

struct Response {
  int status = 0;
  // Header names as the server sent them; look them up with header().
  Headers headers;
  std::string body;

  // First header of that name, compared case-insensitively.
  std::optional<std::string> header(absl::string_view name) const;
};

// Sends one HTTP request and returns the whole response. A response with any
// status is a success of the transport: callers interpret 4xx/5xx. Errors:
//   DEADLINE_EXCEEDED   connect or total timeout;
//   UNAVAILABLE         DNS, connect, reset, TLS handshake or verification;
//   RESOURCE_EXHAUSTED  the body exceeded the configured cap;
//   INVALID_ARGUMENT    a malformed URL or request.
// Messages name the host and the failure, never headers or bodies (they may
// carry tokens). Implementations are thread-safe; connections are reused.
class Client {
 public:
  virtual ~Client() = default;
  virtual absl::StatusOr<Response> send(const Request& request) = 0;
};
using ClientPtr = std::unique_ptr<Client>;

}  // namespace credsync::http
