#include "sidecar/sync/change_feed.h"

#include <thread>

#include "absl/strings/str_cat.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/status_matchers.h"

namespace credsync::sync {
namespace {

using ::credsync::testing::IsOk;
using ::credsync::testing::StatusIs;

ProfileChange change(const std::string& profile, uint64_t generation) {
  return ProfileChange{profile, absl::StrCat("AK-", generation), "", generation,
                       absl::FromUnixSeconds(1700000000 + static_cast<int64_t>(generation))};
}

uint64_t nextGeneration(ChangeFeed::Subscription& subscription) {
  absl::StatusOr<std::optional<ProfileChange>> next = subscription.next(absl::Seconds(5));
  EXPECT_THAT(next, IsOk());
  if (!next.ok() || !next->has_value()) return 0;
  return (*next)->generation;
}

// Verifies every subscriber gets every change, in order, filtered by profile.
TEST(ChangeFeedTest, EverySubscriberGetsEveryChange) {
  ChangeFeed feed;
  auto all = feed.subscribe("");
  auto app = feed.subscribe("app");
  EXPECT_EQ(feed.subscribers(), 2);
  feed.onProfileChanged(change("app", 1));
  feed.onProfileChanged(change("batch", 2));
  feed.onProfileChanged(change("app", 3));
  EXPECT_EQ(nextGeneration(*all), 1u);
  EXPECT_EQ(nextGeneration(*all), 2u);
  EXPECT_EQ(nextGeneration(*all), 3u);
  EXPECT_EQ(nextGeneration(*app), 1u);
  EXPECT_EQ(nextGeneration(*app), 3u);
}

// Verifies an idle subscriber times out with nothing, and a change
// published from another thread wakes it.
TEST(ChangeFeedTest, WaitsForChanges) {
  ChangeFeed feed;
  auto subscription = feed.subscribe("");
  const absl::StatusOr<std::optional<ProfileChange>> idle =
      subscription->next(absl::Milliseconds(10));
  ASSERT_THAT(idle, IsOk());
  EXPECT_FALSE(idle->has_value());
  std::thread publisher([&] { feed.onProfileChanged(change("app", 7)); });
  EXPECT_EQ(nextGeneration(*subscription), 7u);
  publisher.join();
}

// Verifies a subscriber that stops reading is ended with ABORTED once its
// backlog is full, without holding up the publisher or other subscribers.
TEST(ChangeFeedTest, SlowSubscriberIsAbortedNotBlocking) {
  ChangeFeed feed(/*backlog=*/4);
  auto slow = feed.subscribe("");
  auto fast = feed.subscribe("");
  for (uint64_t generation = 1; generation <= 10; ++generation) {
    feed.onProfileChanged(change("app", generation));
    EXPECT_EQ(nextGeneration(*fast), generation);
  }
  EXPECT_THAT(slow->next(absl::Seconds(5)),
              StatusIs(absl::StatusCode::kAborted, ::testing::HasSubstr("subscribe again")));
}

// Verifies close() ends current and later subscriptions with CANCELLED,
// after what was already queued.
TEST(ChangeFeedTest, CloseEndsSubscriptions) {
  ChangeFeed feed;
  auto subscription = feed.subscribe("");
  feed.onProfileChanged(change("app", 1));
  feed.close();
  EXPECT_EQ(nextGeneration(*subscription), 1u);
  EXPECT_THAT(subscription->next(absl::Seconds(5)), StatusIs(absl::StatusCode::kCancelled));
  auto late = feed.subscribe("");
  EXPECT_THAT(late->next(absl::Seconds(5)), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(feed.subscribers(), 0);
}

// Verifies a subscription ends its registration when destroyed.
TEST(ChangeFeedTest, DestroyedSubscriptionUnsubscribes) {
  ChangeFeed feed;
  { auto subscription = feed.subscribe("app"); }
  EXPECT_EQ(feed.subscribers(), 0);
  feed.onProfileChanged(change("app", 1));
}

}  // namespace
}  // namespace credsync::sync
