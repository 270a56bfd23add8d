// The fleet's model of STS and KMS: its answers must be what credsync's
// real clients parse (or classify as throttling), and its counts what the
// fleet report prints.
#include "bench/fleet/cloud_model.h"

#include "gtest/gtest.h"
#include "sidecar/alibaba/kms_client.h"
#include "sidecar/alibaba/sts_client.h"
#include "sidecar/common/upstream_error.h"
#include "tests/common/simulated_time_source.h"

namespace credsync::fleet {
namespace {

http::Request to(const std::string& endpoint) {
  http::Request request;
  request.method = "POST";
  request.url = endpoint + "/";
  return request;
}

TEST(SlidingWindowLimiterTest, AcceptsTheLimitPerWindowAndNotRefusedCalls) {
  const absl::Time start = absl::FromUnixSeconds(1767225600);
  SlidingWindowLimiter limiter(2, absl::Seconds(1));
  EXPECT_TRUE(limiter.tryAccept(start));
  EXPECT_TRUE(limiter.tryAccept(start + absl::Milliseconds(500)));
  EXPECT_FALSE(limiter.tryAccept(start + absl::Milliseconds(900)));
  // The first accepted call leaves the window; refused ones never counted.
  EXPECT_TRUE(limiter.tryAccept(start + absl::Seconds(1)));
  EXPECT_FALSE(limiter.tryAccept(start + absl::Milliseconds(1400)));
  EXPECT_TRUE(limiter.tryAccept(start + absl::Milliseconds(1500)));
}

class CloudModelTest : public ::testing::Test {
 protected:
  CloudModelTest() : model_(options(), clock_) {}
  static CloudModelOptions options() {
    CloudModelOptions options;
    options.sts_per_minute = 2;
    options.kms_per_second = 1;
    return options;
  }
  testing::SimulatedTimeSource clock_;
  CloudModel model_;
};

TEST_F(CloudModelTest, StsAnswersParseAsSessionsOfTheConfiguredLength) {
  const http::Response answer = model_.answer(0, to(model_.options().sts_endpoint));
  absl::StatusOr<alibaba::StsSession> session = alibaba::parseAssumeRoleWithOidcResponse(answer);
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ(session->expiration, clock_.systemTime() + absl::Hours(1));
  EXPECT_NE(session->credentials.access_key_id, "");
}

TEST_F(CloudModelTest, KmsAnswersCarryTheVersionOfTheirTimeAndItsRotationDate) {
  const absl::Time rotation = clock_.systemTime() + absl::Hours(2);
  model_.announceRotation(rotation);
  model_.rotateAt(rotation, std::nullopt);
  absl::StatusOr<alibaba::SecretValue> before =
      alibaba::parseGetSecretValueResponse(model_.answer(0, to(model_.options().kms_endpoint)));
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(before->next_rotation_date.has_value());
  EXPECT_EQ(*before->next_rotation_date, rotation);
  absl::StatusOr<alibaba::RamCredentials> key = alibaba::parseRamCredentials(*before);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->access_key_id, model_.keyIdAt(clock_.systemTime()));

  clock_.advance(absl::Hours(2));
  absl::StatusOr<alibaba::SecretValue> after =
      alibaba::parseGetSecretValueResponse(model_.answer(0, to(model_.options().kms_endpoint)));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_FALSE(after->next_rotation_date.has_value());
  EXPECT_NE(after->version_id, before->version_id);
  EXPECT_NE(model_.keyIdAt(clock_.systemTime()), key->access_key_id);
}

TEST_F(CloudModelTest, AboveTheQuotaAnswersAreThrottlingForTheRealClients) {
  const std::string sts = model_.options().sts_endpoint;
  const std::string kms = model_.options().kms_endpoint;
  ASSERT_EQ(model_.answer(0, to(sts)).status, 200);
  ASSERT_EQ(model_.answer(1, to(sts)).status, 200);
  absl::StatusOr<alibaba::StsSession> refused =
      alibaba::parseAssumeRoleWithOidcResponse(model_.answer(1, to(sts)));
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_TRUE(isThrottled(refused.status()));
  EXPECT_EQ(upstreamCode(refused.status()), "Throttling.User");

  ASSERT_EQ(model_.answer(0, to(kms)).status, 200);
  absl::StatusOr<alibaba::SecretValue> throttled =
      alibaba::parseGetSecretValueResponse(model_.answer(0, to(kms)));
  EXPECT_TRUE(isThrottled(throttled.status())) << throttled.status();
  EXPECT_EQ(upstreamCode(throttled.status()), "Rejected.Throttling");
}

TEST_F(CloudModelTest, CountsCallsThrottlingAndWastedRetries) {
  const std::string sts = model_.options().sts_endpoint;
  const absl::Time start = clock_.systemTime();
  model_.answer(0, to(sts));  // accepted
  model_.answer(0, to(sts));  // accepted (quota 2 a minute)
  model_.answer(0, to(sts));  // throttled
  clock_.advance(absl::Seconds(10));
  model_.answer(0, to(sts));  // a retry, throttled again: wasted
  clock_.advance(absl::Seconds(60));
  model_.answer(0, to(sts));  // a retry that succeeds
  model_.answer(1, to(model_.options().kms_endpoint));
  const Traffic traffic = model_.traffic(start, clock_.systemTime() + absl::Seconds(1));
  EXPECT_EQ(traffic.sts, 5);
  EXPECT_EQ(traffic.sts_throttled, 2);
  EXPECT_EQ(traffic.kms, 1);
  EXPECT_EQ(traffic.retries, 2);
  EXPECT_EQ(traffic.wasted_retries, 1);
  EXPECT_EQ(traffic.peak_sts_per_minute, 4);
  EXPECT_EQ(traffic.peak_kms_per_second, 1);
  // A span that ends before the last minute leaves its calls out.
  EXPECT_EQ(model_.traffic(start, start + absl::Seconds(5)).sts, 3);
}

TEST_F(CloudModelTest, AnUnknownEndpointIsNotFound) {
  EXPECT_EQ(model_.answer(0, to("https://elsewhere.invalid")).status, 404);
}

}  // namespace
}  // namespace credsync::fleet
