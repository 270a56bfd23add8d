#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "tests/emulator/client_keys.h"
#include "tests/emulator/faults.h"
#include "tests/emulator/kms_instance_gateway.h"
#include "tests/emulator/metadata_service.h"
#include "tests/emulator/oidc_issuer.h"
#include "tests/emulator/world.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace credsync::emulator {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  // Plain HTTP only when asked for; HTTPS needs the two paths below.
  bool plain_http = false;
  std::string cert_path;
  std::string key_path;
  // The wrong-host certificate (Pki::wrong_host_*), served by the listener
  // POST /admin/listeners starts; empty leaves that listener unavailable.
  std::string wrong_host_cert_path;
  std::string wrong_host_key_path;
  // KMS instance gateways (--kms-instance): each gets its own HTTPS listener
  // on `host`, port 0, with the instance PKI's certificate chain.
  struct KmsInstance {
    std::string id;
    std::string cert_chain_path;
    std::string key_path;
  };
  std::vector<KmsInstance> kms_instances;
  // The instance CA file, reported by GET /admin/kms-instances.
  std::string kms_instance_ca_file;
};

// Applies a seed document (the format in tests/emulator/README.md) to the
// world, and its kms_instance_client_keys to `client_keys` (an error if the
// seed has some and `client_keys` is null). INVALID_ARGUMENT names the first
// offending entry.
absl::Status applySeed(const nlohmann::json& seed, World& world,
                       ClientKeyRegistry* client_keys = nullptr);

// The emulator's listener: the APIs on "/" and the admin API under
// "/admin/". Owns its serving thread, and those of the listeners the admin
// API starts (wrong-host HTTPS, ECS metadata), and of the KMS instance
// gateways.
class EmulatorServer {
 public:
  // `client_keys` (which must outlive the server) is what the instance
  // gateways and the client-key admin API use; null disables both, and then
  // options.kms_instances must be empty.
  EmulatorServer(World& world, const OidcIssuer& issuer, ServerOptions options,
                 ClientKeyRegistry* client_keys = nullptr);
  ~EmulatorServer();

  // Binds and starts serving; returns the bound port.
  // Binds and starts serving, the instance gateways too; returns the bound
  // port of the main listener.
  absl::StatusOr<int> start();
  void stop();
  // After start(): each KMS instance id's gateway port.
  std::map<std::string, int> kmsInstancePorts() const;

 private:
  void handleApi(const httplib::Request& request, httplib::Response& response);
  void registerAdminRoutes();
  void registerClientKeyRoutes();
  struct InstanceListener;
  void handleInstance(const InstanceListener& listener, const httplib::Request& request,
                      httplib::Response& response);
  // Remembers a TLS connection's socket so stop() can shut it down.
  void trackConnection(const httplib::Request& request);
  // Starts, once, a second HTTPS listener on options_.host, port 0, serving
  // the same APIs under the wrong-host certificate; returns its port.
  absl::StatusOr<int> startWrongHostListener();

  // Starts, once, the plain-HTTP ECS metadata listener on options_.host,
  // port 0 (the instance metadata service, metadata_service.h); returns its port.
  absl::StatusOr<int> startMetadataListener();

  World& world_;
  MetadataService metadata_{world_};
  const OidcIssuer& issuer_;
  const ServerOptions options_;
  FaultTable faults_;
  Counters counters_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  // Sockets of connections that have carried a request. stop() shuts them
  // down so idle keep-alive connections do not hold the process for their
  // full timeout (clients such as Node's global agent keep them open).
  absl::Mutex connections_mutex_;
  std::set<int> connection_fds_ ABSL_GUARDED_BY(connections_mutex_);
  absl::Mutex wrong_host_mutex_;
  std::unique_ptr<httplib::Server> wrong_host_server_ ABSL_GUARDED_BY(wrong_host_mutex_);
  int wrong_host_port_ ABSL_GUARDED_BY(wrong_host_mutex_) = 0;
  std::thread wrong_host_thread_;
  absl::Mutex metadata_mutex_;
  std::unique_ptr<httplib::Server> metadata_server_ ABSL_GUARDED_BY(metadata_mutex_);
  int metadata_port_ ABSL_GUARDED_BY(metadata_mutex_) = 0;
  std::thread metadata_thread_;
  ClientKeyRegistry* const client_keys_;
  // One per KMS instance: made in the constructor, bound in start(), then
  // only read until stop().
  struct InstanceListener {
    std::unique_ptr<KmsInstanceGateway> gateway;
    std::unique_ptr<httplib::Server> server;
    std::thread thread;
    int port = 0;
  };
  std::vector<std::unique_ptr<InstanceListener>> instances_;
};

}  // namespace credsync::emulator
