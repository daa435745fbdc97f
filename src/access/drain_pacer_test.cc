#include "access/drain_pacer.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace herald::access {
namespace {

using namespace std::chrono_literals;
using Clock = DrainPacer::Clock;

TEST(DrainPacer, TheKthTurnIsDueKOverRateAfterTheStart) {
  const auto start = Clock::now();
  DrainPacer pacer(20, start);  // below 100 per second: one turn per claim
  ASSERT_EQ(pacer.batch(), 1u);
  EXPECT_EQ(pacer.claim(), start);
  EXPECT_EQ(pacer.claim(), start + 50ms);
  EXPECT_EQ(pacer.claim(), start + 100ms);
}

TEST(DrainPacer, AFastDrainHandsOutTheTurnsOfOneStepAtOnceAndIsDueAtTheLastOfThem) {
  const auto start = Clock::now();
  DrainPacer pacer(1000, start);  // 10 turns per 10 ms step
  ASSERT_EQ(pacer.batch(), 10u);
  EXPECT_EQ(pacer.claim(), start + 9ms);   // turns 0..9
  EXPECT_EQ(pacer.claim(), start + 19ms);  // turns 10..19
}

TEST(DrainPacer, ARateNotDividingASecondKeepsItsPaceWithoutDrift) {
  const auto start = Clock::now();
  DrainPacer pacer(3, start);
  for (int i = 0; i < 3; ++i) (void)pacer.claim();
  // The fourth turn comes exactly one second after the first.
  EXPECT_EQ(pacer.claim(), start + 1s);
}

TEST(DrainPacer, LoopsClaimingTogetherGetDistinctTurns) {
  const auto start = Clock::now();
  DrainPacer pacer(100, start);
  std::vector<std::vector<Clock::time_point>> seen(2);
  std::vector<std::thread> loops;
  for (auto& mine : seen) {
    loops.emplace_back([&pacer, &mine] {
      for (int i = 0; i < 500; ++i) mine.push_back(pacer.claim());
    });
  }
  for (auto& t : loops) t.join();
  std::vector<Clock::time_point> all(seen[0]);
  all.insert(all.end(), seen[1].begin(), seen[1].end());
  std::sort(all.begin(), all.end());
  // 1000 turns at 100 per second: one every 10 ms, none twice, the last 9.99 s after the start.
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_EQ(all[i] - all[i - 1], 10ms);
  EXPECT_EQ(all.back(), start + 9990ms);
}

}  // namespace
}  // namespace herald::access
