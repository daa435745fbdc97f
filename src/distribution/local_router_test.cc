#include "distribution/local_router.h"

#include <vector>

#include <gtest/gtest.h>

namespace herald::distribution {
namespace {

struct RecordingLink : DeviceLink {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> notifies;
  std::vector<NotifyPriority> priorities;
  int superseded = 0;
  void notify(std::uint64_t stream, std::uint64_t head_seq, NotifyPriority priority) override {
    notifies.emplace_back(stream, head_seq);
    priorities.push_back(priority);
  }
  void supersede() override { ++superseded; }
  void refresh_streams() override {}
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

}  // namespace
}  // namespace herald::distribution
