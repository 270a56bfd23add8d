#include "sidecar/server/http_head.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/numbers.h"

namespace credsync::server {

size_t headEnd(absl::string_view buffer) {
  const size_t crlf = buffer.find("\r\n\r\n");
  const size_t lf = buffer.find("\n\n");
  const size_t end = std::min(crlf == absl::string_view::npos ? crlf : crlf + 4,
                              lf == absl::string_view::npos ? lf : lf + 2);
  return end;
}

void socketAddress(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  sockaddr* address = reinterpret_cast<sockaddr*>(&storage);
  if ((peer ? getpeername(fd, address, &length) : getsockname(fd, address, &length)) != 0) return;
  std::array<char, NI_MAXHOST> host{};
  std::array<char, NI_MAXSERV> service{};
  if (getnameinfo(address, length, host.data(), host.size(), service.data(), service.size(),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return;
  }
  int number = 0;
  if (!absl::SimpleAtoi(service.data(), &number)) return;
  ip = host.data();
  port = number;
}

ssize_t HeadStream::read(char* data, size_t size) {
  const size_t count = std::min(size, head_.size() - position_);
  std::memcpy(data, head_.data() + position_, count);
  position_ += count;
  return static_cast<ssize_t>(count);
}

ssize_t HeadStream::write(const char* data, size_t size) {
  output_.append(data, size);
  return static_cast<ssize_t>(size);
}

void HeadStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  socketAddress(fd_, /*peer=*/true, ip, port);
}

void HeadStream::get_local_ip_and_port(std::string& ip, int& port) const {
  socketAddress(fd_, /*peer=*/false, ip, port);
}

}  // namespace credsync::server
