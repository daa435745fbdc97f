#include "access/timing_wheel.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

namespace herald::access {
namespace {

struct Member : std::enable_shared_from_this<Member> {
  explicit Member(std::int64_t d, bool c = false) : deadline(d), is_closed(c) {}
  std::int64_t deadline = 0;
  bool is_closed = false;
  TimingWheelHook hook;
  std::int64_t deadline_ms() const { return deadline; }
  bool closed() const { return is_closed; }
  TimingWheelHook& wheel_hook() { return hook; }
};

std::vector<Member*> advance_to(TimingWheel<Member>& wheel, std::int64_t now) {
  std::vector<Member*> expired;
  wheel.advance(now, [&](const std::shared_ptr<Member>& m) { expired.push_back(m.get()); });
  return expired;
}

TEST(TimingWheel, ExpiresAMemberOnceItsDeadlinePassed) {
  TimingWheel<Member> wheel(100, 16, 0);
  auto m = std::make_shared<Member>(450);
  wheel.add(m);
  EXPECT_TRUE(advance_to(wheel, 400).empty());
  EXPECT_EQ(advance_to(wheel, 500), std::vector<Member*>{m.get()});
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimingWheel, AMovedDeadlineIsRefiledNotExpired) {
  TimingWheel<Member> wheel(100, 16, 0);
  auto m = std::make_shared<Member>(300);
  wheel.add(m);
  m->deadline = 900;  // activity: the member's own field moves, the wheel is not touched
  EXPECT_TRUE(advance_to(wheel, 800).empty());
  EXPECT_EQ(advance_to(wheel, 900).size(), 1u);
}

TEST(TimingWheel, DeadlinesBeyondOneRevolutionWaitTheirTurn) {
  TimingWheel<Member> wheel(100, 8, 0);  // one revolution = 800 ms
  auto m = std::make_shared<Member>(5000);
  wheel.add(m);
  for (std::int64_t t = 100; t < 5000; t += 100) ASSERT_TRUE(advance_to(wheel, t).empty()) << t;
  EXPECT_EQ(advance_to(wheel, 5000).size(), 1u);
}

TEST(TimingWheel, ClosedAndDeadMembersAreDroppedSilently) {
  TimingWheel<Member> wheel(100, 16, 0);
  auto closed = std::make_shared<Member>(200, true);
  auto dead = std::make_shared<Member>(200);
  wheel.add(closed);
  wheel.add(dead);
  dead.reset();
  EXPECT_TRUE(advance_to(wheel, 1000).empty());
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimingWheel, ForEachVisitsEveryLiveMember) {
  TimingWheel<Member> wheel(100, 16, 0);
  std::vector<std::shared_ptr<Member>> members;
  for (int i = 0; i < 50; ++i) {
    members.push_back(std::make_shared<Member>(i * 37));
    wheel.add(members.back());
  }
  members[3]->is_closed = true;
  int visited = 0;
  wheel.for_each([&](const std::shared_ptr<Member>&) { ++visited; });
  EXPECT_EQ(visited, 49);
}

TEST(TimingWheel, ADeadlineMovedEarlierAndRefiledExpiresAtTheNewDeadline) {
  TimingWheel<Member> wheel(100, 64, 0);
  auto m = std::make_shared<Member>(5000);
  wheel.add(m);
  m->deadline = 700;  // a shorter heartbeat announced
  wheel.refile_if_earlier(*m);
  EXPECT_TRUE(advance_to(wheel, 600).empty());
  EXPECT_EQ(advance_to(wheel, 700), std::vector<Member*>{m.get()});
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_TRUE(advance_to(wheel, 6000).empty())
      << "the old filing must be gone, not expire it twice";
}

TEST(TimingWheel, WithoutARefileAnEarlierDeadlineWaitsForItsOldSlot) {
  // What refile_if_earlier() is for: the wheel only looks at a member when its slot comes round.
  TimingWheel<Member> wheel(100, 64, 0);
  auto m = std::make_shared<Member>(5000);
  wheel.add(m);
  m->deadline = 700;
  EXPECT_TRUE(advance_to(wheel, 4900).empty());
  EXPECT_EQ(advance_to(wheel, 5000).size(), 1u);
}

TEST(TimingWheel, RefilingALaterOrEqualDeadlineChangesNothing) {
  TimingWheel<Member> wheel(100, 64, 0);
  auto m = std::make_shared<Member>(700);
  wheel.add(m);
  wheel.refile_if_earlier(*m);
  m->deadline = 2000;
  wheel.refile_if_earlier(*m);
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_TRUE(advance_to(wheel, 1900).empty());
  EXPECT_EQ(advance_to(wheel, 2000).size(), 1u);
}

TEST(TimingWheel, ADeadlineMovedIntoThePastExpiresOnTheNextAdvance) {
  TimingWheel<Member> wheel(100, 64, 1000);
  auto m = std::make_shared<Member>(4000);
  wheel.add(m);
  m->deadline = 10;
  wheel.refile_if_earlier(*m);
  EXPECT_EQ(advance_to(wheel, 1000).size(), 1u);
}

TEST(TimingWheel, AlternatingEarlierAndLaterDeadlinesNeverGrowTheWheel) {
  // A device announcing a short then a long heartbeat over and over must not leave a filing
  // behind each time.
  TimingWheel<Member> wheel(100, 64, 0);
  auto m = std::make_shared<Member>(6000);
  wheel.add(m);
  std::int64_t now = 0;
  for (int i = 0; i < 1000; ++i) {
    m->deadline = now + 300;
    wheel.refile_if_earlier(*m);
    m->deadline = now + 6000;
    wheel.refile_if_earlier(*m);
    now += 100;
    ASSERT_TRUE(advance_to(wheel, now).empty()) << i;
    ASSERT_EQ(wheel.size(), 1u) << i;
  }
  EXPECT_EQ(advance_to(wheel, now + 6000).size(), 1u);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimingWheel, AMemberRefiledWhileItsSlotIsBeingVisitedIsExpiredOnce) {
  TimingWheel<Member> wheel(100, 64, 0);
  auto first = std::make_shared<Member>(500);
  auto second = std::make_shared<Member>(500);
  wheel.add(first);
  wheel.add(second);
  int expired = 0;
  // Expiring one moves the other's deadline earlier while both sit in the slot being visited.
  wheel.advance(500, [&](const std::shared_ptr<Member>& m) {
    ++expired;
    Member& other = m == first ? *second : *first;
    other.deadline = 100;
    wheel.refile_if_earlier(other);
  });
  EXPECT_EQ(expired, 2);
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_TRUE(advance_to(wheel, 10000).empty());
}

TEST(TimingWheel, ForEachMayRefileTheMembersItVisits) {
  // Shutting every connection down moves each one's deadline to its close linger.
  TimingWheel<Member> wheel(100, 64, 0);
  std::vector<std::shared_ptr<Member>> members;
  for (int i = 0; i < 200; ++i) {
    members.push_back(std::make_shared<Member>(6000 - i));
    wheel.add(members.back());
  }
  int visited = 0;
  wheel.for_each([&](const std::shared_ptr<Member>& m) {
    ++visited;
    m->deadline = 300;
    wheel.refile_if_earlier(*m);
  });
  EXPECT_EQ(visited, 200);
  EXPECT_EQ(wheel.size(), 200u);
  EXPECT_EQ(advance_to(wheel, 300).size(), 200u);
  EXPECT_EQ(wheel.size(), 0u);
}

}  // namespace
}  // namespace herald::access
