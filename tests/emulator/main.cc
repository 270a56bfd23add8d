// credsync-emulator: a local Alibaba Cloud (STS, KMS, ECS) and OIDC issuer
// for credsync's demo and end-to-end tests. See README.md beside this file.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sidecar/common/flags.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/signals.h"
#include "sidecar/common/time_source.h"
#include "tests/emulator/client_keys.h"
#include "tests/emulator/oidc_issuer.h"
#include "tests/emulator/pki.h"
#include "tests/emulator/secret_recorder.h"
#include "tests/emulator/server.h"
#include "tests/emulator/world.h"

namespace {

constexpr char kUsage[] =
    "usage: credsync-emulator --state-dir DIR [--listen HOST:PORT] [--port-file FILE]\n"
    "                         [--seed FILE] [--plain-http] [--log-level LEVEL]\n"
    "                         [--account-id ID] [--region REGION] [--issuer URL]\n"
    "                         [--record-secrets FILE]  (tests: appends every secret issued)\n"
    "                         [--kms-instance ID]...  (a KMS instance gateway; repeatable)\n";

struct Flags {
  std::string state_dir;
  std::string listen = "127.0.0.1:0";
  std::string port_file;
  std::string seed;
  bool plain_http = false;
  std::string log_level = "info";
  std::string account_id = "1234567890123456";
  std::string region = "cn-hangzhou";
  std::string issuer = "https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c-emulator";
  std::string record_secrets;
  std::vector<std::string> kms_instances;
};

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "credsync-emulator: %s\n", message.c_str());
  std::exit(2);
}

Flags parseCommandLine(int argc, char** argv) {
  std::vector<std::string> args;
  Flags flags;
  // --kms-instance may repeat, which parseFlags refuses: taken out first.
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--kms-instance") {
      if (i + 1 >= argc) fail(absl::StrCat("--kms-instance needs a value\n", kUsage));
      flags.kms_instances.push_back(argv[++i]);
    } else if (absl::StartsWith(arg, "--kms-instance=")) {
      flags.kms_instances.push_back(arg.substr(std::strlen("--kms-instance=")));
    } else {
      args.push_back(arg);
    }
  }
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
  }
  const std::map<std::string, std::string*> values = {
      {"state-dir", &flags.state_dir},
      {"listen", &flags.listen},
      {"port-file", &flags.port_file},
      {"seed", &flags.seed},
      {"log-level", &flags.log_level},
      {"account-id", &flags.account_id},
      {"region", &flags.region},
      {"issuer", &flags.issuer},
      {"record-secrets", &flags.record_secrets},
  };
  std::vector<credsync::FlagSpec> specs = {{"plain-http", false}};
  for (const auto& [name, target] : values) specs.push_back({name, true});
  auto parsed = credsync::parseFlags(args, specs);
  if (!parsed.ok()) fail(absl::StrCat(parsed.status().message(), "\n", kUsage));
  if (!parsed->positional.empty()) {
    fail(absl::StrCat("unexpected argument ", parsed->positional[0], "\n", kUsage));
  }
  for (const auto& [name, value] : parsed->values) {
    if (name == "plain-http") {
      flags.plain_http = true;
    } else {
      *values.at(name) = value;
    }
  }
  if (flags.state_dir.empty()) fail(absl::StrCat("--state-dir is required\n", kUsage));
  return flags;
}

void writePortFile(const std::string& path, int port) {
  const std::string temp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(temp, std::ios::trunc);
    out << port << "\n";
    if (!out.good()) fail(absl::StrCat("--port-file: cannot write ", temp));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    fail(absl::StrCat("--port-file: cannot rename ", temp, " to ", path));
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace credsync;
  const Flags flags = parseCommandLine(argc, argv);
  log::setComponent("emulator");
  auto level = log::parseLevel(flags.log_level);
  if (!level.ok()) fail(absl::StrCat("--log-level: ", level.status().message()));
  log::setLevel(*level);

  const size_t colon = flags.listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(flags.listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    fail("--listen must be HOST:PORT, e.g. 127.0.0.1:0");
  }

  // Before any thread starts, so that only waitForStopSignal() sees them.
  credsync::blockStopSignals();

  auto pki = emulator::loadOrCreatePki(
      flags.state_dir,
      {"localhost", "*.aliyuncs.com", absl::StrCat("*.", flags.region, ".aliyuncs.com"),
       "*.cryptoservice.kms.aliyuncs.com"},
      {"127.0.0.1", "::1"});
  if (!pki.ok()) fail(absl::StrCat("--state-dir: ", pki.status().message()));
  std::unique_ptr<emulator::OidcIssuer> issuer = emulator::makeOidcIssuer(*pki, flags.issuer);
  std::optional<emulator::KmsInstancePki> instance_pki;
  if (!flags.kms_instances.empty()) {
    if (flags.plain_http) fail("--kms-instance needs HTTPS (no --plain-http)");
    auto loaded =
        emulator::loadOrCreateKmsInstancePki(flags.state_dir, flags.region, flags.kms_instances);
    if (!loaded.ok()) fail(absl::StrCat("--kms-instance: ", loaded.status().message()));
    instance_pki = *std::move(loaded);
  }

  RealTimeSource time_source;
  emulator::World world(time_source, flags.account_id, flags.region);
  std::unique_ptr<emulator::SecretRecorder> recorder;
  if (!flags.record_secrets.empty()) {
    auto opened = emulator::makeFileSecretRecorder(flags.record_secrets);
    if (!opened.ok()) fail(absl::StrCat("--record-secrets: ", opened.status().message()));
    recorder = *std::move(opened);
    world.setSecretRecorder(recorder.get());
    issuer = emulator::makeRecordingOidcIssuer(std::move(issuer), *recorder);
  }
  // Client keys created by the seed or the admin API are also written to the
  // state directory, as the console's downloads.
  emulator::ClientKeyRegistry client_keys(world, flags.state_dir);
  if (!flags.seed.empty()) {
    std::ifstream in(flags.seed);
    if (!in) fail(absl::StrCat("--seed: cannot read ", flags.seed));
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const nlohmann::json seed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (seed.is_discarded()) fail(absl::StrCat("--seed: ", flags.seed, " is not valid JSON"));
    if (absl::Status status = emulator::applySeed(seed, world, &client_keys); !status.ok()) {
      fail(absl::StrCat("--seed: ", status.message()));
    }
  }

  emulator::ServerOptions options;
  options.host = flags.listen.substr(0, colon);
  options.port = port;
  options.plain_http = flags.plain_http;
  options.cert_path = pki->server_cert_path;
  options.key_path = pki->server_key_path;
  options.wrong_host_cert_path = pki->wrong_host_cert_path;
  options.wrong_host_key_path = pki->wrong_host_key_path;
  if (instance_pki) {
    options.kms_instance_ca_file = instance_pki->ca_file;
    for (const auto& [id, files] : instance_pki->servers) {
      options.kms_instances.push_back({id, files.cert_chain_path, files.key_path});
    }
  }
  emulator::EmulatorServer server(world, *issuer, options, &client_keys);
  auto bound = server.start();
  if (!bound.ok()) fail(std::string(bound.status().message()));
  // Instance ports first: a test that waits for --port-file then finds them.
  for (const auto& [id, instance_port] : server.kmsInstancePorts()) {
    writePortFile(absl::StrCat(flags.state_dir, "/kms-instance-", id, ".port"), instance_port);
  }
  if (!flags.port_file.empty()) writePortFile(flags.port_file, *bound);
  log::info("listening", {{"address", options.host},
                          {"port", *bound},
                          {"scheme", flags.plain_http ? "http" : "https"},
                          {"ca_file", pki->ca_cert_path},
                          {"issuer", issuer->issuerUrl()}});

  log::info("stopping", {{"signal", credsync::waitForStopSignal()}});
  server.stop();
  return 0;
}
