#include "sidecar/injector/admission.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/injector/injector_fixtures.h"

namespace credsync::injector {
namespace {

using nlohmann::json;

using testing::applyPatch;
using testing::decodePatch;
using ::testing::HasSubstr;
using testing::loadReview;
using ::testing::StartsWith;
using testing::testSettings;

AdmissionAnswer review(const json& body) { return reviewAdmission(body.dump(), testSettings()); }

json answerOf(const AdmissionAnswer& answer) { return json::parse(answer.body, nullptr, false); }

// Verifies every fixture is answered as an AdmissionReview for its uid:
// injected with a JSONPatch, the already-injected one skipped without one.
TEST(AdmissionTest, FixturesAreAnswered) {
  for (const std::string& name : testing::fixtureNames()) {
    SCOPED_TRACE(name);
    const json request = loadReview(name);
    const AdmissionAnswer answer = review(request);
    EXPECT_EQ(answer.http_status, 200);
    EXPECT_EQ(answer.content_type, "application/json");
    const json body = answerOf(answer);
    EXPECT_EQ(body["apiVersion"], "admission.k8s.io/v1");
    EXPECT_EQ(body["kind"], "AdmissionReview");
    EXPECT_EQ(body["response"]["uid"], request["request"]["uid"]);
    EXPECT_EQ(body["response"]["allowed"], true);
    if (name == "already-injected") {
      EXPECT_EQ(answer.result, AdmissionResult::kSkipped);
      EXPECT_FALSE(body["response"].contains("patch"));
      EXPECT_THAT(answer.summary, HasSubstr("already injected"));
      continue;
    }
    EXPECT_EQ(answer.result, AdmissionResult::kInjected) << answer.summary;
    EXPECT_EQ(body["response"]["patchType"], "JSONPatch");
    const json operations = decodePatch(body["response"]);
    ASSERT_TRUE(operations.is_array());
    const std::optional<json> patched = applyPatch(request["request"]["object"], operations);
    ASSERT_TRUE(patched.has_value());
    // Reinvocation: the patched pod comes back and is left alone.
    json again = request;
    again["request"]["object"] = *patched;
    const AdmissionAnswer second = review(again);
    EXPECT_EQ(second.result, AdmissionResult::kSkipped) << second.summary;
    EXPECT_FALSE(answerOf(second)["response"].contains("patch"));
  }
}

// Verifies warnings reach the response, and the summary names no env value.
TEST(AdmissionTest, WarningsAndSummary) {
  const AdmissionAnswer answer = review(loadReview("name-collision"));
  const json body = answerOf(answer);
  ASSERT_TRUE(body["response"]["warnings"].is_array());
  EXPECT_EQ(body["response"]["warnings"].size(), 2u);
  EXPECT_THAT(answer.summary, StartsWith("search/indexer-7c5d8f9b6-: injected: added credsync-2"));
  EXPECT_FALSE(absl::StrContains(answer.summary, "/etc/indexer/credentials.ini"));
  EXPECT_FALSE(answerOf(review(loadReview("deployment")))["response"].contains("warnings"));
}

// Verifies a dry run is answered exactly as the real request, and marked.
TEST(AdmissionTest, DryRunAnsweredAlike) {
  json request = loadReview("config-map");
  ASSERT_EQ(request["request"]["dryRun"], true);
  const AdmissionAnswer dry = review(request);
  request["request"]["dryRun"] = false;
  const AdmissionAnswer real = review(request);
  EXPECT_TRUE(dry.dry_run);
  EXPECT_FALSE(real.dry_run);
  EXPECT_EQ(dry.body, real.body);
  EXPECT_EQ(dry.result, AdmissionResult::kInjected);
}

// Verifies a bad annotation is a denial with status 400 and the one line.
TEST(AdmissionTest, DenialCarriesTheLine) {
  json request = loadReview("deployment");
  request["request"]["object"]["metadata"]["annotations"]["credsync.io/secret-My Profile"] = "x";
  const AdmissionAnswer answer = review(request);
  EXPECT_EQ(answer.result, AdmissionResult::kDenied);
  EXPECT_EQ(answer.http_status, 200);
  const json body = answerOf(answer);
  EXPECT_EQ(body["response"]["allowed"], false);
  EXPECT_EQ(body["response"]["status"]["code"], 400);
  EXPECT_EQ(body["response"]["status"]["message"],
            "credsync.io/secret-My Profile: profile name must match ^[A-Za-z0-9_-]{1,56}$ (not "
            "DEFAULT)");
  EXPECT_FALSE(body["response"].contains("patch"));
}

// Verifies a review of anything but a Pod is denied, naming what it was.
TEST(AdmissionTest, OnlyPods) {
  json request = loadReview("deployment");
  request["request"]["kind"] = {{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}};
  request["request"]["resource"] = {
      {"group", "apps"}, {"version", "v1"}, {"resource", "deployments"}};
  AdmissionAnswer answer = review(request);
  EXPECT_EQ(answer.result, AdmissionResult::kDenied);
  EXPECT_EQ(answerOf(answer)["response"]["status"]["message"],
            "credsync injector mutates only pods, not apps/v1 Deployment");
  request["request"]["kind"] = {{"group", ""}, {"version", "v1"}, {"kind", "ConfigMap"}};
  request["request"]["resource"] = {{"group", ""}, {"version", "v1"}, {"resource", "configmaps"}};
  EXPECT_EQ(answerOf(review(request))["response"]["status"]["message"],
            "credsync injector mutates only pods, not v1 ConfigMap");
}

// Verifies operations other than CREATE are skipped, even without an object.
TEST(AdmissionTest, OnlyCreate) {
  json request = loadReview("deployment");
  request["request"]["operation"] = "UPDATE";
  EXPECT_EQ(review(request).result, AdmissionResult::kSkipped);
  request["request"]["operation"] = "DELETE";
  request["request"].erase("object");
  const AdmissionAnswer answer = review(request);
  EXPECT_EQ(answer.result, AdmissionResult::kSkipped);
  EXPECT_EQ(answerOf(answer)["response"]["allowed"], true);
}

// Verifies what is not an AdmissionReview we can answer is a 400 with one line.
TEST(AdmissionTest, MalformedBodies) {
  const json good = loadReview("deployment");
  std::vector<std::string> bodies = {"", "{", "[]", "\"review\"", "null", std::string(100, '[')};
  std::vector<std::pair<std::vector<std::string>, json>> edits = {
      {{"apiVersion"}, "admission.k8s.io/v1beta1"},
      {{"kind"}, "Pod"},
      {{"request"}, nullptr},
      {{"request", "uid"}, ""},
      {{"request", "uid"}, 7},
      {{"request", "kind"}, "Pod"},
      {{"request", "resource"}, nullptr},
      {{"request", "operation"}, 1},
      {{"request", "object"}, "pod"},
      {{"request", "dryRun"}, "yes"},
  };
  for (const auto& [path, value] : edits) {
    json body = good;
    json* target = &body;
    for (size_t i = 0; i + 1 < path.size(); ++i) target = &(*target)[path[i]];
    (*target)[path.back()] = value;
    bodies.push_back(body.dump());
  }
  json without_object = good;
  without_object["request"].erase("object");
  bodies.push_back(without_object.dump());
  // 65 levels of nesting inside the pod.
  json deep = good;
  json nested = json::object();
  for (int i = 0; i < 62; ++i) nested = json{{"a", nested}};
  deep["request"]["object"]["metadata"]["x"] = nested;
  bodies.push_back(deep.dump());
  // 2^18 empty objects (2^19 nodes) in a pod annotation's place: well under
  // the body limit, but ~20 MiB once parsed.
  json wide = good;
  wide["request"]["object"]["metadata"]["x"] = json::array();
  std::string wide_text = wide.dump();
  std::string empties;
  for (int i = 0; i < (1 << 18); ++i) empties += i == 0 ? "{}" : ",{}";
  wide_text.replace(wide_text.find("\"x\":[]") + 5, 0, empties);
  bodies.push_back(wide_text);
  for (const std::string& body : bodies) {
    const AdmissionAnswer answer = reviewAdmission(body, testSettings());
    EXPECT_EQ(answer.result, AdmissionResult::kMalformed) << body.substr(0, 200);
    EXPECT_EQ(answer.http_status, 400);
    EXPECT_EQ(answer.content_type, "text/plain; charset=utf-8");
    EXPECT_THAT(answer.body, StartsWith("malformed AdmissionReview: "));
    EXPECT_EQ(answer.body.find('\n'), answer.body.size() - 1);
  }
  EXPECT_THAT(reviewAdmission(wide_text, testSettings()).body,
              HasSubstr("more than 262144 JSON objects, arrays and commas"));
}

// Verifies names from a hostile request cannot break the one-line summary
// or denial message.
TEST(AdmissionTest, HostileNamesStayOnOneLine) {
  json request = loadReview("deployment");
  request["request"]["namespace"] = "shop\nforged line";
  request["request"]["object"]["spec"]["containers"][0]["name"] = "orders\r\nx";
  request["request"]["object"]["spec"]["containers"][0]["env"] = "not a list";
  const AdmissionAnswer answer = review(request);
  EXPECT_EQ(answer.result, AdmissionResult::kDenied);
  EXPECT_EQ(answer.summary.find('\n'), std::string::npos);
  EXPECT_THAT(answer.summary, HasSubstr("shop\\x0aforged line"));
  const std::string message = answerOf(answer)["response"]["status"]["message"];
  EXPECT_EQ(message, "pod orders\\x0d\\x0ax.env: must be a list");
}

// Verifies the metric label names.
TEST(AdmissionTest, ResultNames) {
  EXPECT_EQ(resultName(AdmissionResult::kInjected), "injected");
  EXPECT_EQ(resultName(AdmissionResult::kSkipped), "skipped");
  EXPECT_EQ(resultName(AdmissionResult::kDenied), "denied");
  EXPECT_EQ(resultName(AdmissionResult::kMalformed), "malformed");
}

// The credsync container's env and the app container `app`'s URI in the
// patched pod of an answer to the credentials-uri fixture.
struct UriAnswer {
  std::string sidecar_secret;
  std::string uri;
};

UriAnswer uriAnswerOf(const json& review, const AdmissionAnswer& answer) {
  UriAnswer out;
  const std::optional<json> patched =
      applyPatch(review["request"]["object"], decodePatch(answerOf(answer)["response"]));
  if (!patched) return out;
  const std::map<std::string, std::string> sidecar =
      testing::envOf((*patched)["spec"]["initContainers"][0]);
  const auto secret = sidecar.find("CREDSYNC_LOCAL_API_PATH_SECRET");
  if (secret != sidecar.end()) out.sidecar_secret = secret->second;
  out.uri =
      testing::envOf(*testing::findContainer(*patched, "api"))["ALIBABA_CLOUD_CREDENTIALS_URI"];
  return out;
}

// Verifies each admission of a pod with credsync.io/credentials-uri draws a
// fresh path secret (256 bits, base64url), the same in credsync's env and
// in the URI, never in the log summary; pods without it draw none.
TEST(AdmissionTest, FreshPathSecretPerAdmission) {
  const json uri_review = loadReview("credentials-uri");
  const AdmissionAnswer first = review(uri_review);
  const AdmissionAnswer second = review(uri_review);
  ASSERT_EQ(first.result, AdmissionResult::kInjected) << first.summary;
  const UriAnswer a = uriAnswerOf(uri_review, first);
  const UriAnswer b = uriAnswerOf(uri_review, second);
  EXPECT_THAT(a.sidecar_secret, ::testing::MatchesRegex("[A-Za-z0-9_-]{43}"));
  EXPECT_NE(a.sidecar_secret, b.sidecar_secret);
  EXPECT_EQ(a.uri,
            absl::StrCat("http://127.0.0.1:8190/", a.sidecar_secret, "/v1/credentials/default"));
  EXPECT_EQ(b.uri,
            absl::StrCat("http://127.0.0.1:8190/", b.sidecar_secret, "/v1/credentials/default"));
  EXPECT_FALSE(absl::StrContains(first.summary, a.sidecar_secret));
  EXPECT_THAT(first.summary, HasSubstr("URI in api, exporter"));

  // A pinned source is what the secret comes from, called once a review.
  int calls = 0;
  const PathSecretSource pinned = [&calls] {
    ++calls;
    return std::string("pinned-secret-0123456789abcdefghijklmnopq");
  };
  EXPECT_EQ(uriAnswerOf(uri_review, reviewAdmission(uri_review.dump(), testSettings(), pinned)).uri,
            "http://127.0.0.1:8190/pinned-secret-0123456789abcdefghijklmnopq/v1/credentials/"
            "default");
  EXPECT_EQ(calls, 1);
  for (const std::string& name : testing::fixtureNames()) {
    if (name == "credentials-uri") continue;
    reviewAdmission(loadReview(name).dump(), testSettings(), pinned);
  }
  EXPECT_EQ(calls, 1);
  // And randomPathSecret itself: distinct, 43 characters of base64url.
  EXPECT_NE(randomPathSecret(), randomPathSecret());
  EXPECT_THAT(randomPathSecret(), ::testing::MatchesRegex("[A-Za-z0-9_-]{43}"));
}

// Verifies a denial for credsync.io/credentials-uri reaches the answer.
TEST(AdmissionTest, CredentialsUriDenied) {
  json uri_review = loadReview("credentials-uri");
  uri_review["request"]["object"]["metadata"]["annotations"]["credsync.io/credentials-uri"] =
      "api=payments";
  const AdmissionAnswer answer = review(uri_review);
  EXPECT_EQ(answer.result, AdmissionResult::kDenied);
  EXPECT_EQ(answerOf(answer)["response"]["status"]["message"],
            "credsync.io/credentials-uri: container \"api\": the pod has no profile \"payments\" "
            "(no credsync.io/secret-payments)");
}

}  // namespace
}  // namespace credsync::injector
