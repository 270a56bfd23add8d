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
  // The API action ("GetSecretValue"), for metrics and logs only; never sent.
  std::string operation;
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
// status is a success of the transport: callers interpret 4xx/5xx, and 3xx,
// since redirects are never followed. Errors:
//   DEADLINE_EXCEEDED   connect or total timeout;
//   UNAVAILABLE         DNS, connect, reset, proxy, TLS handshake or
//                       verification;
//   RESOURCE_EXHAUSTED  the response exceeded the configured cap;
//   INVALID_ARGUMENT    a malformed URL (or a scheme other than http/https),
//                       method or header;
//   FAILED_PRECONDITION local TLS setup that no retry can fix (an unreadable
//                       CA file);
//   INTERNAL            the HTTP library failed in an unexpected way.
// Messages name the host and the failure, never headers, bodies or query
// strings (they may carry tokens). Implementations are thread-safe: any
// number of threads may call send() at once; connections are reused.
class Client {
 public:
  virtual ~Client() = default;
  virtual absl::StatusOr<Response> send(const Request& request) = 0;
};
using ClientPtr = std::unique_ptr<Client>;

}  // namespace credsync::http
