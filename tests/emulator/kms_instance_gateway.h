#pragma once

#include <map>
#include <string>

#include "tests/emulator/client_keys.h"
#include "tests/emulator/world.h"

namespace credsync::emulator {

// A request as the instance gateway's listener received it.
struct GatewayRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> headers;  // names lowercased
  std::string body;
};

// The answer: HTTP status and a protobuf body (GetSecretValueResponse, or
// Error for 4xx/5xx), with the error code for logs and counters.
struct GatewayAnswer {
  int status = 200;
  std::string body;
  std::string code;  // empty on success
};

// The largest body the gateway reads; larger is 413 (research §6).
inline constexpr size_t kGatewayMaxBodyBytes = 3 * 1024 * 1024;
// What x-kms-apiversion must say.
inline constexpr char kDkmsApiVersion[] = "dkms-gcs-0.2";

// One KMS instance's gateway ("dedicated KMS", API dkms-gcs-0.2): checks a
// GetSecretValue request's headers and client-key signature the way the
// official SDKs' counterpart must (docs/research/kms-instance-api.md §2, §3,
// §6, §12) and answers from the world's secrets through readSecretValue, the
// function the OpenAPI surface uses too. Pure request -> answer, no I/O, so
// the checks are unit-testable; the listener, faults and counters are the
// server's. Thread-safe (reads the world and the registry under their locks).
class KmsInstanceGateway {
 public:
  KmsInstanceGateway(std::string instance_id, World& world, const ClientKeyRegistry& keys);

  const std::string& instanceId() const { return instance_id_; }
  GatewayAnswer handle(const GatewayRequest& request) const;

  // A protobuf Error answer: StatusCode = status, a fresh RequestId.
  static GatewayAnswer error(int status, const std::string& code, const std::string& message);

 private:
  const std::string instance_id_;
  World& world_;
  const ClientKeyRegistry& keys_;
};

}  // namespace credsync::emulator
