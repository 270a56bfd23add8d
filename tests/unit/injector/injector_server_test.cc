#include "sidecar/injector/injector_server.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "sidecar/common/signals.h"
#include "tests/common/captured_log.h"
#include "tests/common/eventually.h"
#include "tests/common/read_file.h"
#include "tests/common/status_matchers.h"
#include "tests/common/temp_dir.h"
#include "tests/emulator/pki.h"
#include "tests/unit/injector/secret_volume.h"

namespace credsync::injector {
namespace {

using credsync::testing::CapturedLog;
using credsync::testing::eventually;
using credsync::testing::IsOk;
using credsync::testing::readFile;
using credsync::testing::SecretVolume;
using credsync::testing::TempDir;
using ::testing::HasSubstr;

// "host:port" split for httplib.
struct HostPort {
  std::string host;
  int port = 0;
};
HostPort splitAddress(const std::string& address) {
  HostPort result;
  const size_t colon = address.rfind(':');
  result.host = address.substr(0, colon);
  if (!absl::SimpleAtoi(address.substr(colon + 1), &result.port)) result.port = 0;
  return result;
}

// The value of `field` in the first captured line whose message is
// `message`; empty while there is none.
std::string logField(const CapturedLog& log, const std::string& message, const std::string& field) {
  for (const std::string& line : log.lines()) {
    const nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
    if (!parsed.is_object() || parsed.value("msg", "") != message) continue;
    auto found = parsed.find(field);
    if (found != parsed.end() && found->is_string()) return found->get<std::string>();
  }
  return "";
}

class ServeInjectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<emulator::Pki> pki =
        emulator::loadOrCreatePki(pki_dir_.path(), {"localhost"}, {"127.0.0.1"});
    ASSERT_THAT(pki, IsOk());
    ca_file_ = pki->ca_cert_path;
    volume_.publish(readFile(pki->server_cert_path), readFile(pki->server_key_path));
    options_.listen_address = "127.0.0.1:0";
    options_.http_address = "127.0.0.1:0";
    options_.cert_file = volume_.certPath();
    options_.key_file = volume_.keyPath();
    options_.cert_check_interval = absl::Milliseconds(50);
    settings_.image = "registry.example/credsync:test";
  }

  RealTimeSource time_source_;
  TempDir pki_dir_{"serve-pki"};
  TempDir volume_dir_{"serve-volume"};
  SecretVolume volume_{volume_dir_.path()};
  std::string ca_file_;
  ServeOptions options_;
  InjectionSettings settings_;
};

// Verifies an unusable certificate stops the start with exit code 1 and one
// line naming the file.
TEST_F(ServeInjectorTest, UnusableCertificateExits1) {
  CapturedLog log;
  options_.key_file = volume_dir_.file("absent.key");
  EXPECT_EQ(serveInjector(options_, settings_, time_source_), 1);
  EXPECT_THAT(logField(log, "cannot start", "error"), HasSubstr("absent.key"));
}

// Verifies a port in use stops the start with exit code 1.
TEST_F(ServeInjectorTest, BadAddressExits1) {
  CapturedLog log;
  options_.listen_address = "127.0.0.1:99999";
  EXPECT_EQ(serveInjector(options_, settings_, time_source_), 1);
  EXPECT_THAT(logField(log, "cannot start", "error"), HasSubstr("99999"));
}

// Verifies the whole serve path: the webhook answers with reviewAdmission
// over TLS, the probe port reports ready and the metrics, a certificate
// change is loaded and counted, and SIGTERM stops it with exit code 0.
TEST_F(ServeInjectorTest, ServesUntilSigterm) {
  CapturedLog log;
  // As main() would: before any thread, so the signal reaches only the
  // server's wait.
  blockStopSignals();
  std::atomic<int> exit_code{-1};
  std::thread serving([&] { exit_code = serveInjector(options_, settings_, time_source_); });
  ASSERT_TRUE(eventually([&] { return !logField(log, "injector serving", "listen").empty(); }));
  const HostPort webhook = splitAddress(logField(log, "injector serving", "listen"));
  const HostPort probes = splitAddress(logField(log, "injector serving", "http_address"));

  httplib::Client probe_client(probes.host, probes.port);
  httplib::Result ready = probe_client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);

  httplib::SSLClient webhook_client(webhook.host, webhook.port);
  webhook_client.set_ca_cert_path(ca_file_.c_str());
  webhook_client.enable_server_certificate_verification(true);
  httplib::Result answer =
      webhook_client.Post("/mutate", "{\"not\":\"a review\"}", "application/json");
  ASSERT_TRUE(answer) << httplib::to_string(answer.error());
  EXPECT_EQ(answer->status, 400);  // malformed: reviewAdmission's answer

  const std::string review =
      readFile(absl::StrCat(CREDSYNC_INJECTOR_FIXTURES, "/deployment.review.json"));
  ASSERT_FALSE(review.empty());
  answer = webhook_client.Post("/mutate", review, "application/json");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_THAT(answer->body, HasSubstr("\"kind\":\"AdmissionReview\""));

  // A new pair from another CA: loaded within a few check intervals.
  TempDir next_dir("serve-next");
  absl::StatusOr<emulator::Pki> next =
      emulator::loadOrCreatePki(next_dir.path(), {"localhost"}, {"127.0.0.1"});
  ASSERT_THAT(next, IsOk());
  volume_.publish(readFile(next->server_cert_path), readFile(next->server_key_path));
  ASSERT_TRUE(eventually([&] {
    httplib::Result metrics = probe_client.Get("/metrics");
    return metrics &&
           absl::StrContains(metrics->body,
                             "credsync_injector_certificate_reloads_total{result=\"loaded\"} 1\n");
  }));
  httplib::SSLClient rotated_client(webhook.host, webhook.port);
  rotated_client.set_ca_cert_path(next->ca_cert_path.c_str());
  rotated_client.enable_server_certificate_verification(true);
  answer = rotated_client.Post("/mutate", review, "application/json");
  ASSERT_TRUE(answer) << httplib::to_string(answer.error());
  EXPECT_EQ(answer->status, 200);

  httplib::Result metrics = probe_client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("credsync_injector_admissions_total{result=\"malformed\","
                                       "dry_run=\"false\"} 1\n"));
  EXPECT_THAT(metrics->body, HasSubstr("credsync_injector_admission_duration_seconds_count 3\n"));
  // httplib's clients close after each request: one connection per POST.
  EXPECT_THAT(metrics->body, HasSubstr("credsync_injector_connections_accepted_total 3\n"));
  EXPECT_THAT(metrics->body,
              HasSubstr("credsync_injector_certificate_not_after_timestamp_seconds "));
  EXPECT_THAT(metrics->body, HasSubstr("credsync_build_info{version=\""));

  // A refused review is logged at info with its one-line reason.
  EXPECT_FALSE(logField(log, "admission refused", "summary").empty());

  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  serving.join();
  EXPECT_EQ(exit_code.load(), 0);
}

}  // namespace
}  // namespace credsync::injector
