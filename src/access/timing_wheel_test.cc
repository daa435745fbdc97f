#include "access/timing_wheel.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

namespace herald::access {
namespace {

struct Member {
  std::int64_t deadline = 0;
  bool is_closed = false;
  std::int64_t deadline_ms() const { return deadline; }
  bool closed() const { return is_closed; }
};

std::vector<Member*> advance(TimingWheel<Member>& wheel, std::int64_t now) {
  std::vector<Member*> expired;
  wheel.advance(now, [&](const std::shared_ptr<Member>& m) { expired.push_back(m.get()); });
  return expired;
}

TEST(TimingWheel, ExpiresAMemberOnceItsDeadlinePassed) {
  TimingWheel<Member> wheel(100, 16, 0);
  auto m = std::make_shared<Member>(Member{450});
  wheel.add(m);
  EXPECT_TRUE(advance(wheel, 400).empty());
  EXPECT_EQ(advance(wheel, 500), std::vector<Member*>{m.get()});
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimingWheel, AMovedDeadlineIsRefiledNotExpired) {
  TimingWheel<Member> wheel(100, 16, 0);
  auto m = std::make_shared<Member>(Member{300});
  wheel.add(m);
  m->deadline = 900;  // activity: the member's own field moves, the wheel is not touched
  EXPECT_TRUE(advance(wheel, 800).empty());
  EXPECT_EQ(advance(wheel, 900).size(), 1u);
}

TEST(TimingWheel, DeadlinesBeyondOneRevolutionWaitTheirTurn) {
  TimingWheel<Member> wheel(100, 8, 0);  // one revolution = 800 ms
  auto m = std::make_shared<Member>(Member{5000});
  wheel.add(m);
  for (std::int64_t t = 100; t < 5000; t += 100) ASSERT_TRUE(advance(wheel, t).empty()) << t;
  EXPECT_EQ(advance(wheel, 5000).size(), 1u);
}

TEST(TimingWheel, ClosedAndDeadMembersAreDroppedSilently) {
  TimingWheel<Member> wheel(100, 16, 0);
  auto closed = std::make_shared<Member>(Member{200, true});
  auto dead = std::make_shared<Member>(Member{200});
  wheel.add(closed);
  wheel.add(dead);
  dead.reset();
  EXPECT_TRUE(advance(wheel, 1000).empty());
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimingWheel, ForEachVisitsEveryLiveMember) {
  TimingWheel<Member> wheel(100, 16, 0);
  std::vector<std::shared_ptr<Member>> members;
  for (int i = 0; i < 50; ++i) {
    members.push_back(std::make_shared<Member>(Member{i * 37}));
    wheel.add(members.back());
  }
  members[3]->is_closed = true;
  int visited = 0;
  wheel.for_each([&](const std::shared_ptr<Member>&) { ++visited; });
  EXPECT_EQ(visited, 49);
}

}  // namespace
}  // namespace herald::access
