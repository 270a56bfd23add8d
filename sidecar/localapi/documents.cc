#include "sidecar/localapi/documents.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace credsync::localapi {
namespace {

// Rendering must never throw on odd bytes from upstream: invalid UTF-8 is
// replaced (KMS sends valid JSON strings, so this only guards the process).
std::string dump(const nlohmann::json& document) {
  return document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

UriClient uriClientFromUserAgent(absl::string_view user_agent) {
  // The token credentials-go puts in every User-Agent it sends
  // (credentials/internal/http/http.go: "... Golang/<version> Credentials/...").
  return absl::StrContains(user_agent, " Golang/") ? UriClient::kGo : UriClient::kOther;
}

absl::Duration refetchMargin(UriClient client) {
  switch (client) {
    case UriClient::kGo:
      return absl::Seconds(180);
    case UriClient::kOther:
      return absl::Minutes(15);
  }
  return absl::Minutes(15);
}

absl::Time uriExpiration(absl::Time now, UriClient client, absl::Duration refetch_within) {
  const absl::Time whole_second = absl::FromUnixSeconds(absl::ToUnixSeconds(now));
  return whole_second + refetchMargin(client) + absl::Seconds(absl::ToInt64Seconds(refetch_within));
}

std::string formatUriTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

std::string renderUriDocument(const fetch::ManagedCredential& credential, absl::Time expiration) {
  nlohmann::json document = nlohmann::json::object();
  document["Code"] = "Success";
  document["AccessKeyId"] = credential.access_key_id;
  document["AccessKeySecret"] = credential.access_key_secret.reveal();
  document["SecurityToken"] = "";
  document["Expiration"] = formatUriTime(expiration);
  return dump(document);
}

std::string renderGetSecretValue(const sync::PublishedProfile& profile) {
  const alibaba::SecretValue& answer = profile.credential.answer;
  nlohmann::json document = nlohmann::json::object();
  document["RequestId"] = answer.request_id;
  document["SecretName"] = answer.secret_name.empty() ? profile.secret_name : answer.secret_name;
  document["SecretType"] = answer.secret_type;
  document["SecretData"] = answer.secret_data.reveal();
  document["SecretDataType"] = answer.secret_data_type.empty() ? "text" : answer.secret_data_type;
  document["VersionId"] =
      answer.version_id.empty() ? profile.credential.version_id : answer.version_id;
  // A plain list, as KMS instances (the KMS Agent's only backend) send it.
  document["VersionStages"] = answer.version_stages;
  document["CreateTime"] = answer.create_time ? formatUriTime(*answer.create_time) : "";
  if (answer.last_rotation_date) {
    document["LastRotationDate"] = formatUriTime(*answer.last_rotation_date);
  }
  if (answer.next_rotation_date) {
    document["NextRotationDate"] = formatUriTime(*answer.next_rotation_date);
  }
  if (answer.rotation_interval) {
    document["RotationInterval"] =
        absl::StrCat(absl::ToInt64Seconds(*answer.rotation_interval), "s");
  }
  if (!answer.automatic_rotation.empty()) document["AutomaticRotation"] = answer.automatic_rotation;
  if (!answer.extended_config.empty()) document["ExtendedConfig"] = answer.extended_config;
  return dump(document);
}

std::string renderError(absl::string_view code, absl::string_view message) {
  return dump(nlohmann::json{{"Code", std::string(code)}, {"Message", std::string(message)}});
}

}  // namespace credsync::localapi
