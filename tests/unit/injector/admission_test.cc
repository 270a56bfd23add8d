#include "sidecar/injector/admission.h"

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

}  // namespace
}  // namespace credsync::injector
