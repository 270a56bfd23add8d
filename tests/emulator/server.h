#pragma once

#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "tests/emulator/faults.h"
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
};

// Applies a seed document (the format in tests/emulator/README.md) to the
// world. INVALID_ARGUMENT names the first offending entry.
absl::Status applySeed(const nlohmann::json& seed, World& world);

// The emulator's listener: the APIs on "/" and the admin API under
// "/admin/". Owns its serving thread, and those of the listeners the admin
// API starts (wrong-host HTTPS, ECS metadata).
class EmulatorServer {
 public:
  EmulatorServer(World& world, const OidcIssuer& issuer, ServerOptions options);
  ~EmulatorServer();

  // Binds and starts serving; returns the bound port.
  absl::StatusOr<int> start();
  void stop();

 private:
  void handleApi(const httplib::Request& request, httplib::Response& response);
  void registerAdminRoutes();
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
};

}  // namespace credsync::emulator
