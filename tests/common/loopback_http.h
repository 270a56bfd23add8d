#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace credsync::testing {

// A TCP socket connected to 127.0.0.1:`port` (connect() failing leaves it
// unconnected: `connected` says which), whose reads and writes time out
// after 5 s so that a bug fails a test instead of hanging it.
// `receive_buffer` (bytes), when set, is a small SO_RCVBUF, for a client
// that does not read. The caller closes the descriptor.
inline int connectLoopback(int port, bool& connected, int receive_buffer = 0) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (receive_buffer > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connected = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  return fd;
}

// Takes one HTTP/1.1 response off the front of `buffer`: the head and a
// Content-Length body (none when `head_only`, the answer to a HEAD),
// calling `fill` (appends to `buffer`; false at the end of the stream)
// until it is whole. Empty when the stream ended first.
inline std::string takeHttpResponse(std::string& buffer, const std::function<bool()>& fill,
                                    bool head_only = false) {
  size_t head_end;
  while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return "";
  }
  head_end += 4;
  size_t length = 0;
  const size_t header = buffer.find("Content-Length: ");
  if (header != std::string::npos && header < head_end) {
    const size_t value = header + 16;
    if (!absl::SimpleAtoi(buffer.substr(value, buffer.find("\r\n", value) - value), &length)) {
      return "";
    }
  }
  const size_t total = head_end + (head_only ? 0 : length);
  while (buffer.size() < total) {
    if (!fill()) return "";
  }
  std::string response = buffer.substr(0, total);
  buffer.erase(0, total);
  return response;
}

}  // namespace credsync::testing
