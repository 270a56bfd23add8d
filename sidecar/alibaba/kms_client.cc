#include "sidecar/alibaba/kms_client.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/alibaba/response_parsing.h"
#include "sidecar/common/crypto.h"

namespace credsync::alibaba {
namespace {

constexpr absl::string_view kAction = "KMS GetSecretValue";
// Names, ids and enum-like words: visible ASCII of a sane length, so they can
// be logged and compared without surprises.
constexpr size_t kMaxNameBytes = 512;
constexpr size_t kMaxWordBytes = 128;
// A RAMCredentials SecretData is about 150 bytes.
constexpr size_t kMaxSecretDataBytes = size_t{64} * 1024;
constexpr size_t kMaxAccessKeyIdBytes = 128;
constexpr size_t kMaxAccessKeySecretBytes = 1024;
// RotationInterval: KMS allows at most 8,760 h (31,536,000 s).
constexpr size_t kMaxIntervalDigits = 12;

absl::Status malformed(absl::string_view problem) {
  return internal::malformedAnswer(kAction, problem);
}

absl::Status wrongType(absl::string_view field, const nlohmann::json& value,
                       absl::string_view expected) {
  return malformed(absl::StrCat(field, " is ", internal::jsonTypeName(value), ", not ", expected));
}

// A string member that must be present (required) or may be absent/null.
// Identifier-like values must be visible ASCII within `max_bytes`.
absl::StatusOr<std::optional<std::string>> stringField(const nlohmann::json& document,
                                                       const char* name, bool required,
                                                       size_t max_bytes) {
  const auto it = document.find(name);
  if (it == document.end() || it->is_null()) {
    if (required) return malformed(absl::StrCat(name, " is missing"));
    return std::optional<std::string>();
  }
  if (!it->is_string()) return wrongType(name, *it, "a string");
  const std::string& value = it->get_ref<const std::string&>();
  if (!value.empty() && (value.size() > max_bytes || !internal::isVisibleAscii(value))) {
    return malformed(absl::StrCat(name, " is longer than ", max_bytes,
                                  " bytes or has characters other than printable ASCII"));
  }
  if (required && value.empty()) return malformed(absl::StrCat(name, " is empty"));
  return std::optional<std::string>(value);
}

// A date member: absent, null or "" mean "not set".
absl::StatusOr<std::optional<absl::Time>> dateField(const nlohmann::json& document,
                                                    const char* name) {
  const auto it = document.find(name);
  if (it == document.end() || it->is_null()) return std::optional<absl::Time>();
  if (!it->is_string()) return wrongType(name, *it, "a string");
  const std::string& text = it->get_ref<const std::string&>();
  if (text.empty()) return std::optional<absl::Time>();
  std::optional<absl::Time> time = internal::parseUtcTimestamp(text);
  if (!time) {
    return malformed(absl::StrCat(name, " is not a UTC time \"YYYY-MM-DDTHH:MM:SSZ\""));
  }
  return time;
}

// "604800s" -> 7 days; absent, null or "" mean "not set".
absl::StatusOr<std::optional<absl::Duration>> intervalField(const nlohmann::json& document,
                                                            const char* name) {
  const auto it = document.find(name);
  if (it == document.end() || it->is_null()) return std::optional<absl::Duration>();
  if (!it->is_string()) return wrongType(name, *it, "a string");
  absl::string_view text = it->get_ref<const std::string&>();
  if (text.empty()) return std::optional<absl::Duration>();
  int64_t seconds = 0;
  if (text.size() < 2 || text.size() > kMaxIntervalDigits + 1 || text.back() != 's' ||
      !absl::c_all_of(text.substr(0, text.size() - 1),
                      [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(text.substr(0, text.size() - 1), &seconds)) {
    return malformed(absl::StrCat(name, " is not a number of seconds like \"604800s\""));
  }
  return std::optional<absl::Duration>(absl::Seconds(seconds));
}

absl::StatusOr<std::vector<std::string>> versionStages(const nlohmann::json& document) {
  std::vector<std::string> stages;
  const auto it = document.find("VersionStages");
  if (it == document.end() || it->is_null()) return stages;
  // JSON renders the XML <VersionStages><VersionStage/>... as an object
  // holding an array.
  if (!it->is_object()) return wrongType("VersionStages", *it, "an object");
  const auto list = it->find("VersionStage");
  if (list == it->end() || list->is_null()) return stages;
  if (!list->is_array()) return wrongType("VersionStages.VersionStage", *list, "an array");
  for (const nlohmann::json& stage : *list) {
    if (!stage.is_string()) {
      return wrongType("VersionStages.VersionStage[]", stage, "a string");
    }
    const std::string& text = stage.get_ref<const std::string&>();
    if (text.empty() || text.size() > kMaxWordBytes || !internal::isVisibleAscii(text)) {
      return malformed("VersionStages.VersionStage[] is not a stage name");
    }
    stages.push_back(text);
  }
  return stages;
}

// Parses fields in document order of the doc; stops at the first problem.
absl::Status fillSecretValue(nlohmann::json& document, SecretValue& value) {
  absl::StatusOr<std::optional<std::string>> name =
      stringField(document, "SecretName", /*required=*/true, kMaxNameBytes);
  if (!name.ok()) return name.status();
  value.secret_name = **name;

  const auto data = document.find("SecretData");
  if (data == document.end() || data->is_null()) return malformed("SecretData is missing");
  if (!data->is_string()) return wrongType("SecretData", *data, "a string");
  std::string& data_text = data->get_ref<std::string&>();
  value.secret_data = SecretString(std::move(data_text));
  wipeString(data_text);

  absl::StatusOr<std::optional<std::string>> version =
      stringField(document, "VersionId", /*required=*/true, kMaxNameBytes);
  if (!version.ok()) return version.status();
  value.version_id = **version;

  struct Word {
    const char* name;
    std::string* target;
  };
  for (const Word& word :
       {Word{"SecretType", &value.secret_type}, Word{"SecretDataType", &value.secret_data_type},
        Word{"AutomaticRotation", &value.automatic_rotation},
        Word{"RequestId", &value.request_id}}) {
    absl::StatusOr<std::optional<std::string>> text =
        stringField(document, word.name, /*required=*/false, kMaxWordBytes);
    if (!text.ok()) return text.status();
    *word.target = text->value_or("");
  }

  absl::StatusOr<std::vector<std::string>> stages = versionStages(document);
  if (!stages.ok()) return stages.status();
  value.version_stages = std::move(*stages);

  struct Date {
    const char* name;
    std::optional<absl::Time>* target;
  };
  for (const Date& date :
       {Date{"CreateTime", &value.create_time}, Date{"LastRotationDate", &value.last_rotation_date},
        Date{"NextRotationDate", &value.next_rotation_date}}) {
    absl::StatusOr<std::optional<absl::Time>> time = dateField(document, date.name);
    if (!time.ok()) return time.status();
    *date.target = *time;
  }

  absl::StatusOr<std::optional<absl::Duration>> interval =
      intervalField(document, "RotationInterval");
  if (!interval.ok()) return interval.status();
  value.rotation_interval = *interval;

  // A JSON document in a string, as KMS sends it; an object is tolerated
  // and kept in its serialized form.
  const auto extended = document.find("ExtendedConfig");
  if (extended != document.end() && !extended->is_null()) {
    if (extended->is_string()) {
      value.extended_config = extended->get<std::string>();
    } else if (extended->is_object()) {
      value.extended_config = extended->dump();
    } else {
      return wrongType("ExtendedConfig", *extended, "a string");
    }
  }
  return absl::OkStatus();
}

absl::Status invalidSecret(absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("RAMCredentials secret: ", problem));
}

// A credential inside SecretData: non-empty visible ASCII within a bound,
// since it is written into credentials.ini and sent in HTTP headers.
absl::StatusOr<std::string> secretDataField(nlohmann::json& object, const char* name,
                                            size_t max_bytes) {
  absl::StatusOr<std::string> field =
      internal::takeCredentialField(object, "SecretData", name, max_bytes);
  if (!field.ok()) return invalidSecret(field.status().message());
  return field;
}

class KmsClientImpl : public KmsClient {
 public:
  KmsClientImpl(http::Client& http, const TimeSource& time_source, SignatureScheme scheme)
      : http_(http), time_source_(time_source), scheme_(scheme) {}

  absl::StatusOr<SecretValue> getSecretValue(const GetSecretValueRequest& request,
                                             const AccessKeyCredentials& credentials) override {
    if (request.secret_name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(kAction, ": SecretName is empty"));
    }
    RpcCall call;
    call.endpoint = request.endpoint;
    call.action = "GetSecretValue";
    call.version = "2016-01-20";
    call.method = "POST";
    call.params = {
        {"SecretName", request.secret_name},
        {"VersionStage", request.version_stage.empty() ? "ACSCurrent" : request.version_stage},
        // As the secretsmanager clients do: ExtendedConfig tells a managed
        // RAM key (SecretSubType RamUserAccessKey) apart.
        {"FetchExtendedConfig", "true"},
    };
    absl::StatusOr<http::Request> built = buildSignedRequest(
        call, &credentials, scheme_, time_source_.systemTime(), crypto::randomUuid());
    if (!built.ok()) return withContext(built.status(), kAction);

    absl::StatusOr<http::Response> response = http_.send(*built);
    // The URL (RPC) or a header (ACS3) carried the security token.
    wipeString(built->url);
    for (auto& [name, value] : built->headers) wipeString(value);
    if (!response.ok()) return withContext(response.status(), kAction);

    const absl::string_view redact[] = {credentials.access_key_secret.reveal(),
                                        credentials.security_token.reveal()};
    absl::StatusOr<SecretValue> value = parseGetSecretValueResponse(*response, redact);
    wipeString(response->body);
    return value;
  }

 private:
  http::Client& http_;
  const TimeSource& time_source_;
  const SignatureScheme scheme_;
};

}  // namespace

absl::StatusOr<SecretValue> parseGetSecretValueResponse(
    const http::Response& response, absl::Span<const absl::string_view> redact) {
  if (response.status < 200 || response.status > 299) {
    return statusFromErrorResponse(kAction, response.status, response.body, redact);
  }
  absl::StatusOr<nlohmann::json> document = internal::parseJsonAnswer(kAction, response.body);
  if (!document.ok()) return document.status();
  const internal::JsonWiper wiper(*document);
  if (!document->contains("SecretData") && !document->contains("SecretName")) {
    // A 200 that carries an error document: some gateways answer that way.
    if (std::optional<ApiErrorInfo> error =
            parseApiErrorBody(response.body, response.status, redact)) {
      return statusFromApiError(kAction, *error);
    }
  }
  SecretValue value;
  if (absl::Status status = fillSecretValue(*document, value); !status.ok()) return status;
  return value;
}

absl::StatusOr<RamCredentials> parseRamCredentials(const SecretValue& value) {
  if (value.secret_type != "RAMCredentials") {
    if (value.secret_type.empty()) return invalidSecret("SecretType is missing");
    if (value.secret_type.size() <= kMaxWordBytes && internal::isVisibleAscii(value.secret_type)) {
      return invalidSecret(
          absl::StrCat("SecretType is ", value.secret_type, ", not RAMCredentials"));
    }
    return invalidSecret("SecretType is not RAMCredentials");
  }
  if (!value.secret_data_type.empty() && value.secret_data_type != "text") {
    return invalidSecret("SecretDataType is not text");
  }
  const std::string& data = value.secret_data.reveal();
  if (data.empty()) return invalidSecret("SecretData is empty");
  if (data.size() > kMaxSecretDataBytes) {
    return invalidSecret(absl::StrCat("SecretData is larger than ", kMaxSecretDataBytes, " bytes"));
  }
  std::optional<nlohmann::json> document = internal::parseJsonBounded(data, kMaxSecretDataBytes);
  if (!document) return invalidSecret("SecretData is not a JSON document");
  const internal::JsonWiper wiper(*document);
  if (!document->is_object()) {
    return invalidSecret(
        absl::StrCat("SecretData is ", internal::jsonTypeName(*document), ", not a JSON object"));
  }

  RamCredentials credentials;
  absl::StatusOr<std::string> id = secretDataField(*document, "AccessKeyId", kMaxAccessKeyIdBytes);
  if (!id.ok()) return id.status();
  credentials.access_key_id = std::move(*id);
  absl::StatusOr<std::string> secret =
      secretDataField(*document, "AccessKeySecret", kMaxAccessKeySecretBytes);
  if (!secret.ok()) return secret.status();
  credentials.access_key_secret = SecretString(std::move(*secret));

  const auto generated = document->find("GenerateTimestamp");
  if (generated != document->end() && !generated->is_null()) {
    if (!generated->is_string()) {
      return invalidSecret(absl::StrCat("SecretData.GenerateTimestamp is ",
                                        internal::jsonTypeName(*generated), ", not a string"));
    }
    const std::string& text = generated->get_ref<const std::string&>();
    if (!text.empty()) {
      credentials.generate_timestamp = internal::parseUtcTimestamp(text);
      if (!credentials.generate_timestamp) {
        return invalidSecret(
            "SecretData.GenerateTimestamp is not a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
      }
    }
  }
  return credentials;
}

KmsClientPtr makeKmsClient(http::Client& http, const TimeSource& time_source,
                           SignatureScheme scheme) {
  return std::make_unique<KmsClientImpl>(http, time_source, scheme);
}

}  // namespace credsync::alibaba
