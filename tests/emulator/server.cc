#include "tests/emulator/server.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "httplib.h"
#include "sidecar/common/crypto.h"
#include "sidecar/common/logging.h"
#include "tests/emulator/authenticator.h"
#include "tests/emulator/pki.h"
#include "tests/emulator/services.h"

namespace credsync::emulator {
namespace {

// Serves `server` (bound already) on a thread of its own, and returns once it
// is running: httplib's stop() does nothing until listen_after_bind() has
// marked the server running, so a stop() in that window (a SIGTERM right
// after the start) would leave the thread listening for ever and stop()'s
// join waiting on it. Bounded, in case the listen loop ends at once.
std::thread serveBound(httplib::Server* server) {
  std::thread thread([server] { server->listen_after_bind(); });
  for (int i = 0; i < 5000 && !server->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return thread;
}

}  // namespace

namespace {

constexpr char kJsonContentType[] = "application/json;charset=utf-8";

// Where each action lives: its product, API version, gateway host and whether
// the gateway checks a signature.
struct ActionSpec {
  std::string product;
  std::string version;
  bool signed_call;
};

const ActionSpec* findAction(const std::string& action) {
  static const std::map<std::string, ActionSpec> kActions = {
      {"AssumeRoleWithOIDC", {"Sts", "2015-04-01", false}},
      {"GetSecretValue", {"Kms", "2016-01-20", true}},
      {"RotateSecret", {"Kms", "2016-01-20", true}},
      {"DescribeRegions", {"Ecs", "2014-05-26", true}},
  };
  auto it = kActions.find(action);
  return it == kActions.end() ? nullptr : &it->second;
}

std::string hostIdFor(const std::string& product, const World& world) {
  if (product == "Sts") return "sts.aliyuncs.com";
  if (product == "Kms") return absl::StrCat("kms.", world.region(), ".aliyuncs.com");
  return "ecs.aliyuncs.com";
}

Json errorBody(const ApiError& error, const std::string& product, const World& world) {
  const std::string request_id = absl::AsciiStrToUpper(crypto::randomUuid());
  Json body;
  body["RequestId"] = request_id;
  body["HostId"] = hostIdFor(product, world);
  body["Code"] = error.code;
  body["Message"] = error.message;
  body["Recommend"] = absl::StrCat("https://api.aliyun.com/troubleshoot?q=", error.code,
                                   "&product=", product, "&requestId=", request_id);
  return body;
}

// Drops the connection with a TCP reset and no answer. httplib exposes the
// TLS session, so its socket is reachable; dup2 swaps /dev/null in under the
// same descriptor, so httplib's own later writes and close stay harmless.
bool resetConnection(const httplib::Request& request) {
  if (request.ssl == nullptr) return false;
  const int fd = SSL_get_fd(request.ssl);
  if (fd < 0) return false;
  const linger abort_on_close{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return false;
  dup2(devnull, fd);
  close(devnull);
  return true;
}

// Sends the first half of body while promising all of it, then closes: the
// client sees a body cut off mid-transfer.
void sendTruncated(httplib::Response& response, std::string body,
                   const char* content_type = kJsonContentType) {
  const size_t full = body.size();
  auto shared = std::make_shared<std::string>(std::move(body));
  response.set_content_provider(full, content_type,
                                [shared](size_t, size_t, httplib::DataSink& sink) {
                                  sink.write(shared->data(), shared->size() / 2);
                                  return false;  // abort: the rest never comes
                                });
}

// The generated body of a `huge_bytes` fault: a JSON object of exactly
// `size` bytes, {"RequestId":"HUGE-BODY","Padding":"xxx…"}, made chunk by
// chunk so the emulator never holds it.
class HugeBody {
 public:
  explicit HugeBody(size_t size) : size_(std::max(size, kPrefix.size() + kSuffix.size())) {}
  size_t size() const { return size_; }
  // Writes the bytes from `offset` on, at most kChunkBytes; false once the
  // client has gone (it stopped reading at its own cap).
  bool writeFrom(size_t offset, httplib::DataSink& sink) const {
    std::string chunk;
    const size_t end = std::min(size_, offset + kChunkBytes);
    chunk.reserve(end - offset);
    for (size_t i = offset; i < end; ++i) {
      if (i < kPrefix.size()) {
        chunk.push_back(kPrefix[i]);
      } else if (i >= size_ - kSuffix.size()) {
        chunk.push_back(kSuffix[i - (size_ - kSuffix.size())]);
      } else {
        chunk.push_back('x');
      }
    }
    return sink.write(chunk.data(), chunk.size());
  }

 private:
  static constexpr absl::string_view kPrefix = R"({"RequestId":"HUGE-BODY","Padding":")";
  static constexpr absl::string_view kSuffix = R"("})";
  static constexpr size_t kChunkBytes = 64 * 1024;
  const size_t size_;
};

// Answers with a `body` fault's chosen bytes or generated huge document.
void sendInjectedBody(httplib::Response& response, const Fault& fault) {
  response.status = fault.status;
  if (fault.huge_bytes > 0) {
    auto huge = std::make_shared<HugeBody>(static_cast<size_t>(fault.huge_bytes));
    if (fault.chunked) {
      response.set_chunked_content_provider(kJsonContentType,
                                            [huge](size_t offset, httplib::DataSink& sink) {
                                              if (offset >= huge->size()) {
                                                sink.done();
                                                return true;
                                              }
                                              return huge->writeFrom(offset, sink);
                                            });
    } else {
      response.set_content_provider(huge->size(), kJsonContentType,
                                    [huge](size_t offset, size_t, httplib::DataSink& sink) {
                                      return huge->writeFrom(offset, sink);
                                    });
    }
    return;
  }
  if (fault.chunked) {
    auto body = std::make_shared<std::string>(fault.body);
    response.set_chunked_content_provider(
        kJsonContentType, [body](size_t offset, httplib::DataSink& sink) {
          if (offset < body->size()) {
            if (!sink.write(body->data() + offset, body->size() - offset)) {
              return false;
            }
          }
          sink.done();
          return true;
        });
    return;
  }
  response.set_content(fault.body, kJsonContentType);
}

void sendJson(httplib::Response& response, int status, const Json& body) {
  response.status = status;
  response.set_content(body.dump(), kJsonContentType);
}

void sendAdminError(httplib::Response& response, int status, absl::string_view message) {
  sendJson(response, status, Json{{"error", std::string(message)}});
}

absl::StatusOr<nlohmann::json> parseAdminBody(const httplib::Request& request) {
  if (request.body.empty()) return nlohmann::json::object();
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return absl::InvalidArgumentError("the request body must be a JSON object");
  }
  return body;
}

// Reads an optional string field; INVALID_ARGUMENT if present with another type.
absl::Status readString(const nlohmann::json& object, const char* key, std::string* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return absl::InvalidArgumentError(absl::StrCat(key, " must be a string"));
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status readStrings(const nlohmann::json& object, const char* key,
                         std::vector<std::string>* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(key, " must be an array of strings"));
  }
  out->clear();
  for (const auto& item : *it) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(key, " must be an array of strings"));
    }
    out->push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status readInteger(const nlohmann::json& object, const char* key, int64_t* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(key, " must be an integer"));
  }
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

absl::Status requireNonEmpty(const std::string& value, const char* key) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(key, " is required"));
  return absl::OkStatus();
}

absl::StatusOr<OidcProvider> parseProvider(const nlohmann::json& object) {
  OidcProvider provider;
  provider.audiences = {"sts.aliyuncs.com"};
  for (absl::Status status :
       {readString(object, "arn", &provider.arn), readString(object, "issuer", &provider.issuer),
        readStrings(object, "audiences", &provider.audiences), requireNonEmpty(provider.arn, "arn"),
        requireNonEmpty(provider.issuer, "issuer")}) {
    if (!status.ok()) return status;
  }
  return provider;
}

absl::StatusOr<Role> parseRole(const nlohmann::json& object) {
  Role role;
  for (absl::Status status :
       {readString(object, "arn", &role.arn),
        readString(object, "oidc_provider_arn", &role.oidc_provider_arn),
        readStrings(object, "subjects", &role.subjects),
        readStrings(object, "secrets", &role.secrets),
        readInteger(object, "max_session_duration_seconds", &role.max_session_duration_seconds),
        requireNonEmpty(role.arn, "arn")}) {
    if (!status.ok()) return status;
  }
  return role;
}

struct KeySpec {
  std::string id;
  std::string secret;
  std::vector<std::string> secrets;
};

absl::StatusOr<KeySpec> parseKey(const nlohmann::json& object) {
  KeySpec key;
  for (absl::Status status : {readString(object, "access_key_id", &key.id),
                              readString(object, "access_key_secret", &key.secret),
                              readStrings(object, "secrets", &key.secrets)}) {
    if (!status.ok()) return status;
  }
  return key;
}

// {"name", "type": "Generic", "data", "data_type": "text"|"binary", "version_id"}.
absl::StatusOr<SecretVersion> createGenericSecretFrom(const nlohmann::json& object, World& world,
                                                      const std::string& name) {
  std::string data;
  std::string data_type = "text";
  std::string version_id;
  for (absl::Status status :
       {readString(object, "data", &data), readString(object, "data_type", &data_type),
        readString(object, "version_id", &version_id)}) {
    if (!status.ok()) return status;
  }
  if (object.find("data") == object.end()) return absl::InvalidArgumentError("data is required");
  return world.createGenericSecret(name, std::move(data), data_type, version_id);
}

absl::StatusOr<SecretVersion> createSecretFrom(const nlohmann::json& object, World& world,
                                               std::string* name) {
  std::string type = kSecretTypeRamCredentials;
  if (absl::Status status = readString(object, "type", &type); !status.ok()) return status;
  if (type == kSecretTypeGeneric) {
    if (absl::Status status = readString(object, "name", name); !status.ok()) return status;
    if (absl::Status status = requireNonEmpty(*name, "name"); !status.ok()) return status;
    return createGenericSecretFrom(object, world, *name);
  }
  if (type != kSecretTypeRamCredentials) {
    return absl::InvalidArgumentError("type must be RAMCredentials or Generic");
  }
  std::string user_name;
  int64_t interval = 604800;
  int64_t next_in = -1;
  for (absl::Status status :
       {readString(object, "name", name), readString(object, "user_name", &user_name),
        readInteger(object, "rotation_interval_seconds", &interval),
        readInteger(object, "next_rotation_in_seconds", &next_in),
        requireNonEmpty(*name, "name")}) {
    if (!status.ok()) return status;
  }
  if (interval <= 0)
    return absl::InvalidArgumentError("rotation_interval_seconds must be positive");
  if (user_name.empty()) {
    const size_t slash = name->rfind('/');
    user_name = slash == std::string::npos ? *name : name->substr(slash + 1);
  }
  std::optional<absl::Duration> next_rotation_in;
  if (next_in >= 0) next_rotation_in = absl::Seconds(next_in);
  return world.createSecret(*name, user_name, interval, next_rotation_in);
}

absl::StatusOr<ClientKeySpec> parseClientKey(const nlohmann::json& object) {
  ClientKeySpec spec;
  std::string state = "active";
  for (absl::Status status :
       {readString(object, "key_id", &spec.key_id), readString(object, "password", &spec.password),
        readString(object, "private_key_data", &spec.private_key_data),
        readStrings(object, "secrets", &spec.secrets),
        readStrings(object, "instances", &spec.instances), readString(object, "state", &state)}) {
    if (!status.ok()) return status;
  }
  if (state != "active" && state != "disabled") {
    return absl::InvalidArgumentError("state must be active or disabled");
  }
  spec.state = state == "active" ? KeyState::kActive : KeyState::kDisabled;
  if (!spec.private_key_data.empty() && spec.password.empty()) {
    return absl::InvalidArgumentError("private_key_data needs its password");
  }
  return spec;
}

// The answer to creating a client key: the console's downloads and where
// the emulator wrote them.
Json clientKeyAnswer(const CreatedClientKey& created) {
  Json client_key;
  client_key["KeyId"] = created.key.key_id;
  client_key["PrivateKeyData"] = created.private_key_data.reveal();
  Json answer;
  answer["key_id"] = created.key.key_id;
  answer["client_key"] = client_key;
  answer["password"] = created.password.reveal();
  answer["client_key_file"] = created.key_file;
  answer["password_file"] = created.password_file;
  answer["secrets"] = created.key.secrets;
  answer["instances"] = created.key.instances;
  answer["state"] = created.key.state == KeyState::kActive ? "active" : "disabled";
  return answer;
}

absl::Status writeFileAtomically(const std::string& path, const std::string& content) {
  const std::string temp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out.good()) return absl::InternalError(absl::StrCat("cannot write ", temp));
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error)
    return absl::InternalError(absl::StrCat("cannot rename to ", path, ": ", error.message()));
  return absl::OkStatus();
}

// Applies `apply` to each object of the array seed[key], naming the entry
// that fails.
template <typename Apply>
absl::Status applyArray(const nlohmann::json& seed, const char* key, World& world, Apply apply) {
  auto it = seed.find(key);
  if (it == seed.end()) return absl::OkStatus();
  if (!it->is_array()) return absl::InvalidArgumentError(absl::StrCat(key, " must be an array"));
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& entry = (*it)[i];
    if (!entry.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(key, "[", i, "] must be an object"));
    }
    absl::Status status = apply(entry, world);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(key, "[", i, "]: ", status.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status applySeed(const nlohmann::json& seed, World& world, ClientKeyRegistry* client_keys) {
  if (!seed.is_object()) return absl::InvalidArgumentError("the seed must be a JSON object");
  absl::Status status =
      applyArray(seed, "oidc_providers", world, [](const nlohmann::json& entry, World& w) {
        auto provider = parseProvider(entry);
        if (!provider.ok()) return provider.status();
        w.addOidcProvider(*std::move(provider));
        return absl::OkStatus();
      });
  if (status.ok()) {
    status = applyArray(seed, "roles", world, [](const nlohmann::json& entry, World& w) {
      auto role = parseRole(entry);
      if (!role.ok()) return role.status();
      w.addRole(*std::move(role));
      return absl::OkStatus();
    });
  }
  if (status.ok()) {
    status = applyArray(seed, "access_keys", world, [](const nlohmann::json& entry, World& w) {
      auto key = parseKey(entry);
      if (!key.ok()) return key.status();
      w.addAccessKey(key->id, key->secret, key->secrets);
      return absl::OkStatus();
    });
  }
  if (status.ok()) {
    status = applyArray(seed, "secrets", world, [](const nlohmann::json& entry, World& w) {
      std::string name;
      return createSecretFrom(entry, w, &name).status();
    });
  }
  if (status.ok() && seed.contains("kms_instance_client_keys")) {
    if (client_keys == nullptr) {
      return absl::InvalidArgumentError("kms_instance_client_keys: no client key registry");
    }
    status = applyArray(seed, "kms_instance_client_keys", world,
                        [client_keys](const nlohmann::json& entry, World&) {
                          auto spec = parseClientKey(entry);
                          if (!spec.ok()) return spec.status();
                          return client_keys->create(*spec).status();
                        });
  }
  return status;
}

EmulatorServer::EmulatorServer(World& world, const OidcIssuer& issuer, ServerOptions options,
                               ClientKeyRegistry* client_keys)
    : world_(world), issuer_(issuer), options_(std::move(options)), client_keys_(client_keys) {
  if (options_.plain_http) {
    server_ = std::make_unique<httplib::Server>();
  } else {
    server_ =
        std::make_unique<httplib::SSLServer>(options_.cert_path.c_str(), options_.key_path.c_str());
  }
  // Enough workers that injected latency on one call does not stall others,
  // and long keep-alive so clients' connection reuse is real.
  server_->new_task_queue = [] { return new httplib::ThreadPool(32); };
  server_->set_keep_alive_max_count(10000);
  server_->set_keep_alive_timeout(5);
  // A real gateway does not hold answers back: without TCP_NODELAY each
  // answer on a reused connection waits for the client's delayed ACK
  // (~40 ms), which would make every keep-alive call look slow.
  server_->set_tcp_nodelay(true);
  auto api = [this](const httplib::Request& request, httplib::Response& response) {
    handleApi(request, response);
  };
  server_->set_pre_routing_handler([this](const httplib::Request& request, httplib::Response&) {
    trackConnection(request);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_->Get("/", api);
  server_->Post("/", api);
  registerAdminRoutes();
  if (client_keys_ != nullptr) registerClientKeyRoutes();

  for (const ServerOptions::KmsInstance& instance : options_.kms_instances) {
    auto listener = std::make_unique<InstanceListener>();
    listener->gateway = std::make_unique<KmsInstanceGateway>(instance.id, world_, *client_keys_);
    auto server = std::make_unique<httplib::SSLServer>(instance.cert_chain_path.c_str(),
                                                       instance.key_path.c_str());
    if (server->is_valid()) {
      // Ask for a client certificate and accept any or none: only the Go
      // SDK presents one (its client key's), and nothing requires it
      // (research §7).
      SSL_CTX_set_verify(server->ssl_context(), SSL_VERIFY_PEER,
                         [](int, X509_STORE_CTX*) { return 1; });
    }
    server->new_task_queue = [] { return new httplib::ThreadPool(8); };
    server->set_keep_alive_max_count(10000);
    server->set_keep_alive_timeout(5);
    server->set_tcp_nodelay(true);
    server->set_payload_max_length(kGatewayMaxBodyBytes);
    InstanceListener* raw = listener.get();
    server->set_pre_routing_handler([this](const httplib::Request& request, httplib::Response&) {
      trackConnection(request);
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Every method and path reaches the gateway, which answers all but
    // POST / with an error of its own.
    auto gateway = [this, raw](const httplib::Request& request, httplib::Response& response) {
      handleInstance(*raw, request, response);
    };
    server->Get(".*", gateway);
    server->Post(".*", gateway);
    server->Put(".*", gateway);
    server->Patch(".*", gateway);
    server->Delete(".*", gateway);
    server->Options(".*", gateway);
    // Answers httplib produces itself (413 for a body over the limit, 400
    // for a malformed request) get a protobuf Error body too, as every
    // error from the gateway has one.
    server->set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request&,
           httplib::Response& response) -> httplib::Server::HandlerResponse {
          if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          const GatewayAnswer answer = KmsInstanceGateway::error(
              response.status, "",
              response.status == 413 ? "Request Entity Too Large." : "Bad Request.");
          response.set_content(answer.body, "application/x-protobuf");
          return httplib::Server::HandlerResponse::Handled;
        }));
    listener->server = std::move(server);
    instances_.push_back(std::move(listener));
  }
}

void EmulatorServer::trackConnection(const httplib::Request& request) {
  if (request.ssl == nullptr) return;
  absl::MutexLock lock(&connections_mutex_);
  connection_fds_.insert(SSL_get_fd(request.ssl));
}

std::map<std::string, int> EmulatorServer::kmsInstancePorts() const {
  std::map<std::string, int> ports;
  for (const auto& listener : instances_) ports[listener->gateway->instanceId()] = listener->port;
  return ports;
}

EmulatorServer::~EmulatorServer() { stop(); }

absl::StatusOr<int> EmulatorServer::start() {
  if (!server_->is_valid()) {
    return absl::FailedPreconditionError("the TLS certificate or key could not be loaded");
  }
  int port = options_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(options_.host);
  } else if (!server_->bind_to_port(options_.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.host, ":", options_.port));
  }
  // The gateways are bound before any listener serves, so the admin API
  // never reads a port that is still being set.
  for (auto& listener : instances_) {
    if (!listener->server->is_valid()) {
      return absl::FailedPreconditionError(absl::StrCat("the certificate of KMS instance ",
                                                        listener->gateway->instanceId(),
                                                        " could not be loaded"));
    }
    listener->port = listener->server->bind_to_any_port(options_.host);
    if (listener->port <= 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.host, ":0"));
    }
  }
  for (auto& listener : instances_) {
    httplib::Server* serving = listener->server.get();
    listener->thread = serveBound(serving);
    log::info("kms instance gateway",
              {{"instance", listener->gateway->instanceId()}, {"port", listener->port}});
  }
  thread_ = serveBound(server_.get());
  return port;
}

void EmulatorServer::stop() {
  if (server_) server_->stop();
  for (auto& listener : instances_) {
    if (listener->server) listener->server->stop();
  }
  for (auto& listener : instances_) {
    if (listener->thread.joinable()) listener->thread.join();
  }
  {
    absl::MutexLock lock(&wrong_host_mutex_);
    if (wrong_host_server_) wrong_host_server_->stop();
  }
  if (wrong_host_thread_.joinable()) wrong_host_thread_.join();
  {
    absl::MutexLock lock(&metadata_mutex_);
    if (metadata_server_) metadata_server_->stop();
  }
  if (metadata_thread_.joinable()) metadata_thread_.join();
  {
    // A recorded descriptor may since have been closed or reused; shutdown()
    // on it is then harmless (ENOTSOCK, or another connection of ours that is
    // being stopped anyway).
    absl::MutexLock lock(&connections_mutex_);
    for (int fd : connection_fds_) ::shutdown(fd, SHUT_RDWR);
    connection_fds_.clear();
  }
  if (thread_.joinable()) thread_.join();
}

namespace {

// Counts each TLS handshake the wrong-host listener begins (once per
// connection) as a failed request of the pseudo-action "TLSHandshake".
void countWrongHostHandshake(const SSL* ssl, int where, int /*ret*/) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
  SSL* mutable_ssl = const_cast<SSL*>(ssl);
  static int counted_marker;
  if (SSL_get_app_data(mutable_ssl) == &counted_marker) return;
  SSL_set_app_data(mutable_ssl, &counted_marker);
  auto* counters = static_cast<Counters*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  if (counters != nullptr) counters->recordFailure("TLSHandshake", "WrongHostCertificate");
}

}  // namespace

absl::StatusOr<int> EmulatorServer::startWrongHostListener() {
  absl::MutexLock lock(&wrong_host_mutex_);
  if (wrong_host_server_) return wrong_host_port_;
  if (options_.plain_http || options_.wrong_host_cert_path.empty()) {
    return absl::FailedPreconditionError(
        "the wrong-host listener needs HTTPS and the PKI's wrong-host certificate");
  }
  auto server = std::make_unique<httplib::SSLServer>(options_.wrong_host_cert_path.c_str(),
                                                     options_.wrong_host_key_path.c_str());
  if (!server->is_valid()) {
    return absl::FailedPreconditionError("the wrong-host certificate or key could not be loaded");
  }
  SSL_CTX_set_app_data(server->ssl_context(), &counters_);
  SSL_CTX_set_info_callback(server->ssl_context(), countWrongHostHandshake);
  server->new_task_queue = [] { return new httplib::ThreadPool(4); };
  server->set_keep_alive_timeout(1);
  server->set_tcp_nodelay(true);
  // The same APIs, for a client that skips verification: what it reaches is
  // the emulator, only under a name it did not ask for.
  auto api = [this](const httplib::Request& request, httplib::Response& response) {
    handleApi(request, response);
  };
  server->Get("/", api);
  server->Post("/", api);
  const int port = server->bind_to_any_port(options_.host);
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.host, ":0"));
  }
  wrong_host_server_ = std::move(server);
  wrong_host_port_ = port;
  httplib::Server* serving = wrong_host_server_.get();
  wrong_host_thread_ = serveBound(serving);
  log::info("wrong-host listener", {{"port", port}, {"certificate_name", kWrongHostName}});
  return port;
}

namespace {

std::optional<std::string> headerValue(const httplib::Request& request, const char* name) {
  if (!request.has_header(name)) return std::nullopt;
  return request.get_header_value(name);
}

void sendMetadata(httplib::Response& response, const MetadataAnswer& answer, Counters& counters) {
  if (answer.failure.empty()) {
    counters.recordSuccess(answer.action);
  } else {
    counters.recordFailure(answer.action, answer.failure);
  }
  response.status = answer.status;
  response.set_content(answer.body, answer.content_type.c_str());
  log::info("metadata request",
            {{"action", answer.action}, {"status", answer.status}, {"code", answer.failure}});
}

constexpr char kMetadataTokenHeader[] = "X-aliyun-ecs-metadata-token";
constexpr char kMetadataTtlHeader[] = "X-aliyun-ecs-metadata-token-ttl-seconds";
constexpr char kCredentialsPath[] = "/latest/meta-data/ram/security-credentials/";

}  // namespace

absl::StatusOr<int> EmulatorServer::startMetadataListener() {
  absl::MutexLock lock(&metadata_mutex_);
  if (metadata_server_) return metadata_port_;
  // The real service is plain HTTP on 100.100.100.200:80.
  auto server = std::make_unique<httplib::Server>();
  server->new_task_queue = [] { return new httplib::ThreadPool(4); };
  server->set_keep_alive_timeout(1);
  server->set_tcp_nodelay(true);
  server->Put("/latest/api/token", [this](const httplib::Request& request,
                                          httplib::Response& response) {
    sendMetadata(response, metadata_.putToken(headerValue(request, kMetadataTtlHeader)), counters_);
  });
  server->Get(
      kCredentialsPath, [this](const httplib::Request& request, httplib::Response& response) {
        sendMetadata(response, metadata_.getRoleName(headerValue(request, kMetadataTokenHeader)),
                     counters_);
      });
  server->Get(R"(/latest/meta-data/ram/security-credentials/([^/]+))",
              [this](const httplib::Request& request, httplib::Response& response) {
                sendMetadata(response,
                             metadata_.getCredentials(request.matches[1].str(),
                                                      headerValue(request, kMetadataTokenHeader)),
                             counters_);
              });
  const int port = server->bind_to_any_port(options_.host);
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.host, ":0"));
  }
  metadata_server_ = std::move(server);
  metadata_port_ = port;
  httplib::Server* serving = metadata_server_.get();
  metadata_thread_ = serveBound(serving);
  log::info("metadata listener", {{"port", port}});
  return port;
}

void EmulatorServer::handleApi(const httplib::Request& http_request, httplib::Response& response) {
  const absl::Time started = absl::Now();
  std::vector<std::pair<std::string, std::string>> headers(http_request.headers.begin(),
                                                           http_request.headers.end());
  absl::StatusOr<ApiRequest> parsed =
      parseApiRequest(http_request.method, http_request.target, headers, http_request.body);
  std::string product = "Ecs";
  ApiResult result = ApiError{};
  std::optional<Fault> failure;
  const std::string action = parsed.ok() ? parsed->action : "";

  const ActionSpec* spec = parsed.ok() ? findAction(parsed->action) : nullptr;
  if (!parsed.ok()) {
    result = ApiError{400, "InvalidParameter", "The request is not correctly encoded."};
  } else if (parsed->action.empty()) {
    result = missingParameter("Action");
  } else if (spec == nullptr) {
    result = ApiError{404, "InvalidAction.NotFound",
                      "Specified api is not found, please check your url and method."};
  } else if (parsed->version != spec->version) {
    product = spec->product;
    result = ApiError{400, "InvalidVersion", "Specified parameter Version is not valid."};
  } else {
    product = spec->product;
    const FaultDecision decision = faults_.decide(action);
    if (decision.latency > absl::ZeroDuration()) absl::SleepFor(decision.latency);
    failure = decision.failure;
    if (failure && failure->kind != FaultKind::kTruncatedBody) {
      switch (failure->kind) {
        case FaultKind::kHttp5xx:
          result = ApiError{failure->status, "ServiceUnavailableTemporary",
                            "The request has failed due to a temporary failure of the server."};
          break;
        case FaultKind::kInternalFailure:
          result = ApiError{500, "InternalFailure",
                            "The request processing has failed due to some unknown error."};
          break;
        case FaultKind::kThrottling:
          result =
              product == "Sts"
                  ? ApiError{400, "Throttling.User", "Request was denied due to user flow control."}
                  : ApiError{400, "Rejected.Throttling",
                             "QPS Limit Exceeded: the request was denied due to flow "
                             "control."};
          break;
        case FaultKind::kReset:
          counters_.recordFailure(action, "ConnectionReset");
          if (!resetConnection(http_request)) sendTruncated(response, "{}");
          log::info("api request", {{"action", action}, {"fault", "reset"}});
          return;
        case FaultKind::kMalformedJson:
          counters_.recordFailure(action, "MalformedBody");
          response.status = 200;
          response.set_content("<html><body>upstream proxy error: not JSON {\"RequestId\":",
                               kJsonContentType);
          log::info("api request", {{"action", action}, {"fault", "malformed_json"}});
          return;
        case FaultKind::kBody:
          counters_.recordFailure(action, "InjectedBody");
          sendInjectedBody(response, *failure);
          log::info("api request", {{"action", action}, {"fault", "body"}});
          return;
        case FaultKind::kLatency:
        case FaultKind::kTruncatedBody:
          break;
      }
    } else if (!spec->signed_call) {
      result = assumeRoleWithOidc(*parsed, world_, issuer_);
    } else {
      auto principal = authenticate(*parsed, world_);
      if (auto* error = std::get_if<ApiError>(&principal)) {
        result = *error;
      } else if (action == "GetSecretValue") {
        result = getSecretValue(*parsed, world_, std::get<Principal>(principal));
      } else if (action == "RotateSecret") {
        result = rotateSecret(*parsed, world_, std::get<Principal>(principal));
      } else {
        result = describeRegions(*parsed, world_, std::get<Principal>(principal));
      }
    }
  }

  int status = 200;
  Json body;
  std::string code;
  if (auto* error = std::get_if<ApiError>(&result)) {
    status = error->http_status;
    code = error->code;
    body = errorBody(*error, product, world_);
  } else {
    body = std::get<Json>(std::move(result));
  }
  if (failure && failure->kind == FaultKind::kTruncatedBody) {
    counters_.recordFailure(action, "TruncatedBody");
    response.status = status;
    sendTruncated(response, body.dump());
  } else {
    if (code.empty()) {
      counters_.recordSuccess(action.empty() ? "(none)" : action);
    } else {
      counters_.recordFailure(action.empty() ? "(none)" : action, code);
    }
    sendJson(response, status, body);
  }
  log::info("api request", {{"action", action},
                            {"method", http_request.method},
                            {"status", status},
                            {"code", code},
                            {"latency_ms", absl::ToInt64Milliseconds(absl::Now() - started)}});
}

void EmulatorServer::handleInstance(const InstanceListener& listener,
                                    const httplib::Request& http_request,
                                    httplib::Response& response) {
  constexpr char kProtobuf[] = "application/x-protobuf";
  const absl::Time started = absl::Now();
  const std::string& instance = listener.gateway->instanceId();
  GatewayRequest request;
  request.method = http_request.method;
  request.path = http_request.path;
  for (const auto& [name, value] : http_request.headers) {
    request.headers.emplace(absl::AsciiStrToLower(name), value);
  }
  request.body = http_request.body;
  const std::string api_name =
      request.headers.count("x-kms-apiname") ? request.headers.find("x-kms-apiname")->second : "";
  // Counted per instance, so failover tests see which gateway was asked.
  const std::string counted = absl::StrCat(instance, "/", api_name.empty() ? "(none)" : api_name);

  const FaultDecision decision = faults_.decide(api_name, instance);
  if (decision.latency > absl::ZeroDuration()) absl::SleepFor(decision.latency);
  GatewayAnswer answer;
  bool truncate = false;
  if (decision.failure) {
    const Fault& fault = *decision.failure;
    switch (fault.kind) {
      case FaultKind::kHttp5xx:
        answer = KmsInstanceGateway::error(fault.status, "ServiceUnavailableTemporary",
                                           "Service Unavailable Temporary.");
        break;
      case FaultKind::kInternalFailure:
        answer = KmsInstanceGateway::error(500, "InternalFailure", "Internal Failure.");
        break;
      case FaultKind::kThrottling:
        // The status of the instance API's throttling answer is not
        // documented (research §11); 400 as on the shared gateway.
        answer = KmsInstanceGateway::error(400, "Rejected.Throttling", "QPS Limit Exceeded");
        break;
      case FaultKind::kReset:
        counters_.recordFailure(counted, "ConnectionReset");
        if (!resetConnection(http_request)) sendTruncated(response, "{}", kProtobuf);
        log::info("kms instance request", {{"instance", instance}, {"fault", "reset"}});
        return;
      case FaultKind::kMalformedJson:
        // Not protobuf: '<' starts an end-group tag no message can hold.
        counters_.recordFailure(counted, "MalformedBody");
        response.status = 200;
        response.set_content("<html><body>upstream proxy error</body></html>", kProtobuf);
        log::info("kms instance request", {{"instance", instance}, {"fault", "malformed_json"}});
        return;
      case FaultKind::kBody:
        counters_.recordFailure(counted, "InjectedBody");
        sendInjectedBody(response, fault);
        log::info("kms instance request", {{"instance", instance}, {"fault", "body"}});
        return;
      case FaultKind::kTruncatedBody:
        truncate = true;
        break;
      case FaultKind::kLatency:
        break;
    }
  }
  if (!decision.failure || truncate) answer = listener.gateway->handle(request);
  if (truncate) {
    counters_.recordFailure(counted, "TruncatedBody");
    response.status = answer.status;
    sendTruncated(response, std::move(answer.body), kProtobuf);
  } else {
    if (answer.code.empty()) {
      counters_.recordSuccess(counted);
    } else {
      counters_.recordFailure(counted, answer.code);
    }
    response.status = answer.status;
    response.set_content(answer.body, kProtobuf);
  }
  log::info("kms instance request",
            {{"instance", instance},
             {"action", api_name},
             {"status", answer.status},
             {"code", answer.code},
             {"latency_ms", absl::ToInt64Milliseconds(absl::Now() - started)}});
}

void EmulatorServer::registerClientKeyRoutes() {
  httplib::Server& server = *server_;
  server.Post("/admin/kms-instance/client-keys", [this](const httplib::Request& request,
                                                        httplib::Response& response) {
    absl::StatusOr<nlohmann::json> body = parseAdminBody(request);
    if (!body.ok()) return sendAdminError(response, 400, body.status().message());
    auto spec = parseClientKey(*body);
    if (!spec.ok()) return sendAdminError(response, 400, spec.status().message());
    for (const std::string& id : spec->instances) {
      const bool known =
          std::any_of(options_.kms_instances.begin(), options_.kms_instances.end(),
                      [&](const ServerOptions::KmsInstance& i) { return i.id == id; });
      if (!known)
        return sendAdminError(response, 400, absl::StrCat("instances: no KMS instance ", id));
    }
    auto created = client_keys_->create(*spec);
    if (!created.ok()) {
      return sendAdminError(response,
                            created.status().code() == absl::StatusCode::kAlreadyExists ? 409 : 400,
                            created.status().message());
    }
    sendJson(response, 200, clientKeyAnswer(*created));
  });

  server.Post(R"(/admin/kms-instance/client-keys/([^/]+)/(disable|enable))",
              [this](const httplib::Request& request, httplib::Response& response) {
                const std::string id = request.matches[1];
                const std::string verb = request.matches[2];
                if (!client_keys_->setState(
                        id, verb == "enable" ? KeyState::kActive : KeyState::kDisabled)) {
                  return sendAdminError(response, 404, "no such client key");
                }
                log::info("admin client key", {{"key_id", id}, {"change", verb}});
                sendJson(response, 200, Json::object());
              });

  server.Get("/admin/kms-instances", [this](const httplib::Request&, httplib::Response& response) {
    Json instances = Json::array();
    for (const auto& listener : instances_) {
      const std::string& id = listener->gateway->instanceId();
      instances.push_back({{"id", id},
                           {"port", listener->port},
                           {"endpoint", absl::StrCat(id, ".cryptoservice.kms.aliyuncs.com")}});
    }
    sendJson(response, 200,
             Json{{"ca_file", options_.kms_instance_ca_file}, {"instances", instances}});
  });
}

void EmulatorServer::registerAdminRoutes() {
  httplib::Server& server = *server_;
  // Every admin handler parses a JSON object and answers JSON; failures are
  // 400 with {"error": "..."} naming the problem.
  auto admin = [](auto handler) {
    return [handler](const httplib::Request& request, httplib::Response& response) {
      absl::StatusOr<nlohmann::json> body = parseAdminBody(request);
      if (!body.ok()) return sendAdminError(response, 400, body.status().message());
      handler(request, *body, response);
    };
  };

  server.Get("/admin/health", [](const httplib::Request&, httplib::Response& response) {
    sendJson(response, 200, Json{{"ok", true}});
  });

  server.Post("/admin/oidc-providers",
              admin([this](const httplib::Request&, const nlohmann::json& body,
                           httplib::Response& response) {
                auto provider = parseProvider(body);
                if (!provider.ok())
                  return sendAdminError(response, 400, provider.status().message());
                world_.addOidcProvider(*provider);
                sendJson(response, 200, Json{{"arn", provider->arn}, {"issuer", provider->issuer}});
              }));

  server.Post("/admin/roles", admin([this](const httplib::Request&, const nlohmann::json& body,
                                           httplib::Response& response) {
                auto role = parseRole(body);
                if (!role.ok()) return sendAdminError(response, 400, role.status().message());
                world_.addRole(*role);
                sendJson(response, 200, Json{{"arn", role->arn}});
              }));

  server.Post(
      "/admin/access-keys", admin([this](const httplib::Request&, const nlohmann::json& body,
                                         httplib::Response& response) {
        auto spec = parseKey(body);
        if (!spec.ok()) return sendAdminError(response, 400, spec.status().message());
        AccessKey key = world_.addAccessKey(spec->id, spec->secret, spec->secrets);
        sendJson(response, 200,
                 Json{{"access_key_id", key.id}, {"access_key_secret", key.secret.reveal()}});
      }));

  server.Post(R"(/admin/access-keys/([^/]+)/(revoke|disable|enable))",
              [this](const httplib::Request& request, httplib::Response& response) {
                const std::string id = request.matches[1];
                const std::string verb = request.matches[2];
                bool found = false;
                if (verb == "revoke") found = world_.revokeKey(id);
                if (verb == "disable") found = world_.setKeyState(id, KeyState::kDisabled);
                if (verb == "enable") found = world_.setKeyState(id, KeyState::kActive);
                if (!found) return sendAdminError(response, 404, "no such access key");
                log::info("admin access key", {{"access_key_id", id}, {"change", verb}});
                sendJson(response, 200, Json::object());
              });

  server.Post(
      "/admin/secrets", admin([this](const httplib::Request&, const nlohmann::json& body,
                                     httplib::Response& response) {
        std::string name;
        auto version = createSecretFrom(body, world_, &name);
        if (!version.ok()) {
          return sendAdminError(
              response, version.status().code() == absl::StatusCode::kAlreadyExists ? 409 : 400,
              version.status().message());
        }
        if (version->access_key_id.empty()) {  // Generic
          log::info("admin created generic secret",
                    {{"secret", name}, {"version_id", version->version_id}});
          return sendJson(response, 200, Json{{"name", name}, {"version_id", version->version_id}});
        }
        sendJson(response, 200,
                 Json{{"name", name},
                      {"version_id", version->version_id},
                      {"access_key_id", version->access_key_id},
                      {"access_key_secret", version->access_key_secret.reveal()}});
      }));

  // PutSecretValue for Generic secrets: {"data", "version_id"}.
  server.Post(
      R"(/admin/secrets/(.+)/versions)",
      admin([this](const httplib::Request& request, const nlohmann::json& body,
                   httplib::Response& response) {
        const std::string name = request.matches[1];
        std::string data;
        std::string version_id;
        for (absl::Status status :
             {readString(body, "data", &data), readString(body, "version_id", &version_id)}) {
          if (!status.ok()) return sendAdminError(response, 400, status.message());
        }
        if (body.find("data") == body.end()) {
          return sendAdminError(response, 400, "data is required");
        }
        auto put = world_.putSecretValue(name, std::move(data), version_id);
        if (!put.ok()) {
          const absl::StatusCode code = put.status().code();
          return sendAdminError(response,
                                code == absl::StatusCode::kNotFound        ? 404
                                : code == absl::StatusCode::kAlreadyExists ? 409
                                                                           : 400,
                                put.status().message());
        }
        log::info("admin put secret value", {{"secret", name}, {"version_id", put->version_id}});
        sendJson(response, 200, Json{{"name", name}, {"version_id", put->version_id}});
      }));

  server.Post(R"(/admin/secrets/(.+)/rotate)",
              admin([this](const httplib::Request& request, const nlohmann::json& body,
                           httplib::Response& response) {
                const std::string name = request.matches[1];
                bool revoke_previous = false;
                if (auto it = body.find("revoke_previous"); it != body.end()) {
                  if (!it->is_boolean()) {
                    return sendAdminError(response, 400, "revoke_previous must be a boolean");
                  }
                  revoke_previous = it->get<bool>();
                }
                auto rotated = world_.rotateSecret(name, revoke_previous);
                if (!rotated.ok()) {
                  return rotated.status().code() == absl::StatusCode::kNotFound
                             ? sendAdminError(response, 404, "no such secret")
                             : sendAdminError(response, 400,
                                              "a Generic secret gets new versions with POST "
                                              "/admin/secrets/NAME/versions, not rotate");
                }
                log::info("admin rotate secret", {{"secret", name},
                                                  {"access_key_id", rotated->access_key_id},
                                                  {"revoke_previous", revoke_previous}});
                sendJson(response, 200,
                         Json{{"version_id", rotated->version_id},
                              {"access_key_id", rotated->access_key_id},
                              {"access_key_secret", rotated->access_key_secret.reveal()},
                              {"previous_access_key_id", rotated->previous_access_key_id}});
              }));

  server.Get(R"(/admin/secrets/(.+))",
             [this](const httplib::Request& request, httplib::Response& response) {
               std::optional<Secret> secret = world_.findSecret(request.matches[1]);
               if (!secret) return sendAdminError(response, 404, "no such secret");
               Json versions = Json::array();
               const bool generic = secret->type == kSecretTypeGeneric;
               for (const SecretVersion& version : secret->versions) {
                 Json entry = {{"version_id", version.version_id}};
                 if (!generic) entry["access_key_id"] = version.access_key_id;
                 entry["stages"] = version.stages;
                 versions.push_back(std::move(entry));
               }
               Json answer = {{"name", secret->name}, {"type", secret->type}};
               if (generic) {
                 answer["data_type"] = secret->data_type;
               } else {
                 answer["next_rotation_date"] = formatIso8601(secret->next_rotation);
               }
               answer["versions"] = versions;
               sendJson(response, 200, answer);
             });

  server.Post(
      "/admin/oidc/tokens", admin([this](const httplib::Request&, const nlohmann::json& body,
                                         httplib::Response& response) {
        MintRequest mint;
        std::string ns, service_account, file, signing_key = "issuer";
        int64_t ttl_seconds = 3600;
        for (absl::Status status :
             {readString(body, "subject", &mint.subject), readString(body, "namespace", &ns),
              readString(body, "service_account", &service_account),
              readString(body, "issuer", &mint.issuer),
              readString(body, "audience", &mint.audience), readString(body, "file", &file),
              readString(body, "signing_key", &signing_key),
              readInteger(body, "ttl_seconds", &ttl_seconds)}) {
          if (!status.ok()) return sendAdminError(response, 400, status.message());
        }
        if (mint.subject.empty()) {
          if (ns.empty() || service_account.empty()) {
            return sendAdminError(response, 400,
                                  "subject, or namespace and service_account, is required");
          }
          mint.subject = absl::StrCat("system:serviceaccount:", ns, ":", service_account);
        }
        if (signing_key != "issuer" && signing_key != "rogue") {
          return sendAdminError(response, 400, "signing_key must be issuer or rogue");
        }
        mint.rogue = signing_key == "rogue";
        mint.ttl = absl::Seconds(ttl_seconds);
        const absl::Time now = world_.now();
        const std::string token = issuer_.mint(mint, now);
        Json answer{{"token", token}, {"expires_at", formatIso8601(now + mint.ttl)}};
        if (!file.empty()) {
          absl::Status written = writeFileAtomically(file, token);
          if (!written.ok()) return sendAdminError(response, 500, written.message());
          answer["file"] = file;
        }
        log::info("admin minted oidc token",
                  {{"subject", mint.subject}, {"ttl_seconds", ttl_seconds}});
        sendJson(response, 200, answer);
      }));

  server.Post(
      "/admin/faults", admin([this](const httplib::Request&, const nlohmann::json& body,
                                    httplib::Response& response) {
        Fault fault;
        std::string kind, body_base64;
        int64_t latency_ms = 0, status = -1;
        for (absl::Status read :
             {readString(body, "action", &fault.action), readString(body, "kind", &kind),
              readString(body, "instance", &fault.instance),
              readInteger(body, "count", &fault.remaining),
              readInteger(body, "latency_ms", &latency_ms), readInteger(body, "status", &status),
              readString(body, "body", &fault.body), readString(body, "body_base64", &body_base64),
              readInteger(body, "huge_bytes", &fault.huge_bytes),
              requireNonEmpty(fault.action, "action")}) {
          if (!read.ok()) return sendAdminError(response, 400, read.message());
        }
        auto parsed_kind = parseFaultKind(kind);
        if (!parsed_kind.ok()) return sendAdminError(response, 400, parsed_kind.status().message());
        fault.kind = *parsed_kind;
        if (auto it = body.find("chunked"); it != body.end()) {
          if (!it->is_boolean()) return sendAdminError(response, 400, "chunked must be a boolean");
          fault.chunked = it->get<bool>();
        }
        if (fault.kind == FaultKind::kBody) {
          const int given = (body.contains("body") ? 1 : 0) +
                            (body.contains("body_base64") ? 1 : 0) +
                            (body.contains("huge_bytes") ? 1 : 0);
          if (given != 1) {
            return sendAdminError(response, 400,
                                  "kind body needs exactly one of body, body_base64, huge_bytes");
          }
          if (body.contains("body_base64")) {
            auto decoded = crypto::base64Decode(body_base64);
            if (!decoded.ok()) return sendAdminError(response, 400, "body_base64 is not base64");
            fault.body = *std::move(decoded);
          }
          if (body.contains("huge_bytes") && fault.huge_bytes <= 0) {
            return sendAdminError(response, 400, "huge_bytes must be positive");
          }
          if (status == -1) status = 200;
          if (status < 200 || status > 599) {
            return sendAdminError(response, 400, "status must be an HTTP status from 200 to 599");
          }
        } else {
          if (status == -1) status = 503;
          if (status < 500 || status > 599) {
            return sendAdminError(response, 400, "status must be a 5xx code");
          }
        }
        if (auto it = body.find("fraction"); it != body.end()) {
          if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 1) {
            return sendAdminError(response, 400, "fraction must be a number from 0 to 1");
          }
          fault.fraction = it->get<double>();
        }
        fault.status = static_cast<int>(status);
        fault.latency = absl::Milliseconds(latency_ms);
        const int id = faults_.add(fault);
        log::info(
            "admin fault added",
            {{"action", fault.action}, {"instance", fault.instance}, {"kind", kind}, {"id", id}});
        sendJson(response, 200, Json{{"id", id}});
      }));

  server.Delete("/admin/faults", [this](const httplib::Request&, httplib::Response& response) {
    faults_.clear();
    sendJson(response, 200, Json::object());
  });

  server.Get("/admin/counters", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(counters_.toJson().dump(), kJsonContentType);
  });

  server.Delete("/admin/counters", [this](const httplib::Request&, httplib::Response& response) {
    counters_.reset();
    sendJson(response, 200, Json::object());
  });

  server.Post("/admin/listeners", admin([this](const httplib::Request&, const nlohmann::json& body,
                                               httplib::Response& response) {
                std::string certificate;
                if (absl::Status read = readString(body, "certificate", &certificate); !read.ok()) {
                  return sendAdminError(response, 400, read.message());
                }
                if (certificate != "wrong_host") {
                  return sendAdminError(response, 400, "certificate must be wrong_host");
                }
                auto port = startWrongHostListener();
                if (!port.ok()) return sendAdminError(response, 409, port.status().message());
                sendJson(response, 200,
                         Json{{"port", *port},
                              {"certificate", certificate},
                              {"certificate_name", kWrongHostName}});
              }));

  // Attaches a role to the emulated instance and sets its metadata mode;
  // starts the metadata listener on first use.
  server.Post(
      "/admin/metadata", admin([this](const httplib::Request&, const nlohmann::json& body,
                                      httplib::Response& response) {
        MetadataConfig config = metadata_.config();
        if (body.contains("role_name")) {
          if (absl::Status read = readString(body, "role_name", &config.role_name); !read.ok()) {
            return sendAdminError(response, 400, read.message());
          }
        }
        if (body.contains("role_arn")) {
          if (absl::Status read = readString(body, "role_arn", &config.role_arn); !read.ok()) {
            return sendAdminError(response, 400, read.message());
          }
        }
        if (body.contains("mode")) {
          std::string mode;
          if (absl::Status read = readString(body, "mode", &mode); !read.ok()) {
            return sendAdminError(response, 400, read.message());
          }
          if (mode == "both") {
            config.mode = MetadataMode::kBoth;
          } else if (mode == "hardened_only") {
            config.mode = MetadataMode::kHardenedOnly;
          } else if (mode == "normal_only") {
            config.mode = MetadataMode::kNormalOnly;
          } else {
            return sendAdminError(response, 400, "mode must be both, hardened_only or normal_only");
          }
        }
        if (body.contains("session_duration_seconds")) {
          int64_t seconds = 0;
          if (absl::Status read = readInteger(body, "session_duration_seconds", &seconds);
              !read.ok()) {
            return sendAdminError(response, 400, read.message());
          }
          if (seconds < 1) {
            return sendAdminError(response, 400, "session_duration_seconds must be >= 1");
          }
          config.session_duration_seconds = seconds;
        }
        if (!config.role_arn.empty() && !world_.findRole(config.role_arn)) {
          return sendAdminError(response, 400, "role_arn: no such role");
        }
        metadata_.configure(config);
        auto port = startMetadataListener();
        if (!port.ok()) return sendAdminError(response, 409, port.status().message());
        const char* mode = config.mode == MetadataMode::kBoth           ? "both"
                           : config.mode == MetadataMode::kHardenedOnly ? "hardened_only"
                                                                        : "normal_only";
        sendJson(response, 200,
                 Json{{"port", *port},
                      {"role_name", config.role_name},
                      {"role_arn", config.role_arn},
                      {"mode", mode},
                      {"session_duration_seconds", config.session_duration_seconds}});
      }));

  server.Post("/admin/clock", admin([this](const httplib::Request&, const nlohmann::json& body,
                                           httplib::Response& response) {
                int64_t offset_seconds = 0;
                if (absl::Status read = readInteger(body, "offset_seconds", &offset_seconds);
                    !read.ok()) {
                  return sendAdminError(response, 400, read.message());
                }
                world_.setClockOffset(absl::Seconds(offset_seconds));
                sendJson(response, 200, Json{{"offset_seconds", offset_seconds}});
              }));
}

}  // namespace credsync::emulator
