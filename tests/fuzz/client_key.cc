// Fuzzes ClientKey::fromJson, which reads the console's client-key file
// (JSON with KeyId and a base64 PKCS#12 in PrivateKeyData) before anything
// else runs. Beyond not crashing: a key that loads has a non-empty KeyId and
// signs; an error is one line and never quotes the key data or the password.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "sidecar/alibaba/client_key.h"
#include "tests/fuzz/fuzz_response_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using credsync::fuzz::check;
  // PKCS#12 key derivation costs thousands of hash rounds per try: keep
  // inputs to the size of a real client-key file.
  if (size > 8192) return 0;
  const std::string json(reinterpret_cast<const char*>(data), size);
  // The official fixture's password, so its seed loads.
  const credsync::SecretString password("1234");
  const auto key = credsync::alibaba::ClientKey::fromJson(json, password, "fuzz.json");
  if (!key.ok()) {
    const std::string message(key.status().message());
    check(!absl::StrContains(message, '\n'));
    check(message.size() < 1024);
    check(!absl::StrContains(message, "1234"));
    const size_t data_at = json.find("\"PrivateKeyData\"");
    if (data_at != std::string::npos) {
      // No run of the key data long enough to be key material appears. Key
      // material is base64, so only space-free runs count: every window of
      // 32 bytes of our own fixed texts has a space, and a value that merely
      // repeats one of them ("...: not a JSON object") is not an echo.
      const size_t value_at = json.find('"', data_at + 17);
      if (value_at != std::string::npos && json.size() > value_at + 33) {
        const absl::string_view run = absl::string_view(json).substr(value_at + 1, 32);
        if (!absl::StrContains(run, ' ')) check(!absl::StrContains(message, run));
      }
    }
    return 0;
  }
  check(!key->keyId().empty());
  const auto signature = key->sign("string to sign");
  check(signature.ok() && !signature->empty());
  return 0;
}
