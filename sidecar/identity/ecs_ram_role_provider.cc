#include "sidecar/identity/ecs_ram_role_provider.h"

#include <memory>
#include <utility>

#include "sidecar/alibaba/ecs_metadata_client.h"
#include "sidecar/identity/session_provider.h"

namespace credsync::identity {

CredentialProviderPtr makeEcsRamRoleProvider(const config::IdentityConfig& config,
                                             http::Client& http, const TimeSource& time_source,
                                             Random& random) {
  alibaba::EcsMetadataOptions options;
  options.endpoint = config.ecs_metadata_endpoint;
  options.role_name = config.ecs_role_name;
  options.imdsv1_fallback = config.ecs_imdsv1_fallback;
  options.token_ttl = config.ecs_metadata_token_ttl;
  // Shared, because std::function needs a copyable callable.
  std::shared_ptr<alibaba::EcsMetadataClient> client =
      alibaba::makeEcsMetadataClient(http, std::move(options));
  SessionExchange exchange = [client]() { return client->fetchRoleCredentials(); };
  return makeSessionProvider({"ecs_ram_role", "ECS RAM role identity", "instance metadata"},
                             std::move(exchange), time_source, random);
}

}  // namespace credsync::identity
