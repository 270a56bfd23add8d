#include "sidecar/common/upstream_error.h"

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace credsync {
namespace {

using ::testing::Optional;

// Verifies the upstream code travels as a payload: set on an error, read
// back, never set on OK or from an empty code.
TEST(UpstreamErrorTest, UpstreamCodeTravelsAsPayload) {
  const absl::Status status = withUpstreamCode(absl::UnavailableError("x"), "Throttling.User");
  EXPECT_THAT(upstreamCode(status), Optional(std::string("Throttling.User")));
  EXPECT_EQ(upstreamCode(absl::UnavailableError("x")), std::nullopt);
  EXPECT_EQ(upstreamCode(withUpstreamCode(absl::UnavailableError("x"), "")), std::nullopt);
  EXPECT_TRUE(withUpstreamCode(absl::OkStatus(), "Throttling").ok());
  EXPECT_EQ(upstreamCode(withUpstreamCode(absl::OkStatus(), "Throttling")), std::nullopt);
}

// Verifies withContext prefixes the message and keeps the code and the
// upstream code; OK stays OK.
TEST(UpstreamErrorTest, WithContextKeepsCodeAndPayload) {
  const absl::Status wrapped = withContext(
      withUpstreamCode(absl::PermissionDeniedError("KMS: denied"), "Forbidden.NoPermission"),
      "profile default");
  EXPECT_EQ(wrapped.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(wrapped.message(), "profile default: KMS: denied");
  EXPECT_THAT(upstreamCode(wrapped), Optional(std::string("Forbidden.NoPermission")));
  EXPECT_TRUE(withContext(absl::OkStatus(), "x").ok());
}

// Verifies retryability by absl code: transport and throttling yes, the rest no.
// Verifies the throttling mark is set only on errors, survives
// withContext, and is not confused with the upstream code.
TEST(UpstreamErrorTest, ThrottledMarkTravelsAsPayload) {
  EXPECT_FALSE(isThrottled(absl::UnavailableError("reset")));
  const absl::Status marked = markThrottled(absl::UnavailableError("slow down"));
  EXPECT_TRUE(isThrottled(marked));
  EXPECT_TRUE(isThrottled(withContext(marked, "profile app")));
  EXPECT_FALSE(upstreamCode(marked).has_value());
  EXPECT_FALSE(isThrottled(markThrottled(absl::OkStatus())));
}

TEST(UpstreamErrorTest, RetryableCodes) {
  EXPECT_TRUE(isRetryable(absl::UnavailableError("x")));
  EXPECT_TRUE(isRetryable(absl::DeadlineExceededError("x")));
  EXPECT_TRUE(isRetryable(absl::ResourceExhaustedError("x")));
  EXPECT_FALSE(isRetryable(absl::OkStatus()));
  EXPECT_FALSE(isRetryable(absl::PermissionDeniedError("x")));
  EXPECT_FALSE(isRetryable(absl::UnauthenticatedError("x")));
  EXPECT_FALSE(isRetryable(absl::InvalidArgumentError("x")));
  EXPECT_FALSE(isRetryable(absl::FailedPreconditionError("x")));
  EXPECT_FALSE(isRetryable(absl::InternalError("x")));
}

}  // namespace
}  // namespace credsync
