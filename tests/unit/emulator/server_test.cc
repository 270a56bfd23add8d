#include "tests/emulator/server.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/crypto.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"
#include "tests/emulator/oidc_issuer.h"
#include "tests/emulator/pki.h"
#include "tests/emulator/world.h"

// The admin features the fault and hostile-body e2e suites rely on, over
// real loopback HTTPS: `body` faults and the wrong-host listener.
namespace credsync::emulator {
namespace {

using ::credsync::testing::IsOk;
using ::testing::HasSubstr;

class EmulatorServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "/emulator_server_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
    root_ = dir_template;
    auto pki = loadOrCreatePki(root_, {"localhost"}, {"127.0.0.1"});
    ASSERT_THAT(pki, IsOk());
    pki_ = std::make_unique<Pki>(*std::move(pki));
    issuer_ = makeOidcIssuer(*pki_, "https://issuer.example");
    ServerOptions options;
    options.cert_path = pki_->server_cert_path;
    options.key_path = pki_->server_key_path;
    options.wrong_host_cert_path = pki_->wrong_host_cert_path;
    options.wrong_host_key_path = pki_->wrong_host_key_path;
    server_ = std::make_unique<EmulatorServer>(world_, *issuer_, options);
    auto port = server_->start();
    ASSERT_THAT(port, IsOk());
    port_ = *port;
  }

  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(root_);
  }

  // A client of the main listener that verifies the chain and the host.
  std::unique_ptr<httplib::SSLClient> client(int port = 0) {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port == 0 ? port_ : port);
    c->set_ca_cert_path(pki_->ca_cert_path.c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(5);
    c->set_read_timeout(10);
    return c;
  }

  httplib::Result admin(const std::string& method, const std::string& path,
                        const nlohmann::json& body = nlohmann::json::object()) {
    auto c = client();
    if (method == "POST") return c->Post(path.c_str(), body.dump(), "application/json");
    if (method == "DELETE") return c->Delete(path.c_str());
    return c->Get(path.c_str());
  }

  // GetSecretValue as far as the fault table is concerned: the action and
  // version route it; faults answer before any signature check.
  httplib::Result getSecretValue(httplib::SSLClient& c) {
    return c.Get("/?Action=GetSecretValue&Version=2016-01-20&SecretName=s");
  }

  nlohmann::json counters() {
    auto res = admin("GET", "/admin/counters");
    EXPECT_TRUE(res);
    return res ? nlohmann::json::parse(res->body) : nlohmann::json();
  }

  std::string root_;
  std::unique_ptr<Pki> pki_;
  testing::SimulatedTimeSource time_;
  World world_{time_, "1234567890123456", "cn-hangzhou"};
  std::unique_ptr<OidcIssuer> issuer_;
  std::unique_ptr<EmulatorServer> server_;
  int port_ = 0;
};

// Verifies a `body` fault answers exactly the chosen bytes (also raw bytes
// through body_base64, and with a chosen status), counted as InjectedBody.
TEST_F(EmulatorServerTest, BodyFaultAnswersChosenBytes) {
  auto added = admin("POST", "/admin/faults",
                     {{"action", "GetSecretValue"}, {"kind", "body"}, {"body", "{\"a\":[1,2"}});
  ASSERT_TRUE(added);
  ASSERT_EQ(added->status, 200) << added->body;
  auto c = client();
  auto res = getSecretValue(*c);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "{\"a\":[1,2");

  ASSERT_TRUE(admin("DELETE", "/admin/faults"));
  const std::string raw("{\"SecretData\":\"\xff\xfe\x80\"}", 20);
  added = admin("POST", "/admin/faults",
                {{"action", "GetSecretValue"},
                 {"kind", "body"},
                 {"status", 502},
                 {"chunked", true},
                 {"body_base64", crypto::base64Encode(raw)}});
  ASSERT_EQ(added->status, 200) << added->body;
  res = getSecretValue(*c);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 502);
  EXPECT_EQ(res->body, raw);
  EXPECT_FALSE(res->has_header("Content-Length"));
  EXPECT_EQ(counters()["actions"]["GetSecretValue"]["failures"]["InjectedBody"], 2);
}

// Verifies a huge body is exactly huge_bytes of one JSON object, with a
// Content-Length or chunked, so clients' response caps can be tested.
TEST_F(EmulatorServerTest, HugeBodyIsExactSizeJson) {
  for (const bool chunked : {false, true}) {
    ASSERT_TRUE(admin("DELETE", "/admin/faults"));
    auto added =
        admin("POST", "/admin/faults",
              {{"action", "*"}, {"kind", "body"}, {"huge_bytes", 300000}, {"chunked", chunked}});
    ASSERT_EQ(added->status, 200) << added->body;
    auto c = client();
    auto res = getSecretValue(*c);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    ASSERT_EQ(res->body.size(), 300000u) << "chunked " << chunked;
    EXPECT_EQ(res->has_header("Content-Length"), !chunked);
    const nlohmann::json parsed = nlohmann::json::parse(res->body, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded());
    EXPECT_EQ(parsed["RequestId"], "HUGE-BODY");
  }
}

// Verifies bad `body` faults are refused with a message naming the field.
TEST_F(EmulatorServerTest, BodyFaultValidation) {
  struct Case {
    nlohmann::json fault;
    std::string message;
  };
  const Case cases[] = {
      {{{"action", "*"}, {"kind", "body"}}, "exactly one of body, body_base64, huge_bytes"},
      {{{"action", "*"}, {"kind", "body"}, {"body", "x"}, {"huge_bytes", 5}}, "exactly one"},
      {{{"action", "*"}, {"kind", "body"}, {"body_base64", "!!"}}, "body_base64"},
      {{{"action", "*"}, {"kind", "body"}, {"huge_bytes", 0}}, "huge_bytes"},
      {{{"action", "*"}, {"kind", "body"}, {"body", "x"}, {"status", 99}}, "status"},
      {{{"action", "*"}, {"kind", "body"}, {"body", "x"}, {"chunked", "yes"}}, "chunked"},
      {{{"action", "*"}, {"kind", "http_5xx"}, {"status", 200}}, "5xx"},
  };
  for (const Case& c : cases) {
    auto res = admin("POST", "/admin/faults", c.fault);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << c.fault.dump();
    EXPECT_THAT(res->body, HasSubstr(c.message)) << c.fault.dump();
  }
}

// Verifies the wrong-host listener: started once (the same port again), its
// certificate chains to the CA but a client verifying the host 127.0.0.1
// refuses it; each handshake is counted; a client that skips verification
// reaches the same APIs.
TEST_F(EmulatorServerTest, WrongHostListener) {
  auto started = admin("POST", "/admin/listeners", {{"certificate", "wrong_host"}});
  ASSERT_TRUE(started);
  ASSERT_EQ(started->status, 200) << started->body;
  const nlohmann::json answer = nlohmann::json::parse(started->body);
  const int port = answer["port"];
  EXPECT_GT(port, 0);
  EXPECT_NE(port, port_);
  EXPECT_EQ(answer["certificate_name"], kWrongHostName);
  auto again = admin("POST", "/admin/listeners", {{"certificate", "wrong_host"}});
  EXPECT_EQ(nlohmann::json::parse(again->body)["port"], port);

  for (int i = 0; i < 3; ++i) {
    auto verifying = client(port);
    auto res = verifying->Get("/admin/health");
    EXPECT_FALSE(res) << "a verifying client accepted the wrong-host certificate";
  }
  const nlohmann::json counted = counters()["actions"]["TLSHandshake"];
  EXPECT_EQ(counted["requests"], 3) << counted.dump();
  EXPECT_EQ(counted["failures"]["WrongHostCertificate"], 3) << counted.dump();

  // The chain itself is good: only the name is wrong.
  auto by_name = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  by_name->set_ca_cert_path(pki_->ca_cert_path.c_str());
  by_name->enable_server_certificate_verification(false);
  auto res = getSecretValue(*by_name);
  ASSERT_TRUE(res);
  EXPECT_THAT(res->body, HasSubstr("MissingParameter"));

  auto bad = admin("POST", "/admin/listeners", {{"certificate", "other"}});
  EXPECT_EQ(bad->status, 400);
}

}  // namespace
}  // namespace credsync::emulator

namespace credsync::emulator {
namespace {

// Verifies seed entries of kms_instance_client_keys: generated or imported
// keys with their secrets and instances, a bad entry named by index, and an
// error when there is no registry to put them in.
TEST(ApplySeedTest, KmsInstanceClientKeys) {
  testing::SimulatedTimeSource time;
  World world(time, "1234567890123456", "cn-hangzhou");
  ClientKeyRegistry keys(world, "");
  const nlohmann::json seed = {
      {"kms_instance_client_keys",
       {{{"key_id", "KAAP.seeded"}, {"secrets", {"s"}}, {"instances", {"kst-a"}}},
        {{"key_id", "KAAP.off"}, {"state", "disabled"}}}}};
  ASSERT_THAT(applySeed(seed, world, &keys), IsOk());
  auto seeded = keys.find("KAAP.seeded");
  ASSERT_TRUE(seeded.has_value());
  EXPECT_EQ(seeded->secrets, std::vector<std::string>{"s"});
  EXPECT_EQ(seeded->instances, std::vector<std::string>{"kst-a"});
  EXPECT_EQ(keys.find("KAAP.off")->state, KeyState::kDisabled);

  const nlohmann::json bad = {
      {"kms_instance_client_keys", {{{"key_id", "KAAP.x"}, {"private_key_data", "AAAA"}}}}};
  absl::Status status = applySeed(bad, world, &keys);
  EXPECT_THAT(status, ::credsync::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                                    HasSubstr("kms_instance_client_keys[0]")));
  EXPECT_FALSE(applySeed(seed, world, nullptr).ok());
}

}  // namespace
}  // namespace credsync::emulator
