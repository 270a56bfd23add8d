#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "httplib.h"

// Pieces of the HTTP servers that own their sockets and event loops
// (probe_server.cc, sidecar/injector/webhook_server.cc) and use cpp-httplib
// only to parse request heads and write answers.
namespace credsync::server {

// Where a request head ends in `buffer` (just past its blank line, CRLF or
// bare LF as httplib accepts), or npos while it is incomplete.
size_t headEnd(absl::string_view buffer);

// The local or peer address of socket `fd` as httplib wants it for
// REMOTE_ADDR/LOCAL_ADDR; leaves `ip` and `port` unchanged on failure.
void socketAddress(int fd, bool peer, std::string& ip, int& port);

// One request head, already read whole, as httplib parses it; what httplib
// writes goes to `output`. Nothing past the head is ever read through it.
// `fd` is used only for the addresses.
class HeadStream : public httplib::Stream {
 public:
  HeadStream(int fd, absl::string_view head, std::string& output)
      : fd_(fd), head_(head), output_(output) {}

  bool is_readable() const override { return position_ < head_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* data, size_t size) override;
  ssize_t write(const char* data, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  // httplib asks only to refuse descriptors its select() cannot watch; no
  // select() is involved here.
  socket_t socket() const override { return INVALID_SOCKET; }

 private:
  const int fd_;
  const absl::string_view head_;
  std::string& output_;
  size_t position_ = 0;
};

// httplib's request parser and response writer, reached through its
// protected entry point: the listener, the accept loop and the connection
// loop are the caller's.
class HttpCodec : public httplib::Server {
 public:
  using httplib::Server::process_request;
};

}  // namespace credsync::server
