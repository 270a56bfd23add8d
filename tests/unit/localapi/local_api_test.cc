#include "sidecar/localapi/local_api.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sidecar/server/http_head.h"
#include "tests/common/fake_environment.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

namespace credsync::localapi {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPathSecret[] = "0123456789abcdef0123456789abcdef-_.~";
constexpr char kToken[] = "kms-agent-token-0123456789";

config::ProfileConfig profile(const std::string& name, const std::string& secret, bool is_default,
                              config::ProfileKind kind = config::ProfileKind::kRamCredentials) {
  config::ProfileConfig config;
  config.name = name;
  config.secret_name = secret;
  config.is_default = is_default;
  config.kind = kind;
  return config;
}

sync::PublishedProfile published(const config::ProfileConfig& config, const std::string& key_id) {
  sync::PublishedProfile profile;
  profile.name = config.name;
  profile.secret_name = config.secret_name;
  profile.is_default = config.is_default;
  profile.credential.access_key_id = key_id;
  profile.credential.access_key_secret = SecretString(absl::StrCat("secret-of-", key_id));
  profile.credential.version_id = absl::StrCat("v-", key_id);
  profile.credential.answer.secret_name = config.secret_name;
  profile.credential.answer.secret_type = "RAMCredentials";
  profile.credential.answer.secret_data = SecretString(absl::StrCat(
      R"({"AccessKeyId":")", key_id, R"(","AccessKeySecret":"secret-of-)", key_id, R"("})"));
  profile.credential.answer.version_id = profile.credential.version_id;
  profile.credential.answer.version_stages = {"ACSCurrent"};
  return profile;
}

struct Answer {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class LocalApiHandlerTest : public ::testing::Test {
 protected:
  LocalApiHandlerTest()
      : profiles_({profile("app", "acs/ram/user/app", true),
                   profile("ops", "acs/ram/user/ops", false),
                   profile("db", "db-password", false, config::ProfileKind::kGeneric)}) {}

  std::unique_ptr<LocalApiHandler> handler(bool kms_agent = true) {
    LocalApiSecrets secrets;
    secrets.path_secret = SecretString(kPathSecret);
    if (kms_agent) secrets.kms_agent_token = SecretString(kToken);
    return std::make_unique<LocalApiHandler>(profiles_, std::move(secrets), absl::Seconds(60),
                                             store_, time_,
                                             [this](absl::string_view api, int status) {
                                               observed_.push_back(absl::StrCat(api, " ", status));
                                             });
  }

  void publish(std::vector<sync::PublishedProfile> profiles) {
    auto set = std::make_shared<sync::PublishedSet>();
    set->profiles = std::move(profiles);
    set->generation = ++generation_;
    store_.onPublished(set);
  }

  // One request head through httplib's own parser, as the listener does.
  Answer ask(const LocalApiHandler& handler, const std::string& head) {
    server::HttpCodec codec;
    codec.set_pre_routing_handler(
        [&](const httplib::Request& request, httplib::Response& response) {
          handler.handle(request, response);
          return httplib::Server::HandlerResponse::Handled;
        });
    std::string output;
    server::HeadStream stream(-1, head, output);
    bool closed = false;
    codec.process_request(stream, true, closed, [](httplib::Request&) {});
    Answer answer;
    const size_t end = output.find("\r\n\r\n");
    answer.body = end == std::string::npos ? "" : output.substr(end + 4);
    answer.status = std::stoi(output.substr(9, 3));
    for (absl::string_view line :
         absl::StrSplit(absl::string_view(output).substr(0, end), "\r\n")) {
      const size_t colon = line.find(": ");
      if (colon != absl::string_view::npos) {
        answer.headers.emplace(std::string(line.substr(0, colon)),
                               std::string(line.substr(colon + 2)));
      }
    }
    return answer;
  }

  Answer get(const LocalApiHandler& handler, const std::string& target,
             const std::string& extra_headers = "", const std::string& host = "127.0.0.1:8190") {
    return ask(handler, absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: ", host, "\r\n",
                                     extra_headers, "\r\n"));
  }

  static std::string uri(const std::string& profile) {
    return absl::StrCat("/", kPathSecret, "/v1/credentials/", profile);
  }

  std::vector<config::ProfileConfig> profiles_;
  PublishedStore store_;
  SimulatedTimeSource time_{absl::FromUnixSeconds(1767225600) + absl::Milliseconds(250)};
  uint64_t generation_ = 0;
  std::vector<std::string> observed_;
};

// Verifies the document for the default profile, by name and as "default",
// always from the latest published set.
TEST_F(LocalApiHandlerTest, ServesTheLatestPublishedKey) {
  const auto api = handler();
  publish({published(profiles_[0], "LTAIfirst"), published(profiles_[1], "LTAIops")});
  Answer answer = get(*api, uri("app"));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.header("Cache-Control"), "no-store");
  EXPECT_EQ(answer.header("Content-Type"), "application/json");
  json document = json::parse(answer.body);
  EXPECT_EQ(document["AccessKeyId"], "LTAIfirst");
  EXPECT_EQ(document["AccessKeySecret"], "secret-of-LTAIfirst");
  EXPECT_EQ(document["SecurityToken"], "");
  EXPECT_EQ(document["Expiration"], "2026-01-01T00:16:00Z");  // 900 s + 60 s, whole seconds
  EXPECT_EQ(json::parse(get(*api, uri("default")).body)["AccessKeyId"], "LTAIfirst");
  EXPECT_EQ(json::parse(get(*api, uri("ops")).body)["AccessKeyId"], "LTAIops");

  publish({published(profiles_[0], "LTAIsecond"), published(profiles_[1], "LTAIops")});
  EXPECT_EQ(json::parse(get(*api, uri("default")).body)["AccessKeyId"], "LTAIsecond");
  EXPECT_THAT(observed_, ::testing::Each("credentials_uri 200"));
}

// Verifies Go's User-Agent gets the 180-second margin.
TEST_F(LocalApiHandlerTest, GoGetsItsOwnExpiration) {
  const auto api = handler();
  publish({published(profiles_[0], "LTAIfirst")});
  const Answer answer =
      get(*api, uri("app"),
          "User-Agent: AlibabaCloud (linux; amd64) Golang/1.22.5 Credentials/1.4.7 TeaDSL/1\r\n");
  EXPECT_EQ(json::parse(answer.body)["Expiration"], "2026-01-01T00:04:00Z");  // 180 s + 60 s
}

// Verifies 503 before the first publish, and 404 with a reason for a
// generic or unknown profile once the secret was right.
TEST_F(LocalApiHandlerTest, ExplainsMissingProfilesToSecretHolders) {
  const auto api = handler();
  Answer answer = get(*api, uri("app"));
  EXPECT_EQ(answer.status, 503);
  EXPECT_EQ(answer.header("Retry-After"), "1");
  EXPECT_EQ(json::parse(answer.body)["Code"], "NotReady");
  publish({published(profiles_[0], "LTAIfirst")});
  EXPECT_EQ(get(*api, uri("ops")).status, 503);  // configured, not yet written
  answer = get(*api, uri("db"));
  EXPECT_EQ(answer.status, 404);
  EXPECT_THAT(json::parse(answer.body)["Message"].get<std::string>(), HasSubstr("generic"));
  answer = get(*api, uri("nosuch"));
  EXPECT_EQ(answer.status, 404);
  EXPECT_EQ(json::parse(answer.body)["Code"], "NotFound");
}

// Verifies that without the exact path secret nothing is revealed: 404 and
// no body, whatever else the path says.
TEST_F(LocalApiHandlerTest, WrongSecretIsAnEmpty404) {
  // The KMS Agent API off: with it, /v1/<anything> is its path (token first).
  const auto api = handler(/*kms_agent=*/false);
  publish({published(profiles_[0], "LTAIfirst")});
  const std::string secret = kPathSecret;
  for (const std::string& target :
       {std::string("/v1/credentials/app"), std::string("/"), absl::StrCat("/", secret),
        absl::StrCat("/", secret.substr(1), "/v1/credentials/app"),
        absl::StrCat("/", secret, "x/v1/credentials/app"),
        absl::StrCat("/", secret.substr(0, 31), "/v1/credentials/app"),
        absl::StrCat("//", secret, "/v1/credentials/app"),
        absl::StrCat("/%30", secret.substr(1), "/v1/credentials/app"),
        absl::StrCat("/", secret, "/v1/credentials/"),
        absl::StrCat("/", secret, "/v1/credentials/app/x"),
        absl::StrCat("/", secret, "/v2/credentials/app"), std::string("/healthz"),
        std::string("/metrics")}) {
    const Answer answer = get(*api, target);
    EXPECT_EQ(answer.status, 404) << target;
    EXPECT_EQ(answer.body, "") << target;
    EXPECT_EQ(answer.header("Cache-Control"), "no-store") << target;
  }
}

// Verifies the forwarding rules: a proxy's headers, a Host that is not
// loopback, two Hosts, or an absolute-form target are refused before the
// path is looked at, with no body.
TEST_F(LocalApiHandlerTest, RefusesWhatDidNotComeStraightFromThePod) {
  const auto api = handler();
  publish({published(profiles_[0], "LTAIfirst")});
  for (const char* header : {"X-Forwarded-For: 10.0.0.1\r\n", "Forwarded: for=10.0.0.1\r\n",
                             "Via: 1.1 proxy\r\n", "X-Real-IP: 10.0.0.1\r\n",
                             "X-Forwarded-Host: evil.example\r\n", "x-forwarded-proto: http\r\n",
                             "Proxy-Authorization: Basic eDp5\r\n", "Host: 127.0.0.1\r\n"}) {
    const Answer answer = get(*api, uri("app"), header);
    EXPECT_EQ(answer.status, 403) << header;
    EXPECT_EQ(answer.body, "") << header;
  }
  for (const char* host :
       {"evil.example", "evil.example:8190", "169.254.100.200", "127.0.0.1.evil.example",
        "0177.0.0.1", "[::2]", "10.0.0.1:8190", "localhost.evil.example"}) {
    EXPECT_EQ(get(*api, uri("app"), "", std::string(host)).status, 403) << host;
  }
  for (const char* host : {"127.0.0.1", "127.0.0.1:8190", "127.1.2.3:80", "localhost",
                           "LOCALHOST:8190", "[::1]:8190", "[::1]"}) {
    EXPECT_EQ(get(*api, uri("app"), "", std::string(host)).status, 200) << host;
  }
  EXPECT_EQ(ask(*api, absl::StrCat("GET http://127.0.0.1:8190", uri("app"),
                                   " HTTP/1.1\r\nHost: 127.0.0.1:8190\r\n\r\n"))
                .status,
            403);
  // HTTP/1.0 without a Host: what came straight from a local process.
  EXPECT_EQ(ask(*api, absl::StrCat("GET ", uri("app"), " HTTP/1.0\r\n\r\n")).status, 200);
  EXPECT_THAT(observed_, ::testing::Contains("refused 403"));
}

// Verifies GET only, and no body.
TEST_F(LocalApiHandlerTest, GetOnlyAndNoBody) {
  const auto api = handler();
  publish({published(profiles_[0], "LTAIfirst")});
  for (const char* method : {"POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"}) {
    const Answer answer =
        ask(*api, absl::StrCat(method, " ", uri("app"), " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    EXPECT_EQ(answer.status, 405) << method;
    EXPECT_EQ(answer.header("Allow"), "GET") << method;
    EXPECT_EQ(answer.body, "") << method;
  }
  // A wrong secret stays a 404 whatever the method: nothing to probe with.
  EXPECT_EQ(ask(*api, "POST /x/v1/credentials/app HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").status,
            404);
  EXPECT_EQ(get(*api, uri("app"), "Content-Length: 5\r\n").status, 413);
  EXPECT_EQ(get(*api, uri("app"), "Transfer-Encoding: chunked\r\n").status, 413);
}

// Verifies the KMS Agent API: both paths, the token in either header, the
// GetSecretValue answer, and the refusals.
TEST_F(LocalApiHandlerTest, KmsAgentApi) {
  const auto api = handler();
  publish({published(profiles_[0], "LTAIfirst")});
  const std::string token = absl::StrCat("X-KMS-Token: ", kToken, "\r\n");
  Answer answer = get(*api, "/v1/acs%2Fram%2Fuser%2Fapp", token);
  ASSERT_EQ(answer.status, 200) << answer.body;
  json document = json::parse(answer.body);
  EXPECT_EQ(document["SecretName"], "acs/ram/user/app");
  EXPECT_THAT(document["SecretData"].get<std::string>(), HasSubstr("LTAIfirst"));
  EXPECT_EQ(document["VersionId"], "v-LTAIfirst");
  // With the KMS Agent API on, a credentials path without the path secret is
  // one of its paths: the token is asked for first.
  EXPECT_EQ(get(*api, "/v1/credentials/app").status, 403);
  // Slashes as they are, as Go's agent takes the rest of the path.
  EXPECT_EQ(get(*api, "/v1/acs/ram/user/app", token).status, 200);
  answer = get(*api, "/secretsmanager/get?secretId=acs%2Fram%2Fuser%2Fapp",
               absl::StrCat("X-Vault-Token: ", kToken, "\r\n"));
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.header("Cache-Control"), "no-store");

  EXPECT_EQ(get(*api, "/v1/acs%2Fram%2Fuser%2Fapp").status, 403);
  // The token before the method: a POST without it learns nothing more.
  EXPECT_EQ(ask(*api, "POST /v1/acs%2Fram%2Fuser%2Fapp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").status,
            403);
  EXPECT_EQ(
      ask(*api, absl::StrCat("POST /v1/acs%2Fram%2Fuser%2Fapp HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                             token, "\r\n"))
          .status,
      405);
  const std::string wrong(kToken);
  for (const std::string& guess :
       {wrong.substr(1), absl::StrCat(wrong, "x"),
        absl::StrCat(wrong.substr(0, wrong.size() - 1), "X"), std::string("")}) {
    answer = get(*api, "/v1/acs%2Fram%2Fuser%2Fapp", absl::StrCat("X-KMS-Token: ", guess, "\r\n"));
    EXPECT_EQ(answer.status, 403) << guess;
    EXPECT_THAT(answer.body, Not(HasSubstr("LTAI")));
  }
  EXPECT_EQ(get(*api, "/v1/acs%2Fram%2Fuser%2Fapp", token + token).status, 403);  // two tokens
  EXPECT_EQ(get(*api, "/v1/nosuch", token).status, 404);
  EXPECT_EQ(get(*api, "/secretsmanager/get", token).status, 400);
  EXPECT_EQ(get(*api, "/secretsmanager/get?secretId=acs%2Fram%2Fuser%2Fapp&x=1", token).status,
            400);
  EXPECT_EQ(get(*api, "/secretsmanager/get?secretId=acs%2Fram%2Fuser%2Fapp&refreshNow=maybe", token)
                .status,
            400);
  EXPECT_EQ(get(*api, "/secretsmanager/get?secretId=acs%2Fram%2Fuser%2Fapp&refreshNow=TRUE", token)
                .status,
            200);
  EXPECT_EQ(
      get(*api, "/secretsmanager/get?secretId=acs%2Fram%2Fuser%2Fapp&versionStage=ACSPrevious",
          token)
          .status,
      404);
  EXPECT_EQ(
      get(*api, "/secretsmanager/get?secretId=acs%2Fram%2Fuser%2Fapp&versionId=v-LTAIfirst", token)
          .status,
      200);
  EXPECT_EQ(get(*api, "/secretsmanager/get?secretId=acs%2Fram%2Fuser%2Fops", token).status, 503);
  EXPECT_EQ(get(*api, "/v1/acs%2Fram%2Fuser%2Fapp", token, "evil.example").status, 403);
}

// Verifies the KMS Agent paths do not exist without a token configured.
TEST_F(LocalApiHandlerTest, KmsAgentApiOffWithoutToken) {
  const auto api = handler(/*kms_agent=*/false);
  publish({published(profiles_[0], "LTAIfirst")});
  const Answer answer =
      get(*api, "/v1/acs%2Fram%2Fuser%2Fapp", absl::StrCat("X-KMS-Token: ", kToken, "\r\n"));
  EXPECT_EQ(answer.status, 404);
  EXPECT_EQ(answer.body, "");
}

// Verifies the secrets' rules: length and characters, file or variable,
// surrounding whitespace dropped, errors naming the key but never the value.
TEST(ReadLocalApiSecretsTest, ChecksAndReads) {
  TempDir dir("localapi");
  config::LocalApiConfig config;
  config.listen = "127.0.0.1:8190";
  config.path_secret_env = "PATH_SECRET";
  absl::StatusOr<LocalApiSecrets> secrets = readLocalApiSecrets(
      config, testing::fakeEnvironment({{"PATH_SECRET", absl::StrCat(kPathSecret, "\n")}}));
  ASSERT_THAT(secrets, IsOk());
  EXPECT_EQ(secrets->path_secret.reveal(), kPathSecret);
  EXPECT_FALSE(secrets->kms_agent_token.has_value());

  for (const std::string& bad :
       {std::string("short"), std::string(31, 'a'), absl::StrCat(std::string(32, 'a'), "/"),
        absl::StrCat(std::string(32, 'a'), " b")}) {
    secrets = readLocalApiSecrets(config, testing::fakeEnvironment({{"PATH_SECRET", bad}}));
    EXPECT_THAT(secrets, StatusIs(absl::StatusCode::kInvalidArgument,
                                  HasSubstr("local_api.path_secret_env (PATH_SECRET)")))
        << bad;
    if (bad.size() > 8) {
      EXPECT_THAT(secrets.status().message(), Not(HasSubstr(bad)));
    }
  }
  EXPECT_THAT(readLocalApiSecrets(config, testing::fakeEnvironment({})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PATH_SECRET is unset")));

  config.path_secret_env.clear();
  config.path_secret_file = dir.file("secret");
  EXPECT_THAT(readLocalApiSecrets(config, testing::fakeEnvironment({})),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir.file("secret"))));
  {
    std::FILE* file = std::fopen(dir.file("secret").c_str(), "w");
    std::fputs("  0123456789abcdef0123456789abcdef\n", file);
    std::fclose(file);
  }
  config.kms_agent_token_env = "KMS_TOKEN";
  EXPECT_THAT(readLocalApiSecrets(config, testing::fakeEnvironment({{"KMS_TOKEN", "short"}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("local_api.kms_agent_token_env (KMS_TOKEN)")));
  secrets = readLocalApiSecrets(config, testing::fakeEnvironment({{"KMS_TOKEN", kToken}}));
  ASSERT_THAT(secrets, IsOk());
  EXPECT_EQ(secrets->path_secret.reveal(), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(secrets->kms_agent_token->reveal(), kToken);
}

}  // namespace
}  // namespace credsync::localapi
