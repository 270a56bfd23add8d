#include "sidecar/alibaba/dkms_client.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "alibaba/dkms/api.pb.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/alibaba/dkms_signature.h"
#include "sidecar/alibaba/request_signer.h"
#include "sidecar/alibaba/response_parsing.h"

namespace credsync::alibaba {
namespace {

constexpr absl::string_view kAction = "KMS instance GetSecretValue";
constexpr absl::string_view kApiName = "GetSecretValue";
// The same bounds as the OpenAPI parser (kms_client.cc).
constexpr size_t kMaxNameBytes = 512;
constexpr size_t kMaxWordBytes = 128;
constexpr size_t kMaxIntervalDigits = 12;

absl::Status malformed(absl::string_view problem) {
  return internal::malformedAnswer(kAction, problem);
}

// An identifier-like field: empty, or printable ASCII within `max_bytes`.
absl::Status checkWord(absl::string_view name, const std::string& value, size_t max_bytes,
                       bool required) {
  if (value.empty()) {
    return required ? malformed(absl::StrCat(name, " is missing")) : absl::OkStatus();
  }
  if (value.size() > max_bytes || !internal::isVisibleAscii(value)) {
    return malformed(absl::StrCat(name, " is longer than ", max_bytes,
                                  " bytes or has characters other than printable ASCII"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<absl::Time>> dateField(absl::string_view name,
                                                    const std::string& text) {
  if (text.empty()) return std::optional<absl::Time>();
  std::optional<absl::Time> time = internal::parseUtcTimestamp(text);
  if (!time) return malformed(absl::StrCat(name, " is not a UTC time \"YYYY-MM-DDTHH:MM:SSZ\""));
  return time;
}

absl::StatusOr<std::optional<absl::Duration>> intervalField(absl::string_view text) {
  if (text.empty()) return std::optional<absl::Duration>();
  int64_t seconds = 0;
  const absl::string_view digits = text.substr(0, text.size() - 1);
  if (text.size() < 2 || text.size() > kMaxIntervalDigits + 1 || text.back() != 's' ||
      !absl::c_all_of(digits,
                      [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(digits, &seconds)) {
    return malformed("RotationInterval is not a number of seconds like \"604800s\"");
  }
  return std::optional<absl::Duration>(absl::Seconds(seconds));
}

absl::Status fillSecretValue(dkms::GetSecretValueResponse& answer, SecretValue& value) {
  if (absl::Status status = checkWord("SecretName", answer.secretname(), kMaxNameBytes, true);
      !status.ok()) {
    return status;
  }
  if (answer.secretdata().empty()) return malformed("SecretData is missing");
  if (absl::Status status = checkWord("VersionId", answer.versionid(), kMaxNameBytes, true);
      !status.ok()) {
    return status;
  }
  struct Word {
    absl::string_view name;
    const std::string& text;
    std::string* target;
  };
  for (const Word& word :
       {Word{"SecretType", answer.secrettype(), &value.secret_type},
        Word{"SecretDataType", answer.secretdatatype(), &value.secret_data_type},
        Word{"AutomaticRotation", answer.automaticrotation(), &value.automatic_rotation},
        Word{"RequestId", answer.requestid(), &value.request_id}}) {
    if (absl::Status status = checkWord(word.name, word.text, kMaxWordBytes, false); !status.ok()) {
      return status;
    }
    *word.target = word.text;
  }
  for (const std::string& stage : answer.versionstages()) {
    if (stage.empty() || stage.size() > kMaxWordBytes || !internal::isVisibleAscii(stage)) {
      return malformed("VersionStages[] is not a stage name");
    }
    value.version_stages.push_back(stage);
  }
  struct Date {
    absl::string_view name;
    const std::string& text;
    std::optional<absl::Time>* target;
  };
  for (const Date& date :
       {Date{"CreateTime", answer.createtime(), &value.create_time},
        Date{"LastRotationDate", answer.lastrotationdate(), &value.last_rotation_date},
        Date{"NextRotationDate", answer.nextrotationdate(), &value.next_rotation_date}}) {
    absl::StatusOr<std::optional<absl::Time>> time = dateField(date.name, date.text);
    if (!time.ok()) return time.status();
    *date.target = *time;
  }
  absl::StatusOr<std::optional<absl::Duration>> interval = intervalField(answer.rotationinterval());
  if (!interval.ok()) return interval.status();
  value.rotation_interval = *interval;
  value.extended_config = answer.extendedconfig();
  value.secret_name = answer.secretname();
  value.version_id = answer.versionid();
  // Last, so a malformed answer never moves the secret anywhere.
  std::string data;
  answer.mutable_secretdata()->swap(data);
  value.secret_data = SecretString(std::move(data));
  wipeString(data);
  return absl::OkStatus();
}

absl::Status statusFromErrorBody(const http::Response& response,
                                 absl::Span<const absl::string_view> redact) {
  if (response.body.size() <= internal::kMaxResponseBodyBytes) {
    dkms::Error error;
    // An empty body also parses (to an empty Error); then the HTTP code speaks.
    if (!response.body.empty() && error.ParseFromString(response.body) &&
        !error.errorcode().empty()) {
      ApiErrorInfo info;
      info.http_status = response.status;
      info.code = error.errorcode();
      info.message = error.errormessage();
      info.request_id = error.requestid();
      return statusFromApiError(kAction, sanitizeApiError(std::move(info), redact));
    }
  }
  // No protobuf Error: perhaps a proxy's page or a POP JSON/XML error.
  return statusFromErrorResponse(kAction, response.status, response.body, redact);
}

class DkmsClientImpl : public DkmsClient {
 public:
  DkmsClientImpl(http::Client& http, ClientKeySource& keys, const TimeSource& time_source)
      : http_(http), keys_(keys), time_source_(time_source) {}

  absl::StatusOr<SecretValue> getSecretValue(const DkmsGetSecretValueRequest& request) override {
    if (request.secret_name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(kAction, ": SecretName is empty"));
    }
    absl::StatusOr<Endpoint> endpoint = parseEndpoint(request.endpoint);
    if (!endpoint.ok()) return withContext(endpoint.status(), kAction);
    // The instance API is HTTPS only, and the body is a signed secret request.
    if (endpoint->scheme != "https") {
      return absl::InvalidArgumentError(
          absl::StrCat(kAction, ": the KMS instance endpoint must be https://"));
    }
    http::Request http_request;
    http_request.method = "POST";
    http_request.url = absl::StrCat("https://", endpoint->host, "/");
    http_request.operation = std::string(kApiName);
    http_request.body = dkmsGetSecretValueRequestBody(request);
    const std::shared_ptr<const ClientKey> key = keys_.current();
    http_request.headers =
        dkms::unsignedHeaders(kApiName, key->keyId(), http_request.body, time_source_.systemTime());
    absl::StatusOr<std::string> signature =
        key->sign(dkms::stringToSign(http_request.method, http_request.headers));
    if (!signature.ok()) return withContext(signature.status(), kAction);
    http_request.headers.emplace_back("authorization", dkms::authorizationHeader(*signature));

    absl::StatusOr<http::Response> response = http_.send(http_request);
    if (!response.ok()) return withContext(response.status(), kAction);
    absl::StatusOr<SecretValue> value = parseDkmsGetSecretValueResponse(*response);
    wipeString(response->body);
    return value;
  }

 private:
  http::Client& http_;
  ClientKeySource& keys_;
  const TimeSource& time_source_;
};

}  // namespace

std::string dkmsGetSecretValueRequestBody(const DkmsGetSecretValueRequest& request) {
  dkms::GetSecretValueRequest message;
  message.set_secretname(request.secret_name);
  message.set_versionstage(request.version_stage.empty() ? "ACSCurrent" : request.version_stage);
  // As the secrets-manager caching clients: ExtendedConfig tells a managed
  // RAM key (SecretSubType RamUserAccessKey) apart.
  message.set_fetchextendedconfig(true);
  return message.SerializeAsString();
}

absl::StatusOr<SecretValue> parseDkmsGetSecretValueResponse(
    const http::Response& response, absl::Span<const absl::string_view> redact) {
  if (response.status < 200 || response.status > 299) {
    return statusFromErrorBody(response, redact);
  }
  if (response.body.size() > internal::kMaxResponseBodyBytes) {
    return malformed("larger than 1 MiB");
  }
  if (response.body.empty()) return malformed("empty answer");
  dkms::GetSecretValueResponse answer;
  const bool parsed = answer.ParseFromString(response.body);
  SecretValue value;
  absl::Status status =
      parsed ? fillSecretValue(answer, value) : malformed("not a GetSecretValueResponse protobuf");
  // The parsed copy of SecretData (still there when a check failed).
  wipeString(*answer.mutable_secretdata());
  if (!status.ok()) return status;
  return value;
}

DkmsClientPtr makeDkmsClient(http::Client& http, ClientKeySource& keys,
                             const TimeSource& time_source) {
  return std::make_unique<DkmsClientImpl>(http, keys, time_source);
}

}  // namespace credsync::alibaba
