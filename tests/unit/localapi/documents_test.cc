// The credentials URI document against each official SDK's rules, as read in
// their sources (docs/integration.md, "When a key change reaches the app"):
//   Go    aliyun/credentials-go@9ac55b4041418ba3d0ac846cd69c000998d737b9
//         credentials/providers/uri.go: AccessKeyId, AccessKeySecret,
//         SecurityToken and Expiration must all be present (non-null); no
//         Code check; needUpdateCredential: fetch again once
//         expirationTimestamp - now <= 180 (whole seconds).
//   Python aliyun/credentials-python@0e6d313679cd9cd7b3e72f74ce4b25a606d3ca84
//         alibabacloud_credentials/provider/uri.py: Code must be "Success"
//         and the four keys present; _get_stale_time = Expiration - 15 min;
//         provider/refreshable.py: a value is refreshed before each use once
//         now >= stale time (and a fetched value already within 15 minutes
//         of its Expiration gets stale time "now": every call fetches).
//   Java  aliyun/credentials-java@b9b5c10487c6ac5f8cba00bbb6c228d429361a24
//         provider/URLCredentialProvider.java (Code "Success", four keys),
//         SessionCredentialsProvider.getStaleTime = Expiration - 15 min,
//         RefreshCachedSupplier.STALE_TIME 15 min: as Python.
//   All three parse Expiration as "yyyy-MM-dd'T'HH:mm:ss'Z'" in UTC.
#include "sidecar/localapi/documents.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace credsync::localapi {
namespace {

using nlohmann::json;

constexpr char kGoUserAgent[] =
    "AlibabaCloud (linux; amd64) Golang/1.22.5 Credentials/1.4.7 TeaDSL/1";
constexpr char kJavaUserAgent[] =
    "AlibabaCloud (Linux; amd64) Java/17.0.15 Credentials/1.0.0 TeaDSL/1";
constexpr char kPythonUserAgent[] =
    "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.3.3 TeaDSL/1";

fetch::ManagedCredential key() {
  fetch::ManagedCredential credential;
  credential.access_key_id = "LTAI5tExampleKeyId";
  credential.access_key_secret = SecretString("example/secret+value=");
  credential.version_id = "v7";
  return credential;
}

// The SDKs' Expiration parse: the fixed layout in UTC, whole seconds.
std::optional<int64_t> parseExpiration(const std::string& text) {
  absl::Time time;
  std::string error;
  if (text.size() != 20 || !absl::ParseTime("%Y-%m-%dT%H:%M:%SZ", text, &time, &error)) {
    return std::nullopt;
  }
  return absl::ToUnixSeconds(time);
}

// credentials-go: every key non-null.
bool goAccepts(const json& document) {
  for (const char* field : {"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}) {
    if (!document.contains(field) || document[field].is_null()) return false;
  }
  return parseExpiration(document["Expiration"].get<std::string>()).has_value();
}

// credentials-python and credentials-java: Code "Success", every key present.
bool pythonJavaAccept(const json& document) {
  if (!document.contains("Code") || document["Code"] != "Success") return false;
  for (const char* field : {"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}) {
    if (!document.contains(field)) return false;
  }
  return parseExpiration(document["Expiration"].get<std::string>()).has_value();
}

// @alicloud/credentials 2.4.7 (src/providers/uri.ts): SecurityToken must be
// a non-empty string. Pinned against the real SDK by the e2e test
// tests/e2e/node/sdk_credentials_uri.test.mjs.
bool nodeAccepts(const json& document) {
  return document.contains("SecurityToken") && document["SecurityToken"].is_string() &&
         !document["SecurityToken"].get<std::string>().empty();
}

// The first whole second, from the fetch at `fetched` (unix seconds, the SDK
// compares whole seconds), at which each SDK fetches again.
int64_t goFetchesAgainAt(int64_t fetched, int64_t expiration) {
  int64_t now = fetched;
  while (expiration - now > 180) ++now;
  return now;
}
int64_t pythonJavaFetchAgainAt(int64_t fetched, int64_t expiration) {
  const int64_t stale = expiration - 15 * 60;
  // refreshable.py _handle_fetched_success: a value fetched already stale is
  // given stale time "now", so the next use fetches again.
  return fetched >= stale ? fetched : stale;
}

json documentFor(absl::string_view user_agent, absl::Time now, absl::Duration refetch_within) {
  return json::parse(renderUriDocument(
      key(), uriExpiration(now, uriClientFromUserAgent(user_agent), refetch_within)));
}

// Verifies the document carries exactly what the SDKs read, with an empty
// token (a managed AccessKey has none).
TEST(UriDocumentTest, HasTheFieldsTheSdksRead) {
  const absl::Time expiration = absl::FromUnixSeconds(1767226560);  // 2026-01-01T00:16:00Z
  const json document = json::parse(renderUriDocument(key(), expiration));
  EXPECT_EQ(document["Code"], "Success");
  EXPECT_EQ(document["AccessKeyId"], "LTAI5tExampleKeyId");
  EXPECT_EQ(document["AccessKeySecret"], "example/secret+value=");
  EXPECT_EQ(document["SecurityToken"], "");
  EXPECT_EQ(document["Expiration"], "2026-01-01T00:16:00Z");
  EXPECT_EQ(document.size(), 5u);
}

// Verifies Go, Python and Java accept the document and Node refuses it, as
// their sources say.
TEST(UriDocumentTest, AcceptedByGoPythonAndJavaNotNode) {
  const json document =
      documentFor(kJavaUserAgent, absl::FromUnixSeconds(1767225600), absl::Seconds(60));
  EXPECT_TRUE(goAccepts(document));
  EXPECT_TRUE(pythonJavaAccept(document));
  EXPECT_FALSE(nodeAccepts(document));
}

// Verifies the User-Agent rule: only credentials-go's token picks the Go
// margin; Java, Python, curl and no User-Agent get the 15-minute one.
TEST(UriDocumentTest, TellsGoFromTheOthersByUserAgent) {
  EXPECT_EQ(uriClientFromUserAgent(kGoUserAgent), UriClient::kGo);
  EXPECT_EQ(uriClientFromUserAgent(kJavaUserAgent), UriClient::kOther);
  EXPECT_EQ(uriClientFromUserAgent(kPythonUserAgent), UriClient::kOther);
  EXPECT_EQ(uriClientFromUserAgent("curl/7.88.1"), UriClient::kOther);
  EXPECT_EQ(uriClientFromUserAgent(""), UriClient::kOther);
  EXPECT_EQ(uriClientFromUserAgent("Golang/1.22"), UriClient::kOther);  // not the SDK's form
  EXPECT_EQ(refetchMargin(UriClient::kGo), absl::Seconds(180));
  EXPECT_EQ(refetchMargin(UriClient::kOther), absl::Minutes(15));
}

// Verifies the bound of docs/integration.md: each SDK, given the document
// meant for it, fetches again after at most refetch_within and never sooner
// than refetch_within minus one second (so never on every call), whatever
// the fraction of a second the request came at.
TEST(UriDocumentTest, EverySdkFetchesAgainWithinTheBound) {
  for (const absl::Duration within : {absl::Seconds(10), absl::Seconds(60), absl::Minutes(10)}) {
    for (const absl::Duration fraction :
         {absl::ZeroDuration(), absl::Milliseconds(1), absl::Milliseconds(999)}) {
      const absl::Time now = absl::FromUnixSeconds(1767225600) + fraction;
      const int64_t fetched = absl::ToUnixSeconds(now);
      SCOPED_TRACE(absl::StrCat("refetch_within ", absl::FormatDuration(within), ", at +",
                                absl::FormatDuration(fraction)));
      const int64_t go_expiration =
          *parseExpiration(documentFor(kGoUserAgent, now, within)["Expiration"]);
      const int64_t go_wait = goFetchesAgainAt(fetched, go_expiration) - fetched;
      EXPECT_EQ(go_wait, absl::ToInt64Seconds(within));
      for (const char* agent : {kJavaUserAgent, kPythonUserAgent, ""}) {
        const int64_t expiration = *parseExpiration(documentFor(agent, now, within)["Expiration"]);
        const int64_t wait = pythonJavaFetchAgainAt(fetched, expiration) - fetched;
        EXPECT_EQ(wait, absl::ToInt64Seconds(within)) << agent;
      }
    }
  }
}

// Verifies why one Expiration cannot serve every SDK: Go's document would
// make Python and Java fetch before every call, and theirs would make Go
// wait 12 minutes longer.
TEST(UriDocumentTest, OneExpirationCannotServeBoth) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  const int64_t fetched = absl::ToUnixSeconds(now);
  const int64_t go_expiration =
      *parseExpiration(documentFor(kGoUserAgent, now, absl::Seconds(60))["Expiration"]);
  EXPECT_EQ(pythonJavaFetchAgainAt(fetched, go_expiration), fetched);  // every call
  const int64_t other_expiration =
      *parseExpiration(documentFor(kJavaUserAgent, now, absl::Seconds(60))["Expiration"]);
  EXPECT_EQ(goFetchesAgainAt(fetched, other_expiration) - fetched, 12 * 60 + 60);
}

// Verifies the time layout, which every SDK parses strictly.
TEST(UriDocumentTest, FormatsTimesAsTheSdksParse) {
  EXPECT_EQ(formatUriTime(absl::FromUnixSeconds(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(formatUriTime(absl::FromUnixSeconds(1767225600) + absl::Milliseconds(999)),
            "2026-01-01T00:00:00Z");
}

// Verifies the KMS GetSecretValue shape the KMS Agent API answers with,
// from the answer KMS gave.
TEST(GetSecretValueDocumentTest, RendersTheAnswerAsKmsSentIt) {
  sync::PublishedProfile profile;
  profile.name = "app";
  profile.secret_name = "acs/ram/user/app";
  profile.credential = key();
  alibaba::SecretValue& answer = profile.credential.answer;
  answer.secret_name = "acs/ram/user/app";
  answer.secret_type = "RAMCredentials";
  answer.secret_data = SecretString(
      R"({"AccessKeyId":"LTAI5tExampleKeyId","AccessKeySecret":"example/secret+value="})");
  answer.secret_data_type = "text";
  answer.version_id = "v7";
  answer.version_stages = {"ACSCurrent"};
  answer.create_time = absl::FromUnixSeconds(1767225600);
  answer.next_rotation_date = absl::FromUnixSeconds(1767830400);
  answer.rotation_interval = absl::Hours(24 * 7);
  answer.automatic_rotation = "Enabled";
  answer.request_id = "5421f2a9-1490-48bf-a53c-6f2d9d3f48e3";
  const json document = json::parse(renderGetSecretValue(profile));
  EXPECT_EQ(document["SecretName"], "acs/ram/user/app");
  EXPECT_EQ(document["SecretType"], "RAMCredentials");
  EXPECT_EQ(document["SecretData"], answer.secret_data.reveal());
  EXPECT_EQ(document["SecretDataType"], "text");
  EXPECT_EQ(document["VersionId"], "v7");
  EXPECT_EQ(document["VersionStages"], json::array({"ACSCurrent"}));
  EXPECT_EQ(document["CreateTime"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(document["NextRotationDate"], "2026-01-08T00:00:00Z");
  EXPECT_EQ(document["RotationInterval"], "604800s");
  EXPECT_EQ(document["AutomaticRotation"], "Enabled");
  EXPECT_EQ(document["RequestId"], "5421f2a9-1490-48bf-a53c-6f2d9d3f48e3");
  EXPECT_FALSE(document.contains("ExtendedConfig"));
}

// Verifies the error body.
TEST(ErrorDocumentTest, NamesCodeAndMessage) {
  const json document = json::parse(renderError("NotFound", "no profile named \"x\""));
  EXPECT_EQ(document["Code"], "NotFound");
  EXPECT_EQ(document["Message"], "no profile named \"x\"");
}

}  // namespace
}  // namespace credsync::localapi
