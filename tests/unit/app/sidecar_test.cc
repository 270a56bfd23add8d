#include "sidecar/app/sidecar.h"

#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/fake_environment.h"
#include "tests/common/fake_http_client.h"
#include "tests/common/read_file.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"

namespace credsync::app {
namespace {

using ::credsync::testing::fakeEnvironment;
using ::credsync::testing::FakeHttpClient;
using ::credsync::testing::IsOk;
using ::credsync::testing::SimulatedTimeSource;
using ::credsync::testing::StatusIs;
using ::credsync::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kInstance[] = "https://kst-1.cryptoservice.kms.aliyuncs.com";

// A forwarding transport, so that the sidecar owns what it was given while
// the test keeps the fake to script and inspect.
class ForwardingClient : public http::Client {
 public:
  explicit ForwardingClient(http::Client& target) : target_(target) {}
  absl::StatusOr<http::Response> send(const http::Request& request) override {
    return target_.send(request);
  }

 private:
  http::Client& target_;
};

// Every transport the sidecar asked for, by its options; all send to one fake.
struct Transports {
  FakeHttpClient fake;
  std::vector<http::CurlClientOptions> made;

  Sidecar::TransportFactory factory() {
    return [this](const http::CurlClientOptions& options) -> http::ClientPtr {
      made.push_back(options);
      return std::make_unique<ForwardingClient>(fake);
    };
  }
};

// A GetSecretValue answer for a RAM credentials secret.
http::Response kmsAnswer(const std::string& access_key_id) {
  const nlohmann::json data = {{"AccessKeyId", access_key_id},
                               {"AccessKeySecret", "WiredSecretValue0123456789"},
                               {"GenerateTimestamp", "2026-01-01T00:00:00Z"}};
  http::Response response;
  response.status = 200;
  response.body = nlohmann::json{{"RequestId", "R"},
                                 {"SecretName", "acs/ram/user/app"},
                                 {"SecretType", "RAMCredentials"},
                                 {"SecretData", data.dump()},
                                 {"SecretDataType", "text"},
                                 {"VersionId", "v1"},
                                 {"VersionStages", {{"VersionStage", {"ACSCurrent"}}}}}
                      .dump();
  return response;
}

// A config of a static identity and one OpenAPI endpoint, writing to `dir`.
config::Config openApiConfig(const TempDir& dir, const std::string& signature) {
  const std::string text = absl::StrCat(
      "identity: {type: static}\n"
      "kms: {endpoints: [\"https://kms.test\"], signature: ",
      signature,
      "}\n"
      "output: {directory: ",
      dir.path(),
      "}\n"
      "control: {http_address: \"127.0.0.1:0\"}\n"
      "profiles:\n  - {name: app, secret_name: acs/ram/user/app}\n");
  absl::StatusOr<config::Config> config =
      config::parseConfig(text, fakeEnvironment({{"ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tStatic"},
                                                 {"ALIBABA_CLOUD_ACCESS_KEY_SECRET", "static"}}));
  EXPECT_THAT(config, IsOk());
  return *config;
}

std::string testdata(const std::string& name) {
  return std::string(CREDSYNC_ALIBABA_TESTDATA) + "/" + name;
}

// Verifies the sidecar refuses keys that are not one per KMS instance: it
// has no way to open a missing one itself.
TEST(SidecarTest, CreateNeedsOneClientKeyPerInstance) {
  TempDir dir("sidecar_keys");
  config::Config config = openApiConfig(dir, "acs3");
  config::KmsInstanceConfig instance;
  instance.endpoint = kInstance;
  config.kms.instances = {instance};
  SimulatedTimeSource time;
  Transports transports;
  EXPECT_THAT(Sidecar::create(config, ClientKeys{}, time, transports.factory()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("one client key per KMS instance: got 0 for 1")));
}

// Verifies the sidecar signs with the key it was handed and opens none
// itself: the key files are gone before create(), which still succeeds; the
// instance gets a transport of its own with its CA and verification setting.
TEST(SidecarTest, UsesTheOpenedClientKeysAndOpensNone) {
  TempDir dir("sidecar_instance");
  std::filesystem::copy_file(testdata("java_sdk_client_key.json"), dir.file("ck.json"));
  std::filesystem::copy_file(testdata("java_sdk_client_key_password.txt"), dir.file("pw.txt"));
  config::Config config = openApiConfig(dir, "acs3");
  config::KmsInstanceConfig instance;
  instance.endpoint = kInstance;
  instance.region_id = "cn-hangzhou";
  instance.client_key_file = dir.file("ck.json");
  instance.password_file = dir.file("pw.txt");
  instance.ca_file = dir.file("instance-ca.pem");
  instance.verify = false;
  config.kms.instances = {instance};
  absl::StatusOr<ClientKeys> keys = openClientKeys(config.kms, fakeEnvironment());
  ASSERT_THAT(keys, IsOk());
  std::filesystem::remove(dir.file("ck.json"));
  std::filesystem::remove(dir.file("pw.txt"));

  SimulatedTimeSource time;
  Transports transports;
  auto sidecar = Sidecar::create(config, *std::move(keys), time, transports.factory());
  ASSERT_THAT(sidecar, IsOk());
  ASSERT_THAT(transports.made, SizeIs(2));
  EXPECT_EQ(transports.made[0].ca_file, "");
  EXPECT_TRUE(transports.made[0].verify_tls);
  EXPECT_EQ(transports.made[1].ca_file, dir.file("instance-ca.pem"));
  EXPECT_FALSE(transports.made[1].verify_tls);
  EXPECT_THAT((*sidecar)->renderMetrics(),
              HasSubstr(absl::StrCat("credsync_kms_instance_client_key_reloads_total{endpoint=\"",
                                     kInstance, "\",result=\"ok\"} 0")));
}

// Verifies the wiring from config to file: one round fetches the profile
// through the transport, signed as kms.signature says, and publishes
// credentials.ini in the output directory.
TEST(SidecarTest, OneRoundFetchesWithTheConfiguredSignatureAndPublishes) {
  for (const auto& [signature, mark] :
       {std::pair<std::string, std::string>{"acs3", "ACS3-HMAC-SHA256"},
        std::pair<std::string, std::string>{"hmac-sha1", "SignatureMethod=HMAC-SHA1"}}) {
    SCOPED_TRACE(signature);
    TempDir dir("sidecar_round");
    SimulatedTimeSource time;
    Transports transports;
    transports.fake.enqueueResponse(kmsAnswer("LTAI5tWiredKey0001"));
    auto sidecar =
        Sidecar::create(openApiConfig(dir, signature), ClientKeys{}, time, transports.factory());
    ASSERT_THAT(sidecar, IsOk());
    (*sidecar)->engine().runDue();

    const std::vector<http::Request> requests = transports.fake.requests();
    ASSERT_THAT(requests, SizeIs(1));
    EXPECT_TRUE(absl::StartsWith(requests[0].url, "https://kms.test/")) << requests[0].url;
    std::string signed_parts = requests[0].url + "\n" + requests[0].body;
    for (const auto& [name, value] : requests[0].headers)
      absl::StrAppend(&signed_parts, "\n", value);
    EXPECT_THAT(signed_parts, HasSubstr(mark));
    EXPECT_TRUE((*sidecar)->engine().allWritten());
    EXPECT_THAT(testing::readFile(dir.file("credentials.ini")),
                HasSubstr("access_key_id = LTAI5tWiredKey0001"));
  }
}

// Verifies start and stop with the control plane in a temporary directory:
// the socket appears with the configured mode, readiness explains what is
// missing before the first write, and stop() may be called twice.
TEST(SidecarTest, ServesUntilStopped) {
  TempDir dir("sidecar_serve");
  SimulatedTimeSource time;
  Transports transports;
  auto sidecar =
      Sidecar::create(openApiConfig(dir, "acs3"), ClientKeys{}, time, transports.factory());
  ASSERT_THAT(sidecar, IsOk());
  ASSERT_THAT((*sidecar)->startServing(), IsOk());
  struct stat socket_stat {};
  ASSERT_EQ(stat(dir.file("credsync.sock").c_str(), &socket_stat), 0);
  EXPECT_TRUE(S_ISSOCK(socket_stat.st_mode));
  EXPECT_EQ(socket_stat.st_mode & 0777, 0660u);

  EXPECT_TRUE((*sidecar)->live());
  const server::Readiness readiness = (*sidecar)->readiness();
  EXPECT_FALSE(readiness.ready);
  EXPECT_EQ(readiness.detail, "profile app: not written yet");

  (*sidecar)->stop(absl::ZeroDuration());
  (*sidecar)->stop(absl::ZeroDuration());
  EXPECT_THAT(transports.fake.requests(), IsEmpty());
}

// Verifies liveness follows the scheduler's heartbeat on the injected
// clock: alive right after a round, dead once the heartbeat is older than
// the longest round the config allows (here 2 minutes).
TEST(SidecarTest, LivenessFollowsTheHeartbeat) {
  TempDir dir("sidecar_live");
  SimulatedTimeSource time;
  time.advance(absl::Seconds(1));  // a heartbeat at the clock's zero would mean "not started"
  Transports transports;
  transports.fake.enqueueResponse(kmsAnswer("LTAI5tWiredKey0002"));
  auto sidecar =
      Sidecar::create(openApiConfig(dir, "acs3"), ClientKeys{}, time, transports.factory());
  ASSERT_THAT(sidecar, IsOk());
  // Two passes of the loop on this thread; the wait between them (1 ms of
  // real time at most) records the heartbeat.
  int passes = 0;
  EXPECT_TRUE((*sidecar)->runner().runUntil([&] { return ++passes == 2; }, absl::Milliseconds(1)));
  EXPECT_TRUE((*sidecar)->readiness().ready);
  EXPECT_TRUE((*sidecar)->live());
  time.advance(absl::Minutes(2) - absl::Seconds(1));
  EXPECT_TRUE((*sidecar)->live());
  time.advance(absl::Seconds(2));
  EXPECT_FALSE((*sidecar)->live());
  EXPECT_THAT(transports.fake.requests(), SizeIs(1));
}

}  // namespace
}  // namespace credsync::app
