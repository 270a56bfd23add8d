#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace credsync::testing {

// The whole content of `path`, byte for byte; empty when it cannot be read
// (the test's own expectations then fail on it).
inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Replaces `path` with exactly `content` (created when missing).
inline void writeFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

}  // namespace credsync::testing
