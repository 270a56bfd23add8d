#pragma once

// Debian's abseil (20220623) ships no status matchers; these are the two the
// tests need. Usage: EXPECT_THAT(status, IsOk());
//                    EXPECT_THAT(result, StatusIs(absl::StatusCode::kNotFound));
//                    EXPECT_THAT(result, StatusIs(kNotFound, HasSubstr("name")));

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace credsync::testing {

inline const absl::Status& toStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& toStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = toStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status.ToString();
  return status.ok();
}

MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = toStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + absl::StatusCodeToString(code) + " and a matching message") {
  const absl::Status& status = toStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

}  // namespace credsync::testing
