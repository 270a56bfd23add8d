#include "sidecar/app/sidecar.h"

#include "absl/strings/str_join.h"
#include "sidecar/common/logging.h"
#include "sidecar/http/curl_client.h"
#include "sidecar/identity/oidc_provider.h"

namespace credsync::app {

absl::StatusOr<std::unique_ptr<Sidecar>> Sidecar::create(const config::Config& config,
                                                         const TimeSource& time_source) {
  std::unique_ptr<Sidecar> sidecar(new Sidecar());
  sidecar->config_ = config;
  sidecar->random_ = makeRandom();

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
  sidecar->http_ = http::makeCurlClient(http_options);

  if (config.identity.type == config::IdentityType::kOidc) {
    sidecar->sts_ =
        alibaba::makeStsClient(*sidecar->http_, time_source, config.identity.sts_endpoint);
    sidecar->identity_ =
        identity::makeOidcProvider(config.identity, *sidecar->sts_, time_source, *sidecar->random_);
  } else {
    sidecar->identity_ = identity::makeStaticProvider(config.identity);
  }
  sidecar->kms_ = alibaba::makeKmsClient(*sidecar->http_, time_source, config.kms.signature);
  sidecar->source_ =
      fetch::makeKmsSecretSource(*sidecar->identity_, *sidecar->kms_, config.kms.endpoints);

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

  std::vector<std::string> profiles;
  for (const auto& profile : config.profiles) profiles.push_back(profile.name);
  log::info("configured",
            {{"identity", config.identity.type == config::IdentityType::kOidc ? "oidc" : "static"},
             {"sts_endpoint", config.identity.sts_endpoint},
             {"kms_endpoints", absl::StrJoin(config.kms.endpoints, ",")},
             {"profiles", absl::StrJoin(profiles, ",")},
             {"output", config.output.directory},
             {"generation", static_cast<long long>(sidecar->writer_->generation())}});
  return sidecar;
}

}  // namespace credsync::app
