// credsync-bench-client: the "one process" of bench/run. It makes the bare
// upstream round trips with the very code credsync uses (one CurlClient: TLS
// verified, keep-alive; the same KMS and STS clients and OIDC provider), and
// drives credsync's control API over its Unix socket with the C++ gRPC
// client, so that the two sides of every ratio in docs/performance.md are
// taken side by side by one process.
//
//   credsync-bench-client p1   --socket S --endpoint URL --ca-file F --secret NAME
//                              --role-arn A --oidc-provider-arn A --oidc-token-file F [--count N]
//   credsync-bench-client p2   --socket S [--callers C] [--channels K] [--failed-key ID] [--health]
//   credsync-bench-client p3   --socket S --failed-key ID [--count N]
//                              [--concurrency K] [--seconds T] [--channels K]
//   credsync-bench-client cold --endpoint URL --ca-file F --secret NAME
//                              --role-arn A --oidc-provider-arn A --oidc-token-file F [--count N]
//
// Each prints ONE JSON object on stdout; latencies are in microseconds as
// {count, p50, p90, p99, max, mean}. A failure of behaviour (a Refresh that
// did not refresh, an upstream error) prints one line on stderr and exits 1;
// a usage error exits 2. Times and sizes are only reported, never judged.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "credsync/v1/credsync.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "sidecar/alibaba/kms_client.h"
#include "sidecar/alibaba/sts_client.h"
#include "sidecar/common/flags.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/random.h"
#include "sidecar/common/secret.h"
#include "sidecar/common/time_source.h"
#include "sidecar/config/config.h"
#include "sidecar/http/curl_client.h"
#include "sidecar/identity/oidc_provider.h"

namespace credsync::bench {
namespace {

using credsync::v1::CredsyncService;
using credsync::v1::GetStatusRequest;
using credsync::v1::GetStatusResponse;
using credsync::v1::RefreshRequest;
using credsync::v1::RefreshResponse;
using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using Json = nlohmann::ordered_json;

// Long enough for a Refresh queued behind a thousand others on a loaded
// two-core machine; a call that takes this long is a failure, not a figure.
constexpr absl::Duration kCallTimeout = absl::Seconds(60);

const RealTimeSource& timeSource() {
  static const RealTimeSource* const time_source = new RealTimeSource();
  return *time_source;
}

absl::Duration since(MonotonicTime start) {
  return absl::FromChrono(timeSource().monotonicTime() - start);
}

// Latency samples and their summary, in microseconds.
class Latencies {
 public:
  void add(absl::Duration latency) { micros_.push_back(absl::ToDoubleMicroseconds(latency)); }
  void addAll(const Latencies& other) {
    micros_.insert(micros_.end(), other.micros_.begin(), other.micros_.end());
  }
  size_t count() const { return micros_.size(); }

  // Nearest-rank percentiles: every reported figure is a latency that was
  // actually observed.
  Json summary() const {
    Json out;
    out["count"] = micros_.size();
    if (micros_.empty()) return out;
    std::vector<double> sorted = micros_;
    std::sort(sorted.begin(), sorted.end());
    const auto rank = [&](double fraction) {
      const auto index = static_cast<size_t>(std::ceil(fraction * sorted.size()));
      return round1(sorted[std::clamp<size_t>(index, 1, sorted.size()) - 1]);
    };
    double total = 0;
    for (double value : sorted) total += value;
    out["p50"] = rank(0.50);
    out["p90"] = rank(0.90);
    out["p99"] = rank(0.99);
    out["max"] = round1(sorted.back());
    out["mean"] = round1(total / sorted.size());
    return out;
  }

 private:
  static double round1(double value) { return std::round(value * 10) / 10; }
  std::vector<double> micros_;
};

// --- the command line ----------------------------------------------------------

struct Options {
  std::string socket;
  std::string endpoint;  // the emulator: STS, KMS and its admin API share it
  std::string ca_file;
  std::string secret;
  std::string profile = "default";
  std::string role_arn;
  std::string oidc_provider_arn;
  std::string oidc_token_file;
  std::string failed_key;
  int count = 100;
  int callers = 1000;
  int channels = 8;
  int concurrency = 8;
  double seconds = 5;
  bool health = false;
};

absl::Status usage(absl::string_view message) { return absl::InvalidArgumentError(message); }

absl::StatusOr<int> positiveInt(const ParsedFlags& flags, const std::string& name, int fallback) {
  auto found = flags.values.find(name);
  if (found == flags.values.end()) return fallback;
  int value = 0;
  if (!absl::SimpleAtoi(found->second, &value) || value < 1) {
    return usage(absl::StrCat("--", name, ": want a whole number of at least 1"));
  }
  return value;
}

absl::StatusOr<Options> parseOptions(const std::vector<std::string>& args) {
  const std::vector<FlagSpec> specs = {
      {"socket"},   {"endpoint"},          {"ca-file"},         {"secret"},     {"profile"},
      {"role-arn"}, {"oidc-provider-arn"}, {"oidc-token-file"}, {"failed-key"}, {"count"},
      {"callers"},  {"channels"},          {"concurrency"},     {"seconds"},    {"health", false},
  };
  absl::StatusOr<ParsedFlags> flags = parseFlags(args, specs);
  if (!flags.ok()) return flags.status();
  if (!flags->positional.empty()) {
    return usage(absl::StrCat("unexpected argument ", flags->positional.front()));
  }
  Options options;
  const auto text = [&](const std::string& name, std::string& into) {
    auto found = flags->values.find(name);
    if (found != flags->values.end()) into = found->second;
  };
  text("socket", options.socket);
  text("endpoint", options.endpoint);
  text("ca-file", options.ca_file);
  text("secret", options.secret);
  text("profile", options.profile);
  text("role-arn", options.role_arn);
  text("oidc-provider-arn", options.oidc_provider_arn);
  text("oidc-token-file", options.oidc_token_file);
  text("failed-key", options.failed_key);
  const std::pair<const char*, int*> counts[] = {{"count", &options.count},
                                                 {"callers", &options.callers},
                                                 {"channels", &options.channels},
                                                 {"concurrency", &options.concurrency}};
  for (const auto& [name, into] : counts) {
    absl::StatusOr<int> value = positiveInt(*flags, name, *into);
    if (!value.ok()) return value.status();
    *into = *value;
  }
  if (flags->has("seconds") && (!absl::SimpleAtod(flags->values.at("seconds"), &options.seconds) ||
                                !(options.seconds > 0))) {
    return usage("--seconds: want a positive number");
  }
  options.health = flags->has("health");
  return options;
}

absl::Status require(const std::vector<std::pair<const char*, const std::string*>>& needed) {
  for (const auto& [name, value] : needed) {
    if (value->empty()) return usage(absl::StrCat("--", name, " is required"));
  }
  return absl::OkStatus();
}

absl::Status requireUpstream(const Options& options) {
  return require({{"endpoint", &options.endpoint},
                  {"ca-file", &options.ca_file},
                  {"secret", &options.secret},
                  {"role-arn", &options.role_arn},
                  {"oidc-provider-arn", &options.oidc_provider_arn},
                  {"oidc-token-file", &options.oidc_token_file}});
}

// --- the upstream side: credsync's own HTTP, STS, identity and KMS code ---------

// What credsync builds in sidecar/app for an RRSA identity, minus metrics:
// one CurlClient shared by STS and KMS, so both ride one kept-alive TLS
// connection to the emulator.
class Upstream {
 public:
  explicit Upstream(const Options& options) : options_(options) {
    http::CurlClientOptions http_options;
    http_options.ca_file = options.ca_file;
    http_ = std::make_unique<http::CurlClient>(http_options);
    identity_config_.type = config::IdentityType::kOidc;
    identity_config_.role_arn = options.role_arn;
    identity_config_.oidc_provider_arn = options.oidc_provider_arn;
    identity_config_.oidc_token_file = options.oidc_token_file;
    identity_config_.role_session_name = "credsync-bench";
    identity_config_.sts_endpoint = options.endpoint;
    sts_ = alibaba::makeStsClient(*http_, timeSource(), options.endpoint);
    identity_ = identity::makeOidcProvider(identity_config_, *sts_, timeSource(), *random_);
    kms_ = alibaba::makeKmsClient(*http_, timeSource(), alibaba::SignatureScheme::kAcs3HmacSha256);
  }

  // The STS session, exchanged on first use and cached as credsync caches it.
  absl::StatusOr<alibaba::AccessKeyCredentials> credentials() { return identity_->credentials(); }
  // Makes the next credentials() exchange anew.
  void forgetSession() { identity_->invalidate(); }

  // One GetSecretValue, its answer checked as credsync checks it; returns
  // the AccessKey id it holds.
  absl::StatusOr<std::string> getSecretValue(const alibaba::AccessKeyCredentials& credentials) {
    alibaba::GetSecretValueRequest request;
    request.endpoint = options_.endpoint;
    request.secret_name = options_.secret;
    absl::StatusOr<alibaba::SecretValue> value = kms_->getSecretValue(request, credentials);
    if (!value.ok()) return value.status();
    absl::StatusOr<alibaba::RamCredentials> parsed = alibaba::parseRamCredentials(*value);
    if (!parsed.ok()) return parsed.status();
    return parsed->access_key_id;
  }

  // One AssumeRoleWithOIDC with the projected token, bypassing the
  // provider's session cache (which would answer from memory).
  absl::Status assumeRole() {
    absl::StatusOr<std::string> token = readFile(options_.oidc_token_file);
    if (!token.ok()) return token.status();
    alibaba::AssumeRoleWithOidcRequest request;
    request.role_arn = options_.role_arn;
    request.oidc_provider_arn = options_.oidc_provider_arn;
    request.oidc_token = SecretString(*std::move(token));
    request.role_session_name = identity_config_.role_session_name;
    return sts_->assumeRoleWithOidc(request).status();
  }

  uint64_t connectionsOpened() const { return http_->connectionsOpened(); }

 private:
  static absl::StatusOr<std::string> readFile(const std::string& path) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path));
    std::string content;
    char buffer[4096];
    size_t read = 0;
    while ((read = std::fread(buffer, 1, sizeof buffer, file)) > 0) content.append(buffer, read);
    std::fclose(file);
    while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) {
      content.pop_back();
    }
    return content;
  }

  const Options& options_;
  config::IdentityConfig identity_config_;
  RandomPtr random_ = makeRandom();
  std::unique_ptr<http::CurlClient> http_;
  alibaba::StsClientPtr sts_;
  identity::CredentialProviderPtr identity_;
  alibaba::KmsClientPtr kms_;
};

// The emulator's admin API (tests/emulator/README.md), on a CurlClient of
// its own so that admin traffic never shares, or warms, the measured
// connection.
class EmulatorAdmin {
 public:
  explicit EmulatorAdmin(const Options& options) : options_(options) {
    http::CurlClientOptions http_options;
    http_options.ca_file = options.ca_file;
    http_ = std::make_unique<http::CurlClient>(http_options);
  }

  // Rotates the secret in KMS; returns the new ACSCurrent AccessKey id.
  absl::StatusOr<std::string> rotate() {
    http::Request request;
    request.method = "POST";
    request.url = absl::StrCat(options_.endpoint, "/admin/secrets/", percentEncode(options_.secret),
                               "/rotate");
    request.headers = {{"Content-Type", "application/json"}};
    request.body = "{}";
    request.operation = "admin rotate";
    absl::StatusOr<http::Response> response = http_->send(request);
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return absl::InternalError(
          absl::StrCat("emulator admin rotate answered HTTP ", response->status));
    }
    const Json answer = Json::parse(response->body, nullptr, /*allow_exceptions=*/false);
    if (!answer.is_object() || !answer.contains("access_key_id") ||
        !answer["access_key_id"].is_string()) {
      return absl::InternalError("emulator admin rotate: no access_key_id in the answer");
    }
    return answer["access_key_id"].get<std::string>();
  }

 private:
  static std::string percentEncode(absl::string_view text) {
    std::string out;
    for (unsigned char c : text) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out.push_back(static_cast<char>(c));
      } else {
        absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
      }
    }
    return out;
  }

  const Options& options_;
  std::unique_ptr<http::CurlClient> http_;
};

// --- the control API side ---------------------------------------------------------

// A channel of its own (not shared through gRPC's global subchannel pool),
// as each application container holds its own connection.
std::shared_ptr<grpc::Channel> ownChannel(const std::string& socket) {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  arguments.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  return grpc::CreateCustomChannel(absl::StrCat("unix:", socket),
                                   grpc::InsecureChannelCredentials(), arguments);
}

absl::Status connect(grpc::Channel& channel, const std::string& socket) {
  if (!channel.WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(10)))) {
    return absl::UnavailableError(absl::StrCat("cannot connect to unix:", socket));
  }
  return absl::OkStatus();
}

void setDeadline(grpc::ClientContext& context) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
}

absl::Status fromGrpc(const grpc::Status& status, absl::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

std::string codeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// Blocking calls on one connection, for the sequential measurements.
class Control {
 public:
  explicit Control(const std::string& socket)
      : socket_(socket), channel_(ownChannel(socket)), stub_(CredsyncService::NewStub(channel_)) {}

  absl::Status connect() { return bench::connect(*channel_, socket_); }

  absl::StatusOr<RefreshResponse> refresh(const RefreshRequest& request) {
    grpc::ClientContext context;
    setDeadline(context);
    RefreshResponse response;
    const grpc::Status status = stub_->Refresh(&context, request, &response);
    if (!status.ok()) return fromGrpc(status, "Refresh");
    return response;
  }

  absl::StatusOr<GetStatusResponse> getStatus() {
    grpc::ClientContext context;
    setDeadline(context);
    GetStatusResponse response;
    const grpc::Status status = stub_->GetStatus(&context, GetStatusRequest(), &response);
    if (!status.ok()) return fromGrpc(status, "GetStatus");
    return response;
  }

  // The AccessKey id credentials.ini holds for `profile`.
  absl::StatusOr<std::string> currentKey(const std::string& profile) {
    absl::StatusOr<GetStatusResponse> status = getStatus();
    if (!status.ok()) return status.status();
    for (const auto& entry : status->profiles()) {
      if (entry.name() == profile && entry.written()) return entry.access_key_id();
    }
    return absl::FailedPreconditionError(
        absl::StrCat("GetStatus reports no written profile ", profile));
  }

 private:
  std::string socket_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<CredsyncService::Stub> stub_;
};

RefreshRequest refreshRequest(const std::string& profile, const std::string& failed_key,
                              absl::string_view reason) {
  RefreshRequest request;
  request.set_profile(profile);
  request.set_failed_access_key_id(failed_key);
  request.set_reason(std::string(reason));
  return request;
}

// --- p1: a Refresh that must fetch, against the bare round trip ---------------------

absl::StatusOr<Json> runP1(const Options& options) {
  if (absl::Status missing = require({{"socket", &options.socket}}); !missing.ok()) return missing;
  if (absl::Status missing = requireUpstream(options); !missing.ok()) return missing;
  Upstream upstream(options);
  EmulatorAdmin admin(options);
  Control control(options.socket);
  if (absl::Status connected = control.connect(); !connected.ok()) return connected;

  // One Refresh that fetches, made with a fresh rotation; the caller names
  // the key it holds as failed, so credsync must go to KMS.
  std::string current;
  const auto rotateAndRefresh = [&](Latencies* latencies) -> absl::Status {
    absl::StatusOr<std::string> rotated = admin.rotate();
    if (!rotated.ok()) return rotated.status();
    const RefreshRequest request = refreshRequest(options.profile, current, "bench p1");
    const MonotonicTime start = timeSource().monotonicTime();
    absl::StatusOr<RefreshResponse> answer = control.refresh(request);
    const absl::Duration latency = since(start);
    if (!answer.ok()) return answer.status();
    if (answer->outcome() != RefreshResponse::OUTCOME_REFRESHED ||
        answer->access_key_id() != *rotated) {
      return absl::InternalError(absl::StrCat("Refresh naming ", current, " answered ",
                                              RefreshResponse::Outcome_Name(answer->outcome()),
                                              " with ", answer->access_key_id(), "; KMS has ",
                                              *rotated));
    }
    if (latencies != nullptr) latencies->add(latency);
    current = answer->access_key_id();
    return absl::OkStatus();
  };

  // Warm both sides: the STS session and the kept-alive connections (the
  // sidecar's may have been closed while it sat idle).
  absl::StatusOr<std::string> key = control.currentKey(options.profile);
  if (!key.ok()) return key.status();
  current = *key;
  absl::StatusOr<alibaba::AccessKeyCredentials> credentials = upstream.credentials();
  if (!credentials.ok()) return credentials.status();
  if (absl::StatusOr<std::string> warm = upstream.getSecretValue(*credentials); !warm.ok()) {
    return warm.status();
  }
  if (absl::Status warm = upstream.assumeRole(); !warm.ok()) return warm;
  if (absl::Status warm = rotateAndRefresh(nullptr); !warm.ok()) return warm;
  const uint64_t connections_before = upstream.connectionsOpened();

  // Alternating, so that whatever noise the machine makes hits both sides.
  Latencies bare;
  Latencies refreshes;
  Latencies assume_role;
  for (int i = 0; i < options.count; ++i) {
    credentials = upstream.credentials();
    if (!credentials.ok()) return credentials.status();
    MonotonicTime start = timeSource().monotonicTime();
    absl::StatusOr<std::string> fetched = upstream.getSecretValue(*credentials);
    bare.add(since(start));
    if (!fetched.ok()) return fetched.status();
    if (*fetched != current) {
      return absl::InternalError(absl::StrCat("GetSecretValue returned ", *fetched,
                                              " while credsync's file holds ", current));
    }

    if (absl::Status refreshed = rotateAndRefresh(&refreshes); !refreshed.ok()) return refreshed;

    start = timeSource().monotonicTime();
    absl::Status assumed = upstream.assumeRole();
    assume_role.add(since(start));
    if (!assumed.ok()) return assumed;
  }

  Json out;
  out["count"] = options.count;
  out["refresh"] = refreshes.summary();
  out["bare_get_secret_value"] = bare.summary();
  out["bare_assume_role_with_oidc"] = assume_role.summary();
  // Zero when every measured round trip rode the kept-alive connection.
  out["bare_connections_opened"] = upstream.connectionsOpened() - connections_before;
  return out;
}

// --- p2: many concurrent callers at once ----------------------------------------

// One unary call of a storm, alive until its callback has run.
template <typename Request, typename Response>
struct PendingCall {
  grpc::ClientContext context;
  Request request;
  Response response;
  MonotonicTime started;
  absl::Duration latency;
  grpc::Status status;
};

// Starts every call in `calls` as fast as it can, through `start(call,
// done)` with gRPC's callback API, then waits until all have completed.
// Returns the wall time from the first start to the last completion.
template <typename Call, typename Start>
absl::Duration storm(std::vector<std::unique_ptr<Call>>& calls, Start start) {
  absl::Mutex mutex;
  size_t completed = 0;
  const MonotonicTime first = timeSource().monotonicTime();
  for (auto& call : calls) {
    Call* raw = call.get();
    setDeadline(raw->context);
    raw->started = timeSource().monotonicTime();
    start(raw, [raw, &mutex, &completed](grpc::Status status) {
      raw->latency = since(raw->started);
      raw->status = std::move(status);
      absl::MutexLock lock(&mutex);
      ++completed;
    });
  }
  const auto all_completed = [&] { return completed == calls.size(); };
  absl::MutexLock lock(&mutex);
  mutex.Await(absl::Condition(&all_completed));
  return since(first);
}

template <typename Call>
Json errorCounts(const std::vector<std::unique_ptr<Call>>& calls, Latencies& latencies) {
  Json errors = Json::object();
  for (const auto& call : calls) {
    if (call->status.ok()) {
      latencies.add(call->latency);
    } else {
      const std::string code = codeName(call->status.error_code());
      errors[code] = errors.value(code, 0) + 1;
    }
  }
  return errors;
}

std::vector<std::shared_ptr<grpc::Channel>> connectedChannels(const Options& options,
                                                              absl::Status& status) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < options.channels; ++i) {
    channels.push_back(ownChannel(options.socket));
    status = connect(*channels.back(), options.socket);
    if (!status.ok()) break;
  }
  return channels;
}

absl::StatusOr<Json> runP2Health(const Options& options) {
  absl::Status connected;
  auto channels = connectedChannels(options, connected);
  if (!connected.ok()) return connected;
  std::vector<std::unique_ptr<Health::Stub>> stubs;
  for (auto& channel : channels) stubs.push_back(Health::NewStub(channel));

  using Call = PendingCall<HealthCheckRequest, HealthCheckResponse>;
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < options.callers; ++i) calls.push_back(std::make_unique<Call>());
  size_t next = 0;
  const absl::Duration wall = storm(calls, [&](Call* call, std::function<void(grpc::Status)> done) {
    stubs[next++ % stubs.size()]->async()->Check(&call->context, &call->request, &call->response,
                                                 std::move(done));
  });

  Latencies latencies;
  Json out;
  out["callers"] = options.callers;
  out["channels"] = options.channels;
  out["errors"] = errorCounts(calls, latencies);
  int serving = 0;
  for (const auto& call : calls) {
    if (call->status.ok() && call->response.status() == HealthCheckResponse::SERVING) ++serving;
  }
  out["serving"] = serving;
  out["latency"] = latencies.summary();
  out["wall_ms"] = absl::ToDoubleMilliseconds(wall);
  return out;
}

absl::StatusOr<Json> runP2(const Options& options) {
  if (absl::Status missing = require({{"socket", &options.socket}}); !missing.ok()) return missing;
  if (options.health) return runP2Health(options);

  std::string failed_key = options.failed_key;
  if (failed_key.empty()) {
    Control control(options.socket);
    absl::StatusOr<std::string> current = control.currentKey(options.profile);
    if (!current.ok()) return current.status();
    failed_key = *current;
  }
  absl::Status connected;
  auto channels = connectedChannels(options, connected);
  if (!connected.ok()) return connected;
  std::vector<std::unique_ptr<CredsyncService::Stub>> stubs;
  for (auto& channel : channels) stubs.push_back(CredsyncService::NewStub(channel));

  using Call = PendingCall<RefreshRequest, RefreshResponse>;
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < options.callers; ++i) {
    calls.push_back(std::make_unique<Call>());
    calls.back()->request = refreshRequest(options.profile, failed_key, "bench p2");
  }
  size_t next = 0;
  const absl::Duration wall = storm(calls, [&](Call* call, std::function<void(grpc::Status)> done) {
    stubs[next++ % stubs.size()]->async()->Refresh(&call->context, &call->request, &call->response,
                                                   std::move(done));
  });

  Latencies latencies;
  Json out;
  out["callers"] = options.callers;
  out["channels"] = options.channels;
  out["failed_key"] = failed_key;
  out["errors"] = errorCounts(calls, latencies);
  int refreshed = 0;
  int coalesced = 0;
  int already_current = 0;
  Json keys = Json::object();
  for (const auto& call : calls) {
    if (!call->status.ok()) continue;
    const RefreshResponse& answer = call->response;
    if (answer.outcome() == RefreshResponse::OUTCOME_ALREADY_CURRENT) {
      ++already_current;
    } else if (answer.coalesced()) {
      ++coalesced;
    } else {
      ++refreshed;
    }
    keys[answer.access_key_id()] = keys.value(answer.access_key_id(), 0) + 1;
  }
  out["outcomes"] = {
      {"refreshed", refreshed}, {"coalesced", coalesced}, {"already_current", already_current}};
  // Every caller must be given the same new key.
  out["access_key_ids"] = keys;
  out["latency"] = latencies.summary();
  out["wall_ms"] = absl::ToDoubleMilliseconds(wall);
  return out;
}

// --- p3: answers from memory, and GetStatus throughput ------------------------------

absl::StatusOr<Json> runP3(const Options& options) {
  if (absl::Status missing =
          require({{"socket", &options.socket}, {"failed-key", &options.failed_key}});
      !missing.ok()) {
    return missing;
  }
  Control control(options.socket);
  if (absl::Status connected = control.connect(); !connected.ok()) return connected;

  const RefreshRequest request = refreshRequest(options.profile, options.failed_key, "bench p3");
  Latencies from_memory;
  constexpr int kWarmUpCalls = 10;
  for (int i = -kWarmUpCalls; i < options.count; ++i) {
    const MonotonicTime start = timeSource().monotonicTime();
    absl::StatusOr<RefreshResponse> answer = control.refresh(request);
    const absl::Duration latency = since(start);
    if (!answer.ok()) return answer.status();
    if (answer->outcome() != RefreshResponse::OUTCOME_ALREADY_CURRENT ||
        answer->access_key_id() == options.failed_key) {
      return absl::InternalError(absl::StrCat(
          "Refresh naming the rotated-away key ", options.failed_key, " answered ",
          RefreshResponse::Outcome_Name(answer->outcome()), " with ", answer->access_key_id()));
    }
    if (i >= 0) from_memory.add(latency);
  }

  // GetStatus, closed loop: `concurrency` callers, each sending its next
  // call as soon as the last is answered, for `seconds`.
  absl::Status connected;
  auto channels = connectedChannels(options, connected);
  if (!connected.ok()) return connected;
  std::vector<Latencies> per_caller(options.concurrency);
  std::vector<absl::Status> failures(options.concurrency);
  const MonotonicTime start = timeSource().monotonicTime();
  const absl::Duration window = absl::Seconds(options.seconds);
  {
    std::vector<std::thread> callers;
    for (int i = 0; i < options.concurrency; ++i) {
      callers.emplace_back([&, i] {
        auto stub = CredsyncService::NewStub(channels[i % channels.size()]);
        while (since(start) < window) {
          grpc::ClientContext context;
          setDeadline(context);
          GetStatusResponse response;
          const MonotonicTime sent = timeSource().monotonicTime();
          const grpc::Status status = stub->GetStatus(&context, GetStatusRequest(), &response);
          if (!status.ok()) {
            failures[i] = fromGrpc(status, "GetStatus");
            return;
          }
          per_caller[i].add(since(sent));
        }
      });
    }
    for (auto& caller : callers) caller.join();
  }
  const absl::Duration elapsed = since(start);
  for (const absl::Status& failure : failures) {
    if (!failure.ok()) return failure;
  }
  Latencies get_status;
  for (const Latencies& latencies : per_caller) get_status.addAll(latencies);

  Json out;
  out["count"] = options.count;
  out["refresh_from_memory"] = from_memory.summary();
  out["get_status"] = {
      {"concurrency", options.concurrency},
      {"channels", options.channels},
      {"seconds", absl::ToDoubleSeconds(elapsed)},
      {"calls", get_status.count()},
      {"calls_per_second", std::round(get_status.count() / absl::ToDoubleSeconds(elapsed))},
      {"latency", get_status.summary()},
  };
  return out;
}

// --- cold: the two round trips credsync makes at start ----------------------------

absl::StatusOr<Json> runCold(const Options& options) {
  if (absl::Status missing = requireUpstream(options); !missing.ok()) return missing;
  Latencies cold_pair;
  Latencies cold_assume_role;
  Latencies cold_get_secret_value;
  Latencies warm_pair;
  for (int i = 0; i < options.count; ++i) {
    // A new client each time: DNS-free (an IP endpoint), but a new TCP
    // connection and TLS handshake, as at process start.
    Upstream upstream(options);
    MonotonicTime start = timeSource().monotonicTime();
    absl::StatusOr<alibaba::AccessKeyCredentials> credentials = upstream.credentials();
    const absl::Duration exchanged = since(start);
    if (!credentials.ok()) return credentials.status();
    absl::StatusOr<std::string> fetched = upstream.getSecretValue(*credentials);
    const absl::Duration pair = since(start);
    if (!fetched.ok()) return fetched.status();
    cold_pair.add(pair);
    cold_assume_role.add(exchanged);
    cold_get_secret_value.add(pair - exchanged);
    if (upstream.connectionsOpened() != 1) {
      return absl::InternalError(absl::StrCat("the cold pair opened ", upstream.connectionsOpened(),
                                              " connections; STS and KMS should share one"));
    }

    // The same pair again on the kept-alive connection.
    upstream.forgetSession();
    start = timeSource().monotonicTime();
    credentials = upstream.credentials();
    if (!credentials.ok()) return credentials.status();
    fetched = upstream.getSecretValue(*credentials);
    warm_pair.add(since(start));
    if (!fetched.ok()) return fetched.status();
    if (upstream.connectionsOpened() != 1) {
      return absl::InternalError("the warm pair opened a new connection instead of reusing one");
    }
  }
  Json out;
  out["count"] = options.count;
  out["cold_pair"] = cold_pair.summary();
  out["cold_assume_role_with_oidc"] = cold_assume_role.summary();
  out["then_get_secret_value"] = cold_get_secret_value.summary();
  out["warm_pair"] = warm_pair.summary();
  return out;
}

int run(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: credsync-bench-client p1|p2|p3|cold [flags] (see bench/README.md)\n");
    return 2;
  }
  const std::string command = argv[1];
  absl::StatusOr<Options> options = parseOptions(std::vector<std::string>(argv + 2, argv + argc));
  if (!options.ok()) {
    std::fprintf(stderr, "credsync-bench-client %s: %s\n", command.c_str(),
                 std::string(options.status().message()).c_str());
    return 2;
  }
  // The provider's info lines ("identity exchanged") would drown stderr.
  log::setLevel(log::Level::kWarn);
  log::setComponent("credsync-bench-client");

  absl::StatusOr<Json> result;
  if (command == "p1") {
    result = runP1(*options);
  } else if (command == "p2") {
    result = runP2(*options);
  } else if (command == "p3") {
    result = runP3(*options);
  } else if (command == "cold") {
    result = runCold(*options);
  } else {
    std::fprintf(stderr, "credsync-bench-client: unknown command %s (p1, p2, p3 or cold)\n",
                 command.c_str());
    return 2;
  }
  if (!result.ok()) {
    std::fprintf(stderr, "credsync-bench-client %s: %s\n", command.c_str(),
                 result.status().ToString().c_str());
    return result.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::printf("%s\n", result->dump().c_str());
  return 0;
}

}  // namespace
}  // namespace credsync::bench

int main(int argc, char** argv) { return credsync::bench::run(argc, argv); }
