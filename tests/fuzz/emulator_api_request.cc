// Fuzzes the emulator's request intake: arbitrary bytes become a request
// target, headers and body, which are parsed and then authenticated against
// a small world. Neither step may crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_split.h"
#include "tests/emulator/api_request.h"
#include "tests/emulator/authenticator.h"
#include "tests/emulator/world.h"

namespace {

class FixedTime : public credsync::TimeSource {
 public:
  absl::Time systemTime() const override { return absl::FromUnixSeconds(1767225600); }
  credsync::MonotonicTime monotonicTime() const override { return {}; }
};

}  // namespace

// Input layout: target "\n" header-name ":" value "\n" ... "\n\n" body.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static FixedTime time;
  static credsync::emulator::World* world = [] {
    auto* w = new credsync::emulator::World(time, "1", "cn-hangzhou");
    w->addAccessKey("LTAI5tFUZZKEY", "fuzzsecret", {"*"});
    return w;
  }();
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("\n\n");
  const std::string head = input.substr(0, split);
  const std::string body = split == std::string::npos ? "" : input.substr(split + 2);
  std::vector<std::string> lines = absl::StrSplit(head, '\n');
  std::vector<std::pair<std::string, std::string>> headers;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon != std::string::npos) {
      headers.emplace_back(lines[i].substr(0, colon), lines[i].substr(colon + 1));
    }
  }
  auto request = credsync::emulator::parseApiRequest("POST", lines[0], headers, body);
  if (request.ok()) credsync::emulator::authenticate(*request, *world);
  return 0;
}
