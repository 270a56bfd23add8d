#include "tests/emulator/faults.h"

#include "gtest/gtest.h"
#include "tests/common/status_matchers.h"

namespace credsync::emulator {
namespace {

// Verifies a counted fault applies to exactly that many matching requests.
TEST(FaultTableTest, CountLimitsFault) {
  FaultTable table;
  Fault fault;
  fault.action = "GetSecretValue";
  fault.kind = FaultKind::kThrottling;
  fault.remaining = 2;
  table.add(fault);
  EXPECT_FALSE(table.decide("AssumeRoleWithOIDC").failure.has_value());
  EXPECT_TRUE(table.decide("GetSecretValue").failure.has_value());
  EXPECT_TRUE(table.decide("GetSecretValue").failure.has_value());
  EXPECT_FALSE(table.decide("GetSecretValue").failure.has_value());
}

// Verifies the listener a fault targets: none means the OpenAPI listeners
// only, an instance id that instance's gateway only, "*" every gateway.
TEST(FaultTableTest, InstanceTargetsGateways) {
  FaultTable table;
  Fault one;
  one.action = "GetSecretValue";
  one.instance = "kst-a";
  table.add(one);
  EXPECT_FALSE(table.decide("GetSecretValue").failure.has_value());
  EXPECT_FALSE(table.decide("GetSecretValue", "kst-b").failure.has_value());
  EXPECT_TRUE(table.decide("GetSecretValue", "kst-a").failure.has_value());
  table.clear();
  Fault open_api;
  open_api.action = "*";
  table.add(open_api);
  EXPECT_FALSE(table.decide("GetSecretValue", "kst-a").failure.has_value());
  EXPECT_TRUE(table.decide("GetSecretValue").failure.has_value());
  table.clear();
  Fault every;
  every.action = "*";
  every.instance = "*";
  table.add(every);
  EXPECT_TRUE(table.decide("GetSecretValue", "kst-b").failure.has_value());
  EXPECT_FALSE(table.decide("GetSecretValue").failure.has_value());
}

// Verifies latency faults add up and combine with one failing fault, and
// that a wildcard matches every action.
TEST(FaultTableTest, LatencyCombinesWithFailure) {
  FaultTable table;
  Fault slow;
  slow.action = "*";
  slow.kind = FaultKind::kLatency;
  slow.latency = absl::Milliseconds(5);
  table.add(slow);
  table.add(slow);
  Fault reset;
  reset.action = "GetSecretValue";
  reset.kind = FaultKind::kReset;
  table.add(reset);
  FaultDecision decision = table.decide("GetSecretValue");
  EXPECT_EQ(decision.latency, absl::Milliseconds(10));
  ASSERT_TRUE(decision.failure.has_value());
  EXPECT_EQ(decision.failure->kind, FaultKind::kReset);
  table.clear();
  EXPECT_FALSE(table.decide("GetSecretValue").failure.has_value());
}

// Verifies a zero fraction never fires and leaves the count untouched.
TEST(FaultTableTest, FractionZeroNeverFires) {
  FaultTable table;
  Fault fault;
  fault.action = "*";
  fault.kind = FaultKind::kHttp5xx;
  fault.fraction = 0.0;
  table.add(fault);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(table.decide("X").failure.has_value());
}

// Verifies fault kinds parse by their documented names and others are refused.
TEST(FaultTableTest, ParsesKinds) {
  EXPECT_EQ(*parseFaultKind("truncated_body"), FaultKind::kTruncatedBody);
  EXPECT_EQ(*parseFaultKind("body"), FaultKind::kBody);
  EXPECT_THAT(parseFaultKind("explode"),
              credsync::testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

// Verifies counters count requests, successes and failures by code.
TEST(CountersTest, CountsByActionAndCode) {
  Counters counters;
  counters.recordSuccess("GetSecretValue");
  counters.recordFailure("GetSecretValue", "Rejected.Throttling");
  counters.recordFailure("GetSecretValue", "Rejected.Throttling");
  const nlohmann::json json = counters.toJson();
  EXPECT_EQ(json["actions"]["GetSecretValue"]["requests"], 3);
  EXPECT_EQ(json["actions"]["GetSecretValue"]["successes"], 1);
  EXPECT_EQ(json["actions"]["GetSecretValue"]["failures"]["Rejected.Throttling"], 2);
  counters.reset();
  EXPECT_TRUE(counters.toJson()["actions"].empty());
}

}  // namespace
}  // namespace credsync::emulator
