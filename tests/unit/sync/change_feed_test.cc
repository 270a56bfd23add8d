#include "sidecar/sync/change_feed.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sidecar/common/mutex.h"
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

// Verifies tryNext() never waits and reads what next() would: changes in
// order, then CANCELLED once closed and drained.
TEST(ChangeFeedTest, TryNextDoesNotWait) {
  ChangeFeed feed;
  auto subscription = feed.subscribe("");
  absl::StatusOr<std::optional<ProfileChange>> idle = subscription->tryNext();
  ASSERT_THAT(idle, IsOk());
  EXPECT_FALSE(idle->has_value());
  feed.onProfileChanged(change("app", 1));
  feed.onProfileChanged(change("batch", 2));
  feed.close();
  for (uint64_t generation : {1u, 2u}) {
    absl::StatusOr<std::optional<ProfileChange>> next = subscription->tryNext();
    ASSERT_THAT(next, IsOk());
    ASSERT_TRUE(next->has_value());
    EXPECT_EQ((*next)->generation, generation);
  }
  EXPECT_THAT(subscription->tryNext(), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(subscription->tryNext(), StatusIs(absl::StatusCode::kCancelled));
}

// Verifies tryNext() reports an overflow as ABORTED at once, ahead of
// anything still queued.
TEST(ChangeFeedTest, TryNextReportsOverflow) {
  ChangeFeed feed(/*backlog=*/2);
  auto subscription = feed.subscribe("");
  for (uint64_t generation = 1; generation <= 3; ++generation) {
    feed.onProfileChanged(change("app", generation));
  }
  EXPECT_THAT(subscription->tryNext(),
              StatusIs(absl::StatusCode::kAborted, ::testing::HasSubstr("subscribe again")));
}

// Verifies the notifier is called once for each change the subscription
// takes, once when it overflows (not for the changes it then drops), once on
// close, and not for other profiles' changes or news before it was set.
TEST(ChangeFeedTest, NotifierIsCalledForEachPieceOfNews) {
  ChangeFeed feed(/*backlog=*/2);
  auto subscription = feed.subscribe("app");
  feed.onProfileChanged(change("app", 1));  // before the notifier
  int calls = 0;                            // calls are on this thread
  subscription->setNotifier([&calls] { ++calls; });
  EXPECT_EQ(calls, 0);
  feed.onProfileChanged(change("batch", 2));
  EXPECT_EQ(calls, 0);
  feed.onProfileChanged(change("app", 3));
  EXPECT_EQ(calls, 1);
  feed.onProfileChanged(change("app", 4));  // overflows: 1 and 3 are queued
  EXPECT_EQ(calls, 2);
  feed.onProfileChanged(change("app", 5));
  EXPECT_EQ(calls, 2);
  feed.close();
  EXPECT_EQ(calls, 3);
  EXPECT_THAT(subscription->tryNext(), StatusIs(absl::StatusCode::kAborted));
}

// Verifies a subscription made after close() is told nothing (it reads
// CANCELLED), and a cleared notifier is no longer called.
TEST(ChangeFeedTest, ClearedNotifierIsNotCalled) {
  ChangeFeed feed;
  auto subscription = feed.subscribe("");
  int calls = 0;
  subscription->setNotifier([&calls] { ++calls; });
  feed.onProfileChanged(change("app", 1));
  subscription->clearNotifier();
  subscription->clearNotifier();
  feed.onProfileChanged(change("app", 2));
  feed.close();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(nextGeneration(*subscription), 1u);
  EXPECT_EQ(nextGeneration(*subscription), 2u);

  auto late = feed.subscribe("");
  late->setNotifier([&calls] { ++calls; });
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(late->tryNext(), StatusIs(absl::StatusCode::kCancelled));
}

// Verifies the notifier runs with none of the feed's locks held: it can read
// its subscription and ask the feed about its subscribers (either would
// deadlock otherwise).
TEST(ChangeFeedTest, NotifierRunsOutsideTheFeedsLocks) {
  ChangeFeed feed;
  auto subscription = feed.subscribe("");
  std::vector<uint64_t> read;
  int subscribers = 0;
  bool cancelled = false;
  subscription->setNotifier([&] {
    subscribers = feed.subscribers();
    absl::StatusOr<std::optional<ProfileChange>> next = subscription->tryNext();
    if (!next.ok()) {
      cancelled = next.status().code() == absl::StatusCode::kCancelled;
    } else if (next->has_value()) {
      read.push_back((*next)->generation);
    }
  });
  feed.onProfileChanged(change("app", 1));
  feed.onProfileChanged(change("app", 2));
  EXPECT_EQ(read, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(subscribers, 1);
  feed.close();
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(subscribers, 0);
}

// Verifies clearNotifier() waits for a call in progress on another thread
// before it returns, so the caller may then free what the notifier uses.
TEST(ChangeFeedTest, ClearNotifierWaitsForACallInProgress) {
  ChangeFeed feed;
  auto subscription = feed.subscribe("");
  Notification entered;
  Notification release;
  std::atomic<bool> returned{false};
  subscription->setNotifier([&] {
    entered.Notify();
    release.WaitForNotification();
    returned = true;
  });
  std::thread publisher([&] { feed.onProfileChanged(change("app", 1)); });
  entered.WaitForNotification();
  Notification cleared;
  std::thread clearer([&] {
    subscription->clearNotifier();
    EXPECT_TRUE(returned.load());
    cleared.Notify();
  });
  // A bound for a bug, not a synchronisation: clearNotifier() must be stuck.
  EXPECT_FALSE(cleared.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  release.Notify();
  cleared.WaitForNotification();
  clearer.join();
  publisher.join();
}

// Verifies, with publishing, subscribing, unsubscribing and closing on
// different threads at once, that every notifier-driven reader gets every
// change exactly once and in order, then CANCELLED, and that no notifier is
// ever called once its subscription is destroyed.
TEST(ChangeFeedTest, NotifiersUnderConcurrentChurn) {
  constexpr int kReaders = 4;
  constexpr int kChurners = 3;
  constexpr uint64_t kChanges = 2000;
  ChangeFeed feed;

  // A reader that drains its subscription from its notifier, as the Watch
  // reactor does; the notifier calls are never concurrent, but the reader's
  // fields are checked from the test thread, hence the mutex.
  struct Reader {
    Mutex mutex;
    std::vector<uint64_t> read ABSL_GUARDED_BY(mutex);
    bool cancelled ABSL_GUARDED_BY(mutex) = false;
    std::unique_ptr<ChangeFeed::Subscription> subscription;
  };
  std::vector<std::unique_ptr<Reader>> readers;
  for (int i = 0; i < kReaders; ++i) {
    auto reader = std::make_unique<Reader>();
    reader->subscription = feed.subscribe(i % 2 == 0 ? "" : "app");
    Reader* raw = reader.get();
    reader->subscription->setNotifier([raw] {
      while (true) {
        absl::StatusOr<std::optional<ProfileChange>> next = raw->subscription->tryNext();
        MutexLock lock(&raw->mutex);
        if (!next.ok()) {
          raw->cancelled = next.status().code() == absl::StatusCode::kCancelled;
          return;
        }
        if (!next->has_value()) return;
        raw->read.push_back((*next)->generation);
      }
    });
    readers.push_back(std::move(reader));
  }

  std::atomic<bool> stop{false};
  std::atomic<int> late_calls{0};
  std::vector<std::thread> churners;
  for (int i = 0; i < kChurners; ++i) {
    churners.emplace_back([&] {
      while (!stop.load()) {
        auto alive = std::make_shared<std::atomic<bool>>(true);
        auto subscription = feed.subscribe("app");
        ChangeFeed::Subscription* raw = subscription.get();
        subscription->setNotifier([alive, raw, &late_calls] {
          if (!alive->load()) ++late_calls;
          (void)raw->tryNext();
        });
        subscription.reset();
        alive->store(false);
      }
    });
  }
  std::thread publisher([&] {
    for (uint64_t generation = 1; generation <= kChanges; ++generation) {
      feed.onProfileChanged(change("app", generation));
    }
  });
  publisher.join();
  feed.close();
  stop = true;
  for (std::thread& churner : churners) churner.join();

  std::vector<uint64_t> expected;
  for (uint64_t generation = 1; generation <= kChanges; ++generation) {
    expected.push_back(generation);
  }
  for (const auto& reader : readers) {
    MutexLock lock(&reader->mutex);
    EXPECT_EQ(reader->read, expected);
    EXPECT_TRUE(reader->cancelled);
  }
  EXPECT_EQ(late_calls.load(), 0);
  readers.clear();
  EXPECT_EQ(feed.subscribers(), 0);
}

}  // namespace
}  // namespace credsync::sync
