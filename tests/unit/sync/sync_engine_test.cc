#include "sidecar/sync/sync_engine.h"

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/alibaba/api_error.h"
#include "sidecar/sync/published_set.h"
#include "tests/common/fake_output_writer.h"
#include "tests/common/fake_random.h"
#include "tests/common/fake_secret_source.h"
#include "tests/common/simulated_time_source.h"
#include "tests/common/status_matchers.h"
#include "tests/common/test_config.h"

namespace credsync::sync {
namespace {

using ::credsync::testing::configWithProfiles;
using ::credsync::testing::FakeSecretSource;
using ::credsync::testing::FakeWriter;

using ::testing::HasSubstr;
using ::testing::Not;

using ::credsync::testing::genericProfile;
using ::credsync::testing::genericValue;
using ::credsync::testing::key;
using ::credsync::testing::profile;
using ::credsync::testing::StatusIs;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::Pair;

class SyncEngineTest : public ::testing::Test {
 protected:
  SyncEngine& engine() {
    if (!engine_) engine_ = std::make_unique<SyncEngine>(config_, source_, writer_, time_, random_);
    return *engine_;
  }
  const ProfileStatus& statusOf(const std::string& name) {
    statuses_ = engine().status();
    for (const auto& status : statuses_) {
      if (status.name == name) return status;
    }
    ADD_FAILURE() << "no profile " << name;
    return statuses_.front();
  }

  config::Config config_ =
      configWithProfiles({profile("app", "acs/ram/user/app", /*is_default=*/true),
                          profile("batch", "acs/ram/user/batch")});
  FakeSecretSource source_;
  FakeWriter writer_;
  testing::SimulatedTimeSource time_;
  testing::FakeRandom random_;
  std::unique_ptr<SyncEngine> engine_;
  std::vector<ProfileStatus> statuses_;
};

// Verifies the first run writes both profiles, the default one as [default]
// and under its own name, and the engine becomes ready.
TEST_F(SyncEngineTest, FirstRunWritesEveryProfile) {
  source_.script["app"] = {key("AK-APP-1")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  EXPECT_FALSE(engine().ready());
  const absl::Time next = engine().runDue();
  EXPECT_EQ(next, time_.systemTime() + absl::Hours(1));
  EXPECT_THAT(writer_.current(), HasSubstr("[default]\n"));
  EXPECT_THAT(writer_.current(), HasSubstr("[app]\n"));
  EXPECT_THAT(writer_.current(), HasSubstr("[batch]\n"));
  EXPECT_THAT(writer_.current(), HasSubstr("access_key_id = AK-APP-1"));
  EXPECT_EQ(writer_.current().find("[default]"), 0u);
  EXPECT_TRUE(engine().ready());
  EXPECT_TRUE(engine().allWritten());
  EXPECT_EQ(statusOf("app").generation, 1u);
  EXPECT_EQ(statusOf("app").access_key_id, "AK-APP-1");
}

// Verifies nothing is fetched before it is due and an unchanged key does not
// publish a new generation.
TEST_F(SyncEngineTest, UnchangedKeyDoesNotRewrite) {
  source_.script["app"] = {key("AK-APP-1")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  engine().runDue();
  engine().runDue();
  EXPECT_EQ(source_.calls["app"], 1);
  time_.advance(absl::Hours(1));
  engine().runDue();
  EXPECT_EQ(source_.calls["app"], 2);
  EXPECT_EQ(engine().generation(), 1u);
  EXPECT_EQ(writer_.publishes(), 1);
}

// Verifies a rotated key is picked up on the next scheduled fetch and bumps
// the generation.
TEST_F(SyncEngineTest, RotationRewritesFile) {
  source_.script["app"] = {key("AK-APP-1"), key("AK-APP-2")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  engine().runDue();
  time_.advance(absl::Hours(1));
  engine().runDue();
  EXPECT_THAT(writer_.current(), HasSubstr("AK-APP-2"));
  EXPECT_THAT(writer_.current(), Not(HasSubstr("AK-APP-1")));
  EXPECT_EQ(statusOf("app").generation, 2u);
  EXPECT_EQ(statusOf("batch").generation, 1u);
}

// Verifies a secret's NextRotationDate pulls the next fetch to a few minutes
// after it.
TEST_F(SyncEngineTest, FetchesAfterScheduledRotation) {
  const absl::Time rotation = time_.systemTime() + absl::Minutes(20);
  source_.script["app"] = {key("AK-APP-1", rotation)};
  source_.script["batch"] = {key("AK-BATCH-1")};
  random_.set(0.0);
  EXPECT_EQ(engine().runDue(), rotation + absl::Minutes(5));
}

// Verifies a failed fetch leaves the last good key in the file, backs off,
// and recovers on the retry.
TEST_F(SyncEngineTest, FailureKeepsLastGoodKey) {
  source_.script["app"] = {key("AK-APP-1"), absl::UnavailableError("KMS: Rejected.Throttling"),
                           key("AK-APP-2")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  engine().runDue();
  time_.advance(absl::Hours(1));
  const absl::Time retry = engine().runDue();
  EXPECT_LE(retry - time_.systemTime(), absl::Seconds(2));
  EXPECT_THAT(writer_.current(), HasSubstr("AK-APP-1"));
  EXPECT_EQ(statusOf("app").consecutive_failures, 1);
  EXPECT_TRUE(absl::IsUnavailable(statusOf("app").last_error));
  EXPECT_TRUE(engine().ready());  // degraded, but the key is still valid
  time_.advance(retry - time_.systemTime());
  engine().runDue();
  EXPECT_THAT(writer_.current(), HasSubstr("AK-APP-2"));
  EXPECT_EQ(statusOf("app").consecutive_failures, 0);
}

// Verifies a throttling answer is retried on the longer, decorrelated
// schedule (4 s, then 7 s at the middle of each range), not a 5xx's 1 s,
// the last good key staying, and that a success starts the next throttled
// streak from the bottom again.
TEST_F(SyncEngineTest, ThrottlingBacksOffFurtherThanAnOutage) {
  const absl::Status throttled =
      markThrottled(absl::UnavailableError("KMS GetSecretValue: Rejected.Throttling"));
  source_.script["app"] = {key("AK-APP-1"), throttled,
                           throttled,       key("AK-APP-1"),
                           throttled,       absl::UnavailableError("KMS GetSecretValue: HTTP 503")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  random_.set(0.5);
  engine().runDue();
  const auto retryAfter = [&]() {
    time_.advance(statusOf("app").next_refresh - time_.systemTime());
    engine().runDue();
    return statusOf("app").next_refresh - time_.systemTime();
  };
  EXPECT_EQ(retryAfter(), absl::Seconds(4));  // uniform in [2 s, 6 s]
  EXPECT_EQ(retryAfter(), absl::Seconds(7));  // uniform in [2 s, 12 s]
  EXPECT_THAT(writer_.current(), HasSubstr("AK-APP-1"));
  EXPECT_TRUE(engine().ready());
  EXPECT_GT(retryAfter(), absl::Minutes(50));  // success: the slow interval
  EXPECT_EQ(retryAfter(), absl::Seconds(4));   // a new streak starts low
  EXPECT_EQ(retryAfter(), absl::Seconds(2));   // a 503: full jitter, n = 2
}

// Verifies a profile without permission is reported, nothing is written for
// it, the other profile is written, and it falls back to the slow schedule.
TEST_F(SyncEngineTest, PermissionDeniedProfileIsNotWritten) {
  source_.script["app"] = {key("AK-APP-1")};
  source_.script["batch"] = {
      absl::PermissionDeniedError("KMS GetSecretValue: Forbidden.NoPermission")};
  const absl::Time next = engine().runDue();
  EXPECT_THAT(writer_.current(), HasSubstr("AK-APP-1"));
  EXPECT_THAT(writer_.current(), Not(HasSubstr("[batch]")));
  EXPECT_FALSE(statusOf("batch").written);
  EXPECT_GE(statusOf("batch").next_refresh - time_.systemTime(), absl::Minutes(54));
  EXPECT_EQ(next, time_.systemTime() + absl::Hours(1));
  EXPECT_FALSE(engine().ready());
  EXPECT_FALSE(engine().allWritten());
  EXPECT_FALSE(engine().anyRetryablePending());
}

// Verifies an optional profile does not hold readiness back.
TEST_F(SyncEngineTest, OptionalProfileDoesNotBlockReadiness) {
  config_.profiles[1].required = false;
  source_.script["app"] = {key("AK-APP-1")};
  source_.script["batch"] = {absl::NotFoundError("KMS GetSecretValue: Forbidden.ResourceNotFound")};
  engine().runDue();
  EXPECT_TRUE(engine().ready());
}

// Verifies a failed publish keeps the keys in memory and retries soon, and
// the file appears on the next run.
TEST_F(SyncEngineTest, PublishFailureRetries) {
  source_.script["app"] = {key("AK-APP-1")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  writer_.failNext(absl::InternalError("disk full"));
  const absl::Time next = engine().runDue();
  EXPECT_TRUE(writer_.current().empty());
  EXPECT_FALSE(engine().ready());
  EXPECT_LE(next - time_.systemTime(), absl::Seconds(2));
  time_.advance(next - time_.systemTime());
  engine().runDue();
  EXPECT_THAT(writer_.current(), HasSubstr("AK-APP-1"));
  EXPECT_TRUE(engine().ready());
  // The retry rewrote the file from memory: KMS was asked once per profile.
  EXPECT_EQ(source_.calls["app"], 1);
  EXPECT_EQ(source_.calls["batch"], 1);
  EXPECT_EQ(statusOf("app").generation, 1u);
}

// Verifies a key the file cannot hold is a failed fetch of its profile: the
// last good key stays, status names the problem, the other profile is still
// written, and KMS is not polled at the retry rate.
TEST_F(SyncEngineTest, UnwritableKeyIsAFailedFetch) {
  fetch::ManagedCredential hostile = key("AK-APP-2");
  hostile.access_key_secret = SecretString("abc;def#ghi");
  source_.script["app"] = {key("AK-APP-1"), hostile};
  source_.script["batch"] = {key("AK-BATCH-1"), key("AK-BATCH-2")};
  engine().runDue();
  engine().requestRefreshForTest("app");
  engine().requestRefreshForTest("batch");
  const absl::Time next = engine().runDue();
  EXPECT_THAT(writer_.current(), HasSubstr("AK-APP-1"));
  EXPECT_THAT(writer_.current(), HasSubstr("AK-BATCH-2"));
  EXPECT_THAT(writer_.current(), Not(HasSubstr("abc;def")));
  const ProfileStatus& app = statusOf("app");
  EXPECT_EQ(app.access_key_id, "AK-APP-1");
  EXPECT_EQ(app.consecutive_failures, 1);
  EXPECT_THAT(app.last_error.message(), HasSubstr("credentials.ini cannot hold"));
  EXPECT_THAT(app.last_error.message(), Not(HasSubstr("abc;def")));
  EXPECT_GE(next - time_.systemTime(), absl::Minutes(30));
}

// Verifies requestRefreshForTest makes a profile due at once.
TEST_F(SyncEngineTest, RequestRefreshMakesDue) {
  source_.script["app"] = {key("AK-APP-1"), key("AK-APP-2")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  engine().runDue();
  EXPECT_TRUE(engine().requestRefreshForTest("app"));
  EXPECT_FALSE(engine().requestRefreshForTest("nope"));
  engine().runDue();
  EXPECT_THAT(writer_.current(), HasSubstr("AK-APP-2"));
  EXPECT_EQ(source_.calls["batch"], 1);
}

// Verifies a refresh requested while that profile's fetch is in flight is not
// lost to the schedule the finishing fetch computes.
TEST_F(SyncEngineTest, RequestDuringFetchIsKept) {
  source_.script["app"] = {key("AK-APP-1"), key("AK-APP-2")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  source_.during_fetch = [this] { engine().requestRefreshForTest("app"); };
  const absl::Time next = engine().runDue();
  EXPECT_EQ(next, time_.systemTime());
  engine().runDue();
  EXPECT_THAT(writer_.current(), HasSubstr("AK-APP-2"));
}

}  // namespace
}  // namespace credsync::sync

namespace credsync::sync {
namespace {

// Records what listeners are told.
class RecordingListener : public SyncListener {
 public:
  void onFetchCompleted(const std::string& profile, const absl::Status& result) override {
    fetches.push_back(profile + (result.ok() ? ":ok" : ":failed"));
  }
  void onProfileChanged(const ProfileChange& change) override { changes.push_back(change); }
  void onRoundFinished() override { ++rounds; }
  void onPublished(const std::shared_ptr<const PublishedSet>& set) override {
    published.push_back(set);
  }
  bool wantsPublishedSets() const override { return wants_published; }
  bool wants_published = true;
  std::vector<std::string> fetches;
  std::vector<ProfileChange> changes;
  std::vector<std::shared_ptr<const PublishedSet>> published;
  int rounds = 0;
};

// Verifies the local API's view: after each publish that succeeded, the set
// of what the files hold (never a fetched key whose write failed), each
// profile by name and "default".
TEST_F(SyncEngineTest, ListenersGetWhatTheFilesHold) {
  RecordingListener listener;
  engine().addListener(&listener);
  source_.script["app"] = {key("AK-APP-1"), key("AK-APP-2"), key("AK-APP-3")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  engine().runDue();
  ASSERT_EQ(listener.published.size(), 1u);
  const PublishedSet& first = *listener.published[0];
  EXPECT_EQ(first.generation, 1u);
  EXPECT_EQ(first.published_at, time_.systemTime());
  ASSERT_EQ(first.profiles.size(), 2u);
  EXPECT_EQ(first.find("default")->credential.access_key_id, "AK-APP-1");
  EXPECT_EQ(first.find("app")->secret_name, "acs/ram/user/app");
  EXPECT_EQ(first.find("batch")->credential.access_key_id, "AK-BATCH-1");
  EXPECT_EQ(first.find("nosuch"), nullptr);

  writer_.failNext(absl::InternalError("disk full"));
  engine().requestRefreshForTest("app");
  const absl::Time retry = engine().runDue();
  EXPECT_EQ(listener.published.size(), 1u);  // AK-APP-2 is not in the file
  time_.advance(retry - time_.systemTime());
  engine().runDue();
  ASSERT_EQ(listener.published.size(), 2u);
  EXPECT_EQ(listener.published[1]->find("default")->credential.access_key_id, "AK-APP-2");
  EXPECT_EQ(listener.published[1]->generation, 2u);
  // The first set is unchanged: readers holding it are not disturbed.
  EXPECT_EQ(first.find("app")->credential.access_key_id, "AK-APP-1");

  // A listener that does not ask for sets gets none.
  RecordingListener other;
  other.wants_published = false;
  engine().addListener(&other);
  engine().requestRefreshForTest("app");
  engine().runDue();
  ASSERT_EQ(listener.published.size(), 3u);  // a publish did happen
  EXPECT_EQ(listener.published[2]->find("app")->credential.access_key_id, "AK-APP-3");
  EXPECT_TRUE(other.published.empty());
}

// Verifies the end of a round is told after a round that only retried a
// failed publish (no fetch), so the change hooks learn of that change too;
// and not after a round that did nothing.
TEST_F(SyncEngineTest, RoundFinishedAfterAPublishOnlyRound) {
  RecordingListener listener;
  engine().addListener(&listener);
  source_.script["app"] = {key("AK-APP-1")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  writer_.failNext(absl::InternalError("disk full"));
  const absl::Time retry = engine().runDue();
  EXPECT_EQ(listener.rounds, 1);
  EXPECT_TRUE(listener.changes.empty());
  time_.advance(retry - time_.systemTime());
  engine().runDue();  // nothing due to fetch: the publish is retried
  EXPECT_EQ(listener.changes.size(), 2u);
  EXPECT_EQ(listener.rounds, 2);
  EXPECT_EQ(source_.calls["app"], 1);
  engine().runDue();  // nothing at all
  EXPECT_EQ(listener.rounds, 2);
}

// Verifies listeners hear every fetch and every change of a profile's key in
// the file, with the previous key and the generation; a fetch that brings
// the same key is no change.
TEST_F(SyncEngineTest, ListenersHearFetchesAndChanges) {
  RecordingListener listener;
  engine().addListener(&listener);
  source_.script["app"] = {key("AK-APP-1"), key("AK-APP-1"), key("AK-APP-2")};
  source_.script["batch"] = {key("AK-BATCH-1"), absl::UnavailableError("down")};
  engine().runDue();
  ASSERT_EQ(listener.changes.size(), 2u);
  EXPECT_EQ(listener.changes[0].profile, "app");
  EXPECT_EQ(listener.changes[0].access_key_id, "AK-APP-1");
  EXPECT_EQ(listener.changes[0].previous_access_key_id, "");
  EXPECT_EQ(listener.changes[0].generation, 1u);

  engine().requestRefreshForTest("app");
  engine().requestRefreshForTest("batch");
  engine().runDue();
  EXPECT_EQ(listener.changes.size(), 2u);
  engine().requestRefreshForTest("app");
  engine().runDue();
  ASSERT_EQ(listener.changes.size(), 3u);
  EXPECT_EQ(listener.changes[2].access_key_id, "AK-APP-2");
  EXPECT_EQ(listener.changes[2].previous_access_key_id, "AK-APP-1");
  EXPECT_EQ(listener.changes[2].generation, 2u);
  EXPECT_EQ(listener.changes[2].change_time, time_.systemTime());
  EXPECT_THAT(listener.fetches,
              ::testing::ElementsAre("app:ok", "batch:ok", "app:ok", "batch:failed", "app:ok"));
}

// Verifies the refresh view: fetches are numbered as they start and
// complete, a request shows as pending until a fetch starts, and "default"
// resolves to the default profile.
TEST_F(SyncEngineTest, RefreshViewTracksFetches) {
  source_.script["app"] = {key("AK-APP-1")};
  source_.script["batch"] = {key("AK-BATCH-1")};
  engine().runDue();
  std::optional<RefreshView> view =
      engine().inspectAndRequest("default", [](const RefreshView&) { return true; });
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->profile, "app");
  EXPECT_EQ(view->access_key_id, "AK-APP-1");
  EXPECT_EQ(view->fetches_started, 1u);
  EXPECT_EQ(view->fetches_completed, 1u);
  EXPECT_TRUE(view->fetch_requested);
  source_.during_fetch = [this] {
    const auto seen = engine().inspectAndRequest("app", [](const RefreshView&) { return false; });
    EXPECT_TRUE(seen->fetch_in_flight);
    EXPECT_FALSE(seen->fetch_requested);
    EXPECT_EQ(seen->fetches_started, 2u);
  };
  engine().runDue();
  view = engine().inspectAndRequest("app", [](const RefreshView&) { return false; });
  EXPECT_EQ(view->fetches_completed, 2u);
  EXPECT_FALSE(view->fetch_in_flight);
  EXPECT_FALSE(engine().inspectAndRequest("nope", [](const RefreshView&) { return true; }));
}

// Generic profiles beside a RAM credentials profile: "db" splits a JSON
// object into db.* files, "api" writes its value raw.
class GenericProfilesTest : public SyncEngineTest {
 protected:
  GenericProfilesTest() {
    config_ = configWithProfiles(
        {profile("app", "acs/ram/user/app", /*is_default=*/true),
         genericProfile("db", "db/main", config::GenericFormat::kJsonKeys, "db."),
         genericProfile("api", "api/key", config::GenericFormat::kRaw, "api-key")});
  }
};

// Verifies the first round publishes credentials.ini and every generic file
// as one set, and status tells the kinds, versions and files apart.
TEST_F(GenericProfilesTest, PublishesEverythingInOneSet) {
  source_.script["app"] = {key("AK-APP-1")};
  source_.script["db"] = {genericValue("v1", {{"db.user", "app"}, {"db.password", "pw-1"}})};
  source_.script["api"] = {genericValue("a1", {{"api-key", "key-1"}})};
  engine().runDue();
  EXPECT_EQ(writer_.publishes(), 1);
  const auto files = writer_.files();
  EXPECT_THAT(files, ElementsAre(Pair("api-key", "key-1"), Pair("credentials.ini", _),
                                 Pair("db.password", "pw-1"), Pair("db.user", "app")));
  EXPECT_THAT(writer_.current(), Not(HasSubstr("[db]")));
  EXPECT_THAT(writer_.current(), Not(HasSubstr("[api]")));
  EXPECT_TRUE(engine().ready());
  const ProfileStatus& db = statusOf("db");
  EXPECT_EQ(db.kind, config::ProfileKind::kGeneric);
  EXPECT_TRUE(db.written);
  EXPECT_EQ(db.version_id, "v1");
  EXPECT_TRUE(db.access_key_id.empty());
  EXPECT_THAT(db.files, ElementsAre("db.password", "db.user"));
  EXPECT_EQ(statusOf("app").kind, config::ProfileKind::kRamCredentials);
  EXPECT_TRUE(statusOf("app").files.empty());
}

// Verifies a new version of a generic secret and a rotated key switch
// together in one publish, and Watch listeners hear each profile's change
// with its versions.
TEST_F(GenericProfilesTest, NewVersionsSwitchTogether) {
  RecordingListener listener;
  engine().addListener(&listener);
  source_.script["app"] = {key("AK-APP-1"), key("AK-APP-2")};
  source_.script["db"] = {genericValue("v1", {{"db.password", "pw-1"}}),
                          genericValue("v2", {{"db.password", "pw-2"}, {"db.port", "5432"}})};
  source_.script["api"] = {genericValue("a1", {{"api-key", "key-1"}})};
  engine().runDue();
  listener.changes.clear();
  time_.advance(absl::Hours(2));
  engine().runDue();
  EXPECT_EQ(writer_.publishes(), 2);
  const auto files = writer_.files();
  EXPECT_THAT(files.at("credentials.ini"), HasSubstr("AK-APP-2"));
  EXPECT_EQ(files.at("db.password"), "pw-2");
  EXPECT_EQ(files.at("db.port"), "5432");
  ASSERT_EQ(listener.changes.size(), 2u);
  const ProfileChange& app = listener.changes[0];
  const ProfileChange& db = listener.changes[1];
  EXPECT_EQ(app.profile, "app");
  EXPECT_EQ(db.profile, "db");
  EXPECT_EQ(app.generation, db.generation);
  EXPECT_EQ(db.version_id, "v2");
  EXPECT_EQ(db.previous_version_id, "v1");
  EXPECT_TRUE(db.access_key_id.empty());
  EXPECT_EQ(statusOf("db").generation, 2u);
  // "api" did not change: its generation stays.
  EXPECT_EQ(statusOf("api").generation, 1u);
}

// Verifies a fetch that fails for a generic profile (a value json_keys
// cannot split) keeps the last good files, and the other profiles still
// update.
TEST_F(GenericProfilesTest, BadValueKeepsTheLastGoodFiles) {
  source_.script["app"] = {key("AK-APP-1"), key("AK-APP-2")};
  source_.script["db"] = {genericValue("v1", {{"db.password", "pw-1"}}),
                          absl::InvalidArgumentError("SecretData is not valid JSON")};
  source_.script["api"] = {genericValue("a1", {{"api-key", "key-1"}})};
  engine().runDue();
  time_.advance(absl::Hours(2));
  engine().runDue();
  const auto files = writer_.files();
  EXPECT_EQ(files.at("db.password"), "pw-1");
  EXPECT_THAT(files.at("credentials.ini"), HasSubstr("AK-APP-2"));
  const ProfileStatus& db = statusOf("db");
  EXPECT_TRUE(db.written);
  EXPECT_EQ(db.version_id, "v1");
  EXPECT_THAT(db.last_error, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(db.consecutive_failures, 1);
}

// Verifies a config of generic profiles only writes no credentials.ini, and
// a key removed from the JSON object disappears from the set.
TEST_F(SyncEngineTest, GenericOnlyWritesNoCredentialsIni) {
  config_ = configWithProfiles(
      {genericProfile("db", "db/main", config::GenericFormat::kJsonKeys, "db.")});
  source_.script["db"] = {genericValue("v1", {{"db.user", "u"}, {"db.password", "p"}}),
                          genericValue("v2", {{"db.password", "p2"}})};
  engine().runDue();
  EXPECT_THAT(writer_.files(), ElementsAre(Pair("db.password", "p"), Pair("db.user", "u")));
  EXPECT_TRUE(engine().ready());
  EXPECT_TRUE(engine().allWritten());
  time_.advance(absl::Hours(2));
  engine().runDue();
  EXPECT_THAT(writer_.files(), ElementsAre(Pair("db.password", "p2")));
  EXPECT_THAT(statusOf("db").files, ElementsAre("db.password"));
}

// Verifies the refresh view of a generic profile carries the version in the
// files, not an AccessKey id.
TEST_F(GenericProfilesTest, RefreshViewCarriesTheVersion) {
  source_.script["app"] = {key("AK-APP-1")};
  source_.script["db"] = {genericValue("v1", {{"db.password", "pw-1"}})};
  source_.script["api"] = {genericValue("a1", {{"api-key", "key-1"}})};
  engine().runDue();
  const auto view = engine().inspectAndRequest("db", [](const RefreshView&) { return false; });
  ASSERT_TRUE(view.has_value());
  EXPECT_TRUE(view->generic);
  EXPECT_EQ(view->version_id, "v1");
  EXPECT_TRUE(view->access_key_id.empty());
}

}  // namespace
}  // namespace credsync::sync
