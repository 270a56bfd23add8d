#include "sidecar/app/sidecar.h"

#include <atomic>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/common/descriptors.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/memory.h"
#include "sidecar/http/curl_client.h"
#include "sidecar/http/observed_client.h"
#include "sidecar/identity/ecs_ram_role_provider.h"
#include "sidecar/identity/oidc_provider.h"
#include "sidecar/server/pod_token.h"

namespace credsync::app {
namespace {

// Counts every completed fetch by profile and result.
class FetchMetrics : public sync::SyncListener {
 public:
  explicit FetchMetrics(metrics::SidecarMetrics& metrics) : metrics_(metrics) {}
  void onFetchCompleted(const std::string& profile, const absl::Status& result) override {
    metrics_.fetchCompleted(profile, result.ok());
  }

 private:
  metrics::SidecarMetrics& metrics_;
};

// The longest one scheduler round may take: every profile's fetch, each an
// STS exchange and a KMS call per endpoint, all bounded by timeouts; plus the
// loop's idle wait. A heartbeat older than this means the loop is stuck.
absl::Duration livenessLimit(const config::Config& config) {
  const absl::Duration call = config.http.connect_timeout + config.http.request_timeout;
  const auto calls =
      static_cast<int64_t>(config.profiles.size() *
                           (2 * (config.kms.endpoints.size() + config.kms.instances.size()) + 2));
  return absl::Seconds(60) + call * calls;
}

alibaba::SignatureScheme signatureScheme(config::KmsSignature signature) {
  switch (signature) {
    case config::KmsSignature::kAcs3:
      return alibaba::SignatureScheme::kAcs3HmacSha256;
    case config::KmsSignature::kHmacSha1:
      return alibaba::SignatureScheme::kRpcHmacSha1;
  }
  return alibaba::SignatureScheme::kAcs3HmacSha256;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Sidecar>> Sidecar::create(const config::Config& config,
                                                         ClientKeys client_keys,
                                                         const TimeSource& time_source,
                                                         const TransportFactory& make_transport) {
  if (client_keys.size() != config.kms.instances.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the sidecar needs one client key per KMS instance: got ", client_keys.size(),
                     " for ", config.kms.instances.size()));
  }
  std::unique_ptr<Sidecar> sidecar(new Sidecar());
  sidecar->config_ = config;
  sidecar->time_source_ = &time_source;
  sidecar->liveness_limit_ = livenessLimit(config);
  sidecar->random_ = makeRandom();
  sidecar->metrics_ = metrics::makeSidecarMetrics(CREDSYNC_VERSION);

  if (!config.tls.verify) {
    log::warn(
        "TLS verification is OFF (tls.insecure_skip_verify): credentials can be "
        "intercepted; never use this outside a test bed");
  }
  http::CurlClientOptions http_options;
  http_options.ca_file = config.tls.ca_file;
  http_options.verify_tls = config.tls.verify;
  http_options.connect_timeout = config.http.connect_timeout;
  http_options.total_timeout = config.http.request_timeout;
  sidecar->transport_ = make_transport(http_options);
  metrics::SidecarMetrics* metrics = sidecar->metrics_.get();
  const auto observe = [&time_source, metrics](http::Client& transport) {
    return http::makeObservedClient(
        transport, time_source,
        [metrics](const http::Request& request, const absl::StatusOr<http::Response>& response,
                  absl::Duration latency) {
          metrics->upstreamCall(
              request.operation,
              http::classifyUpstreamOutcome(response, alibaba::isThrottlingResponse), latency);
        });
  };
  sidecar->http_ = observe(*sidecar->transport_);

  if (config.kms.endpoints.empty()) {
    // KMS instances only: their client keys authenticate.
    sidecar->identity_ = identity::makeNoIdentity();
  } else if (config.identity.type == config::IdentityType::kOidc) {
    sidecar->sts_ =
        alibaba::makeStsClient(*sidecar->http_, time_source, config.identity.sts_endpoint);
    sidecar->identity_ =
        identity::makeOidcProvider(config.identity, *sidecar->sts_, time_source, *sidecar->random_);
  } else if (config.identity.type == config::IdentityType::kEcsRamRole) {
    sidecar->identity_ = identity::makeEcsRamRoleProvider(config.identity, *sidecar->http_,
                                                          time_source, *sidecar->random_);
  } else {
    sidecar->identity_ = identity::makeStaticProvider(config.identity);
  }
  sidecar->kms_ =
      alibaba::makeKmsClient(*sidecar->http_, time_source, signatureScheme(config.kms.signature));
  std::vector<fetch::KmsBackendPtr> backends;
  // KMS instances first: the dedicated gateway in the VPC, needing no STS
  // exchange; the OpenAPI endpoints after them as the fallback.
  for (size_t i = 0; i < config.kms.instances.size(); ++i) {
    const config::KmsInstanceConfig& instance = config.kms.instances[i];
    if (!instance.verify) {
      log::warn(
          "TLS verification is OFF for a KMS instance (insecure_skip_verify): secrets can "
          "be intercepted; never use this outside a test bed",
          {{"endpoint", instance.endpoint}});
    }
    http::CurlClientOptions options = http_options;
    if (!instance.ca_file.empty()) options.ca_file = instance.ca_file;
    options.verify_tls = instance.verify;
    KmsInstance wired;
    wired.endpoint = instance.endpoint;
    wired.key = std::move(client_keys[i]);
    wired.transport = make_transport(options);
    wired.http = observe(*wired.transport);
    wired.client = alibaba::makeDkmsClient(*wired.http, *wired.key, time_source);
    backends.push_back(fetch::makeInstanceBackend(*wired.client, instance.endpoint));
    log::info("KMS instance client key loaded",
              {{"endpoint", instance.endpoint}, {"key_id", wired.key->reloads().key_id}});
    sidecar->instances_.push_back(std::move(wired));
  }
  for (const std::string& endpoint : config.kms.endpoints) {
    backends.push_back(fetch::makeOpenApiBackend(*sidecar->kms_, endpoint));
  }
  fetch::CircuitBreakerOptions breaker;
  breaker.failure_threshold = config.kms.circuit_failure_threshold;
  breaker.open_for = config.kms.circuit_open_for;
  breaker.max_open_for = config.kms.circuit_max_open_for;
  sidecar->source_ = fetch::makeKmsSecretSource(sidecar->identity_.get(), std::move(backends),
                                                breaker, time_source);

  output::AtomicWriterOptions writer_options;
  writer_options.directory = config.output.directory;
  writer_options.file_mode = config.output.file_mode;
  writer_options.group = config.output.group;
  auto writer = output::makeAtomicWriter(writer_options, time_source);
  if (!writer.ok()) return writer.status();
  sidecar->writer_ = *std::move(writer);

  sidecar->engine_ = std::make_unique<sync::SyncEngine>(
      sidecar->config_, *sidecar->source_, *sidecar->writer_, time_source, *sidecar->random_);
  sidecar->runner_ = std::make_unique<sync::SyncRunner>(*sidecar->engine_, time_source);
  sidecar->metrics_listener_ = std::make_unique<FetchMetrics>(*sidecar->metrics_);
  sidecar->engine_->addListener(&sidecar->feed_);
  sidecar->engine_->addListener(sidecar->metrics_listener_.get());
  sync::SyncRunner* runner = sidecar->runner_.get();
  sidecar->refresher_ = std::make_unique<sync::RefreshCoordinator>(
      *sidecar->engine_, config.refresh, time_source, [runner] { runner->wake(); },
      [] { releaseFreedMemory(); });

  hooks::HookRunnerOptions hook_options;
  hook_options.output_directory = config.output.directory;
  hook_options.credentials_file =
      absl::StrCat(config.output.directory, "/", config::kCredentialsIniFile);
  if (const char* path = std::getenv("PATH"); path != nullptr && *path != '\0') {
    hook_options.path = path;
  }
  sidecar->processes_ = hooks::makeProcessTable();
  sidecar->spawner_ = hooks::makeCommandSpawner();
  std::vector<std::string> hook_names;
  for (const config::HookConfig& hook : config.hooks) hook_names.push_back(hook.name);
  metrics->hooksConfigured(hook_names);
  sidecar->hooks_ = std::make_unique<hooks::HookRunner>(
      config.hooks, std::move(hook_options), *sidecar->processes_, *sidecar->spawner_, time_source,
      [metrics](const std::string& hook, absl::string_view result, absl::Duration took) {
        metrics->hookRun(hook, result, took);
      });
  sidecar->engine_->addListener(sidecar->hooks_.get());
  if (config.local_api.enabled()) sidecar->engine_->addListener(&sidecar->published_);

  std::vector<std::string> profiles;
  for (const auto& profile : config.profiles) profiles.push_back(profile.name);
  log::info("configured", {{"identity", config::identityTypeName(config.identity.type)},
                           {"sts_endpoint", config.identity.sts_endpoint},
                           {"kms_endpoints", absl::StrJoin(config.kms.endpoints, ",")},
                           {"kms_instances", static_cast<long long>(config.kms.instances.size())},
                           {"profiles", absl::StrJoin(profiles, ",")},
                           {"output", config.output.directory},
                           {"hooks", absl::StrJoin(hook_names, ",")},
                           {"generation", static_cast<long long>(sidecar->writer_->generation())}});
  return sidecar;
}

absl::Status Sidecar::startServing() {
  const config::ControlConfig& control = config_.control;
  // Every listener sheds or refuses connections before the descriptors
  // that fetching and publishing need run out; a runtime's default soft
  // limit (often 1024) would make that happen early for no reason.
  log::info("descriptor limit",
            {{"limit", raiseDescriptorLimit()}, {"reserved_for_publishing", kDescriptorReserve}});
  server::ControlServiceOptions options;
  options.version = CREDSYNC_VERSION;
  options.refresh_timeout = control.refresh_timeout;
  if (!control.tcp_address.empty()) {
    absl::StatusOr<SecretString> token = server::loadOrCreatePodToken(
        control.token_file, absl::StrCat(config_.output.directory, "/", config::kControlTokenFile),
        config_.output.file_mode, config_.output.group);
    if (!token.ok()) return token.status();
    options.tcp_token = *std::move(token);
  }
  server::UnixPeerCheck unix_peers = server::makeUnixPeerCheck();
  options.is_unix_peer = unix_peers.check;
  control_ = std::make_unique<server::ControlService>(
      *engine_, *refresher_, feed_, *identity_, metrics_.get(), *time_source_, std::move(options));

  server::GrpcServerOptions grpc_options;
  grpc_options.socket_path = control.socket_path;
  grpc_options.socket_mode = control.socket_mode;
  grpc_options.socket_group = config_.output.group;
  grpc_options.tcp_address = control.tcp_address;
  grpc_options.before_accepting = unix_peers.bind;
  absl::StatusOr<std::unique_ptr<server::GrpcServer>> grpc = server::GrpcServer::start(
      grpc_options, control_.get(),
      server::HealthSources{[this] { return live(); }, [this] { return engine_->ready(); }},
      *time_source_);
  if (!grpc.ok()) return grpc.status();
  grpc_ = *std::move(grpc);
  log::info("control listening", {{"transport", "unix"}, {"address", control.socket_path}});
  if (!grpc_->tcpAddress().empty()) {
    log::info("control listening",
              {{"transport", "tcp"},
               {"address", grpc_->tcpAddress()},
               {"token", control.token_file.empty() ? absl::StrCat(config_.output.directory, "/",
                                                                   config::kControlTokenFile)
                                                    : control.token_file}});
  }

  if (!control.http_address.empty()) {
    server::ProbeHandlers handlers;
    handlers.live = [this] { return live(); };
    handlers.ready = [this] { return readiness(); };
    handlers.metrics = [this] { return renderMetrics(); };
    absl::StatusOr<std::unique_ptr<server::ProbeServer>> probes =
        server::ProbeServer::start(control.http_address, std::move(handlers), *time_source_);
    if (!probes.ok()) return probes.status();
    probes_ = *std::move(probes);
    log::info("http listening", {{"address", probes_->address()}});
  }
  if (config_.local_api.enabled()) {
    if (absl::Status status = startLocalApi(); !status.ok()) return status;
  }
  hooks_->start();
  return absl::OkStatus();
}

absl::Status Sidecar::startLocalApi() {
  const config::LocalApiConfig& local_api = config_.local_api;
  absl::StatusOr<localapi::LocalApiSecrets> secrets =
      localapi::readLocalApiSecrets(local_api, config::processEnvironment());
  if (!secrets.ok()) return secrets.status();
  const bool kms_agent = secrets->kms_agent_token.has_value();
  metrics::SidecarMetrics* metrics = metrics_.get();
  local_api_ = std::make_unique<localapi::LocalApiHandler>(
      config_.profiles, *std::move(secrets), local_api.refetch_within, published_, *time_source_,
      [metrics](absl::string_view api, int status) { metrics->localApiRequest(api, status); });
  server::ProbeHandlers handlers;
  localapi::LocalApiHandler* handler = local_api_.get();
  handlers.other = [handler](const httplib::Request& request, httplib::Response& response) {
    handler->handle(request, response);
  };
  absl::StatusOr<std::unique_ptr<server::ProbeServer>> server =
      server::ProbeServer::start(local_api.listen, std::move(handlers), *time_source_);
  if (!server.ok()) {
    return absl::Status(server.status().code(),
                        absl::StrCat("local_api.listen: ", server.status().message()));
  }
  local_api_server_ = *std::move(server);
  // Where the secrets came from, never what they are.
  log::info("local api listening",
            {{"address", local_api_server_->address()},
             {"credentials_uri", "/<path secret>/v1/credentials/<profile>"},
             {"path_secret_from", local_api.path_secret_file.empty()
                                      ? absl::StrCat("$", local_api.path_secret_env)
                                      : local_api.path_secret_file},
             {"kms_agent_api", kms_agent ? "on" : "off"},
             {"refetch_within", absl::FormatDuration(local_api.refetch_within)}});
  return absl::OkStatus();
}

void Sidecar::stop(absl::Duration grace) {
  feed_.close();
  if (grpc_ != nullptr) grpc_->shutdown(grace);
  // Callers still waiting after the grace period were cancelled by gRPC;
  // nothing new can arrive now.
  if (refresher_ != nullptr) refresher_->stop();
  if (probes_ != nullptr) probes_->stop();
  if (local_api_server_ != nullptr) local_api_server_->stop();
  runner_->stop();
  // After the runner: no change can arrive any more.
  if (hooks_ != nullptr) hooks_->stop(grace);
}

Sidecar::~Sidecar() {
  if (runner_ != nullptr) stop(absl::ZeroDuration());
}

bool Sidecar::live() const {
  const MonotonicTime heartbeat = runner_->heartbeat();
  // Before start() the heartbeat is unset: `run` starts the runner first
  // thing, so treat that as alive.
  if (heartbeat == MonotonicTime{}) return true;
  return absl::FromChrono(time_source_->monotonicTime() - heartbeat) < liveness_limit_;
}

server::Readiness Sidecar::readiness() const {
  server::Readiness readiness;
  readiness.ready = engine_->ready();
  if (readiness.ready) return readiness;
  std::vector<std::string> lines;
  for (const sync::ProfileStatus& status : engine_->status()) {
    if (!status.required) continue;
    if (!status.written) {
      lines.push_back(absl::StrCat(
          "profile ", status.name, ": not written yet",
          status.last_error.ok() ? "" : absl::StrCat(" (", status.last_error.message(), ")")));
    } else if (!status.last_error.ok()) {
      lines.push_back(absl::StrCat("profile ", status.name, ": key not known to be valid (",
                                   status.last_error.message(), ")"));
    }
  }
  readiness.detail = absl::StrJoin(lines, "\n");
  return readiness;
}

std::string Sidecar::renderMetrics() const {
  metrics::StateSnapshot state;
  for (const sync::ProfileStatus& status : engine_->status()) {
    state.profiles.push_back({status.name, status.generation, status.last_success, status.written});
  }
  state.session_expiration = identity_->status().session_expiration;
  state.ready = engine_->ready();
  state.generation = engine_->generation();
  state.watch_subscribers = feed_.subscribers();
  for (const fetch::EndpointHealth& health : source_->endpointHealth()) {
    state.endpoints.push_back(
        {health.endpoint, std::string(fetch::circuitStateName(health.state)), health.times_opened});
  }
  for (const KmsInstance& instance : instances_) {
    const alibaba::ClientKeyReloads reloads = instance.key->reloads();
    state.client_keys.push_back({instance.endpoint, reloads.succeeded, reloads.failed});
  }
  if (grpc_ != nullptr) {
    for (const auto& [name, gate] : grpc_->listenerStats()) {
      state.listeners.push_back({name, gate.open, gate.accepted, 0, 0, gate.refused_for_descriptors,
                                 gate.refused_at_limit});
    }
  }
  if (probes_ != nullptr) {
    const server::ProbeServerStats probes = probes_->stats();
    state.listeners.push_back({"http", probes.open_connections, probes.accepted, probes.shed,
                               probes.timed_out, probes.refused_for_descriptors, 0});
  }
  if (local_api_server_ != nullptr) {
    const server::ProbeServerStats local_api = local_api_server_->stats();
    state.listeners.push_back({"local_api", local_api.open_connections, local_api.accepted,
                               local_api.shed, local_api.timed_out,
                               local_api.refused_for_descriptors, 0});
  }
  return metrics_->render(state, time_source_->systemTime());
}

}  // namespace credsync::app
