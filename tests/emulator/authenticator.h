#pragma once

#include <variant>

#include "tests/emulator/api_error.h"
#include "tests/emulator/api_request.h"
#include "tests/emulator/world.h"

namespace credsync::emulator {

// Verifies a signed API call the way the POP gateway does, for both schemes
// (HMAC-SHA1 RPC and ACS3-HMAC-SHA256): required parameters, the timestamp
// window, the key's existence and state, the security token of STS keys, the
// signature recomputed from what the client sent, and nonce replay. Returns
// the principal that signed, or the gateway's error.
std::variant<Principal, ApiError> authenticate(const ApiRequest& request, World& world);

}  // namespace credsync::emulator
