// Fuzzes the loopback local API's handler on arbitrary request heads, parsed
// by httplib exactly as the listener parses them (the bytes any process in
// the pod, or a request smuggled through an SSRF, can send). Invariants: it
// never crashes; every answer carries Cache-Control: no-store; a key secret
// or the token appears only in a 200 answer, and only to a request that
// named the path secret or carried the token; neither the path secret nor
// the token is ever answered to a request that did not carry it; refusals
// (403, 404, 405, 413) have empty bodies or a JSON error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "sidecar/localapi/local_api.h"
#include "sidecar/server/http_head.h"

namespace {

constexpr char kPathSecret[] = "fuzzpathsecret0123456789abcdefgh";
constexpr char kToken[] = "fuzz-kms-agent-token";
constexpr char kKeySecret[] = "KEYSECRETVALUE";

void check(bool condition) {
  if (!condition) std::abort();
}

class FixedTime : public credsync::TimeSource {
 public:
  absl::Time systemTime() const override { return absl::FromUnixSeconds(1767225600); }
  credsync::MonotonicTime monotonicTime() const override { return {}; }
};

struct World {
  World() {
    credsync::config::ProfileConfig app;
    app.name = "app";
    app.secret_name = "acs/ram/user/app";
    app.is_default = true;
    auto set = std::make_shared<credsync::sync::PublishedSet>();
    credsync::sync::PublishedProfile published;
    published.name = "app";
    published.secret_name = app.secret_name;
    published.is_default = true;
    published.credential.access_key_id = "LTAIfuzz";
    published.credential.access_key_secret = credsync::SecretString(kKeySecret);
    published.credential.answer.secret_data =
        credsync::SecretString(std::string("{\"AccessKeySecret\":\"") + kKeySecret + "\"}");
    set->profiles.push_back(published);
    store.onPublished(set);
    credsync::localapi::LocalApiSecrets secrets;
    secrets.path_secret = credsync::SecretString(kPathSecret);
    secrets.kms_agent_token = credsync::SecretString(kToken);
    handler = std::make_unique<credsync::localapi::LocalApiHandler>(
        std::vector<credsync::config::ProfileConfig>{app}, std::move(secrets), absl::Seconds(60),
        store, time);
  }
  FixedTime time;
  credsync::localapi::PublishedStore store;
  std::unique_ptr<credsync::localapi::LocalApiHandler> handler;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  const std::string head(reinterpret_cast<const char*>(data), size);
  credsync::server::HttpCodec codec;
  bool handled = false;
  int status = 0;
  std::string body;
  bool cache_control = false;
  codec.set_pre_routing_handler([&](const httplib::Request& request, httplib::Response& response) {
    world->handler->handle(request, response);
    handled = true;
    status = response.status;
    body = response.body;
    cache_control = response.get_header_value("Cache-Control") == "no-store";
    return httplib::Server::HandlerResponse::Handled;
  });
  std::string output;
  credsync::server::HeadStream stream(-1, head, output);
  bool closed = false;
  codec.process_request(stream, true, closed, [](httplib::Request&) {});
  if (!handled) return 0;  // httplib refused the head itself
  check(cache_control);
  // (An error may echo the secret id asked for: the caller's own text.)
  const bool revealed = absl::StrContains(body, kKeySecret) && !absl::StrContains(head, kKeySecret);
  if (revealed) {
    check(status == 200);
    check(absl::StrContains(head, kPathSecret) || absl::StrContains(head, kToken));
  }
  // Nothing of credsync's own reaches someone who did not send it (an error
  // may name the secret id asked for, which is the caller's own text).
  for (const char* secret : {kToken, kPathSecret}) {
    if (!absl::StrContains(head, secret)) check(!absl::StrContains(body, secret));
  }
  if (status == 403 || status == 404 || status == 405 || status == 413) {
    check(body.empty() || absl::StartsWith(body, "{\"Code\":"));
  }
  return 0;
}
