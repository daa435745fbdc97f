#include "distribution/local_router.h"

#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace herald::distribution {
namespace {

struct RecordingLink : DeviceLink {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> notifies;
  std::vector<NotifyPriority> priorities;
  int superseded = 0;
  int refreshes = 0;
  void notify(std::uint64_t stream, std::uint64_t head_seq, NotifyPriority priority) override {
    notifies.emplace_back(stream, head_seq);
    priorities.push_back(priority);
  }
  void supersede() override { ++superseded; }
  void refresh_streams() override { ++refreshes; }
};

// An access event loop's fan-out that keeps what it is handed, from any thread.
struct RecordingFanout : StreamFanout {
  std::mutex mu;
  std::vector<std::shared_ptr<const StreamNotify>> notifies;
  void fan_out(std::shared_ptr<const StreamNotify> notify) override {
    std::lock_guard lock(mu);
    notifies.push_back(std::move(notify));
  }
};

StreamNotify stream_notify(std::uint64_t stream, std::uint64_t head_seq) {
  StreamNotify notify;
  notify.stream = stream;
  notify.head_seq = head_seq;
  return notify;
}

// A router with the fan-outs of two access event loops.
class LocalRouterFanOutTest : public ::testing::Test {
 protected:
  LocalRouterFanOutTest() {
    router_.add_fanout(&first_);
    router_.add_fanout(&second_);
  }
  RecordingFanout first_;
  RecordingFanout second_;
  LocalRouter router_;
};

TEST(LocalRouter, NotifyReachesTheAttachedLink) {
  LocalRouter router;
  auto link = std::make_shared<RecordingLink>();
  router.attach("d1", link);
  EXPECT_TRUE(router.notify("d1", 0, 7, NotifyPriority::kNormal));
  ASSERT_EQ(link->notifies.size(), 1u);
  EXPECT_EQ(link->notifies[0].second, 7u);
  EXPECT_EQ(link->priorities[0], NotifyPriority::kNormal);
}

TEST(LocalRouter, NotifyToAnUnknownDeviceReportsOffline) {
  LocalRouter router;
  EXPECT_FALSE(router.notify("nobody", 0, 1, NotifyPriority::kHigh));
  EXPECT_FALSE(router.is_online("nobody"));
}

TEST(LocalRouter, ASecondConnectionSupersedesTheFirst) {
  LocalRouter router;
  auto first = std::make_shared<RecordingLink>();
  auto second = std::make_shared<RecordingLink>();
  router.attach("d1", first);
  router.attach("d1", second);
  EXPECT_EQ(first->superseded, 1);
  router.notify("d1", 0, 3, NotifyPriority::kHigh);
  EXPECT_TRUE(first->notifies.empty());
  EXPECT_EQ(second->notifies.size(), 1u);
}

TEST(LocalRouter, AnAttemptOfTheSameRaceDoesNotSupersedeTheLiveLink) {
  LocalRouter router;
  auto winner = std::make_shared<RecordingLink>();
  auto late = std::make_shared<RecordingLink>();
  EXPECT_EQ(router.attach("d1", winner, 42), AttachResult::kAttached);
  EXPECT_EQ(router.attach("d1", late, 42), AttachResult::kRaceLost);
  EXPECT_EQ(winner->superseded, 0);
  router.notify("d1", 0, 3, NotifyPriority::kHigh);
  EXPECT_EQ(winner->notifies.size(), 1u);
  EXPECT_TRUE(late->notifies.empty());
  // The refused link never held the route: its detach leaves the winner's.
  router.detach("d1", late.get());
  EXPECT_TRUE(router.is_online("d1"));
}

TEST(LocalRouter, AnotherRaceSupersedesAsBefore) {
  LocalRouter router;
  auto first = std::make_shared<RecordingLink>();
  auto second = std::make_shared<RecordingLink>();
  EXPECT_EQ(router.attach("d1", first, 42), AttachResult::kAttached);
  EXPECT_EQ(router.attach("d1", second, 43), AttachResult::kAttached);
  EXPECT_EQ(first->superseded, 1);
}

TEST(LocalRouter, RaceIdZeroAlwaysSupersedes) {
  LocalRouter router;
  auto first = std::make_shared<RecordingLink>();
  auto second = std::make_shared<RecordingLink>();
  EXPECT_EQ(router.attach("d1", first, 0), AttachResult::kAttached);
  EXPECT_EQ(router.attach("d1", second, 0), AttachResult::kAttached);
  EXPECT_EQ(first->superseded, 1);
}

TEST(LocalRouter, ARaceIdOfADeadLinkDoesNotBlockTheNextAttempt) {
  LocalRouter router;
  auto dead = std::make_shared<RecordingLink>();
  EXPECT_EQ(router.attach("d1", dead, 42), AttachResult::kAttached);
  dead.reset();
  auto next = std::make_shared<RecordingLink>();
  EXPECT_EQ(router.attach("d1", next, 42), AttachResult::kAttached);
  EXPECT_TRUE(router.notify("d1", 0, 1, NotifyPriority::kHigh));
  EXPECT_EQ(next->notifies.size(), 1u);
}

TEST(LocalRouter, DetachOfAStaleLinkLeavesTheNewRoute) {
  LocalRouter router;
  auto first = std::make_shared<RecordingLink>();
  auto second = std::make_shared<RecordingLink>();
  router.attach("d1", first);
  router.attach("d1", second);
  router.detach("d1", first.get());
  EXPECT_TRUE(router.is_online("d1"));
  router.detach("d1", second.get());
  EXPECT_FALSE(router.is_online("d1"));
  EXPECT_EQ(router.size(), 0u);
}

TEST(LocalRouter, ALinkThatDiedWithoutDetachingIsOffline) {
  LocalRouter router;
  auto link = std::make_shared<RecordingLink>();
  router.attach("d1", link);
  link.reset();
  EXPECT_FALSE(router.notify("d1", 0, 1, NotifyPriority::kHigh));
}

TEST_F(LocalRouterFanOutTest, AStreamNotifyReachesEveryFanOutAsOneSharedNotify) {
  auto link = std::make_shared<RecordingLink>();
  router_.attach("d1", link);
  StreamNotify notify = stream_notify(5, 9);
  notify.priority = NotifyPriority::kNormal;
  notify.spread_ms = 1500;
  notify.filter = std::make_shared<const StreamFilter>(
      std::vector<StreamFilter::Step>{{StreamFilter::Op::kHas, 5}});
  const StreamFilter* filter = notify.filter.get();
  router_.notify_stream(std::move(notify));

  ASSERT_EQ(first_.notifies.size(), 1u);
  ASSERT_EQ(second_.notifies.size(), 1u);
  EXPECT_EQ(first_.notifies[0], second_.notifies[0]);  // built once for every loop
  const StreamNotify& got = *first_.notifies[0];
  EXPECT_EQ(got.stream, 5u);
  EXPECT_EQ(got.head_seq, 9u);
  EXPECT_EQ(got.priority, NotifyPriority::kNormal);
  EXPECT_EQ(got.spread_ms, 1500u);
  EXPECT_EQ(got.filter.get(), filter);
  // Shared streams go through the fan-outs, never through a device's own link.
  EXPECT_TRUE(link->notifies.empty());
}

TEST(LocalRouter, AStreamNotifyReachesOnlyTheFanOutsAddedBeforeIt) {
  LocalRouter router;
  router.notify_stream(stream_notify(1, 1));  // no fan-out yet: nobody to tell
  RecordingFanout first;
  router.add_fanout(&first);
  router.notify_stream(stream_notify(1, 2));
  RecordingFanout second;
  router.add_fanout(&second);
  router.notify_stream(stream_notify(2, 3));

  ASSERT_EQ(first.notifies.size(), 2u);
  EXPECT_EQ(first.notifies[0]->head_seq, 2u);
  EXPECT_EQ(first.notifies[1]->head_seq, 3u);
  ASSERT_EQ(second.notifies.size(), 1u);
  EXPECT_EQ(second.notifies[0]->stream, 2u);
}

TEST_F(LocalRouterFanOutTest, StreamNotifiesFromManyThreadsEachReachEveryFanOutOnce) {
  constexpr std::uint64_t kThreads = 4;
  constexpr std::uint64_t kPerThread = 1000;
  std::vector<std::thread> threads;
  for (std::uint64_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      for (std::uint64_t i = 1; i <= kPerThread; ++i) router_.notify_stream(stream_notify(1, i));
    });
  }
  for (auto& thread : threads) thread.join();
  for (RecordingFanout* fanout : {&first_, &second_}) {
    ASSERT_EQ(fanout->notifies.size(), kThreads * kPerThread);
    std::uint64_t head_sum = 0;
    for (const auto& notify : fanout->notifies) head_sum += notify->head_seq;
    EXPECT_EQ(head_sum, kThreads * kPerThread * (kPerThread + 1) / 2);
  }
}

TEST(LocalRouter, StreamsChangedRefreshesTheDevicesCurrentLinkOnly) {
  LocalRouter router;
  auto first = std::make_shared<RecordingLink>();
  router.attach("d1", first);
  EXPECT_TRUE(router.streams_changed("d1"));
  EXPECT_EQ(first->refreshes, 1);

  auto second = std::make_shared<RecordingLink>();
  router.attach("d1", second);
  EXPECT_TRUE(router.streams_changed("d1"));
  EXPECT_EQ(first->refreshes, 1);
  EXPECT_EQ(second->refreshes, 1);
  EXPECT_TRUE(second->notifies.empty());
}

TEST(LocalRouter, StreamsChangedForADeviceWithoutARouteReportsOffline) {
  LocalRouter router;
  EXPECT_FALSE(router.streams_changed("nobody"));
  auto link = std::make_shared<RecordingLink>();
  router.attach("d1", link);
  router.detach("d1", link.get());
  EXPECT_FALSE(router.streams_changed("d1"));
  EXPECT_EQ(link->refreshes, 0);

  auto dead = std::make_shared<RecordingLink>();
  router.attach("d2", dead);
  dead.reset();  // died without detaching
  EXPECT_FALSE(router.streams_changed("d2"));
}

}  // namespace
}  // namespace herald::distribution
