// Fuzzes the emulator's KMS instance gateway: arbitrary bytes become a
// request's path, headers and body, answered once as they are and once
// re-signed with a real client key (content-sha256 and Authorization
// recomputed), so the checks after the signature (the protobuf body, the
// secret lookup) are reached too. Nothing may crash, hang or read out of
// bounds, and every answer is a GetSecretValueResponse or an Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "alibaba/dkms/api.pb.h"
#include "sidecar/common/crypto.h"
#include "tests/emulator/client_key_crypto.h"
#include "tests/emulator/client_keys.h"
#include "tests/emulator/kms_instance_gateway.h"
#include "tests/emulator/world.h"

namespace {

class FixedTime : public credsync::TimeSource {
 public:
  // Tue, 24 Nov 2026 17:00:00 GMT: the corpus's Date.
  absl::Time systemTime() const override { return absl::FromUnixSeconds(1795539600); }
  credsync::MonotonicTime monotonicTime() const override { return {}; }
};

struct Fixture {
  FixedTime time;
  credsync::emulator::World world{time, "1", "cn-hangzhou"};
  credsync::emulator::ClientKeyRegistry keys{world, ""};
  credsync::emulator::KmsInstanceGateway gateway{"kst-fuzz", world, keys};
  credsync::SecretString private_key_pem;

  Fixture() {
    world.createSecret("my-secret", "u", 3600, std::nullopt).IgnoreError();
    auto issued = credsync::emulator::generateClientKey("KAAP.fuzz", "pw");
    if (!issued.ok()) std::abort();
    // Designated initialisers: member-wise assignment of a fresh spec trips
    // GCC 12's -Wmaybe-uninitialized at -O3 (a false positive in std::string).
    const credsync::emulator::ClientKeySpec spec{
        .key_id = "KAAP.fuzz",
        .password = "pw",
        .private_key_data = std::string(issued->private_key_data.reveal()),
        .secrets = {"my-secret", "missing"},
        .instances = {},
        .state = credsync::emulator::KeyState::kActive,
    };
    if (!keys.create(spec).ok()) std::abort();
    private_key_pem = issued->private_key_pem;
  }
};

void check(const credsync::emulator::GatewayAnswer& answer) {
  if (answer.status == 200) {
    credsync::alibaba::dkms::GetSecretValueResponse response;
    if (!response.ParseFromString(answer.body)) std::abort();
  } else {
    credsync::alibaba::dkms::Error error;
    if (!error.ParseFromString(answer.body) || error.statuscode() != answer.status) std::abort();
  }
}

}  // namespace

// Input layout: path "\n" header-name ":" value "\n" ... "\n\n" body.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("\n\n");
  const std::string head = input.substr(0, split);
  credsync::emulator::GatewayRequest request;
  request.method = "POST";
  request.body = split == std::string::npos ? "" : input.substr(split + 2);
  std::vector<std::string> lines = absl::StrSplit(head, '\n');
  request.path = lines[0];
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon != std::string::npos) {
      request.headers.emplace(absl::AsciiStrToLower(lines[i].substr(0, colon)),
                              lines[i].substr(colon + 1));
    }
  }
  check(fixture->gateway.handle(request));

  request.headers.erase("content-sha256");
  request.headers.emplace(
      "content-sha256",
      absl::AsciiStrToUpper(credsync::crypto::hexLower(credsync::crypto::sha256(request.body))));
  request.headers.erase("authorization");
  auto signature = credsync::emulator::dkmsSign(
      fixture->private_key_pem, credsync::emulator::dkmsStringToSign("POST", request.headers));
  if (!signature.ok()) std::abort();
  request.headers.emplace("authorization", "Bearer " + *signature);
  check(fixture->gateway.handle(request));
  return 0;
}
