#include "sidecar/common/descriptors.h"

#include <sys/resource.h>

#include "gtest/gtest.h"

namespace credsync {
namespace {

// Lowers the soft RLIMIT_NOFILE for one test and restores it.
class DescriptorLimitTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved_), 0); }
  void TearDown() override { setrlimit(RLIMIT_NOFILE, &saved_); }
  void setSoftLimit(rlim_t soft) {
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  }
  rlimit saved_{};
};

// Verifies the limit read is the soft limit in force.
TEST_F(DescriptorLimitTest, ReadsTheSoftLimit) {
  setSoftLimit(400);
  EXPECT_EQ(descriptorLimit(), 400u);
}

// Verifies a descriptor leaves the reserve exactly when its number is below
// the limit less the reserve, and that negative numbers never do.
TEST_F(DescriptorLimitTest, ReserveBoundary) {
  setSoftLimit(400);
  const int boundary = 400 - static_cast<int>(kDescriptorReserve);
  EXPECT_TRUE(leavesDescriptorReserve(0));
  EXPECT_TRUE(leavesDescriptorReserve(boundary - 1));
  EXPECT_FALSE(leavesDescriptorReserve(boundary));
  EXPECT_FALSE(leavesDescriptorReserve(399));
  EXPECT_FALSE(leavesDescriptorReserve(-1));
}

// Verifies a limit no larger than the reserve admits nothing.
TEST_F(DescriptorLimitTest, LimitWithinTheReserveAdmitsNothing) {
  setSoftLimit(kDescriptorReserve);
  EXPECT_FALSE(leavesDescriptorReserve(3));
}

// Verifies raising sets the soft limit to the hard one.
TEST_F(DescriptorLimitTest, RaiseReachesTheHardLimit) {
  setSoftLimit(300);
  const size_t raised = raiseDescriptorLimit();
  EXPECT_EQ(raised, descriptorLimit());
  const size_t hard =
      saved_.rlim_max == RLIM_INFINITY ? size_t{1} << 20 : static_cast<size_t>(saved_.rlim_max);
  EXPECT_EQ(raised, hard);
}

}  // namespace
}  // namespace credsync
