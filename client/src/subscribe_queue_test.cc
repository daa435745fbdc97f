#include "subscribe_queue.h"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/frame_codec.h"

namespace herald::detail {
namespace {

namespace wire = protocol::wire;
using protocol::ErrorCode;
using std::chrono::milliseconds;
using Clock = SubscribeQueue::Clock;

constexpr std::uint32_t kServerMax = protocol::kDefaultMaxBodyBytes;

std::uint32_t code(ErrorCode c) { return static_cast<std::uint32_t>(c); }

class SubscribeQueueTest : public ::testing::Test {
 protected:
  // Pushes a request whose callback records its result.
  void push(std::uint64_t id, std::string app, std::vector<std::string> topics,
            bool unsubscribe = false, std::uint32_t history = 0) {
    queue.push(SubscribeRequest{id, std::move(app), std::move(topics), unsubscribe, history,
                                [this](const SubscribeResult& r) { results.push_back(r); }});
  }

  // The Subscribe frames take_sendable() produces at `at`; completions are run.
  std::vector<wire::Subscribe> take(Clock::time_point at, std::uint32_t max_body = kServerMax) {
    std::string frames;
    std::vector<SubscribeCompletion> done;
    queue.take_sendable(at, max_body, frames, done);
    for (auto& c : done) run(c);
    std::vector<wire::Subscribe> out;
    std::span<const std::uint8_t> rest{reinterpret_cast<const std::uint8_t*>(frames.data()),
                                       frames.size()};
    while (!rest.empty()) {
      const auto r = protocol::parse_frame(rest, protocol::kMaxEncodableBodyBytes);
      EXPECT_EQ(r.status, protocol::ParseStatus::kComplete);
      if (r.status != protocol::ParseStatus::kComplete) break;
      EXPECT_EQ(r.frame.type, protocol::FrameType::kSubscribe);
      auto sub = protocol::decode_body<wire::Subscribe>(r.frame.body);
      EXPECT_TRUE(sub.has_value());
      if (sub) out.push_back(*sub);
      rest = rest.subspan(r.frame.frame_bytes);
    }
    return out;
  }

  void answer(std::uint64_t id, std::uint32_t error_code = 0) {
    if (auto c = queue.on_answer(id, error_code, now)) run(*c);
  }

  static void run(SubscribeCompletion& c) {
    if (c.done) c.done(c.result);
  }

  static std::vector<std::uint64_t> ids(const std::vector<wire::Subscribe>& frames) {
    std::vector<std::uint64_t> out;
    for (const auto& f : frames) out.push_back(f.id());
    return out;
  }

  // The backoff always draws its ceiling: 100 ms, then 200 ms, ...
  SubscribeQueue queue{
      Backoff(milliseconds(100), milliseconds(1000), [](std::uint64_t bound) { return bound; })};
  Clock::time_point now = Clock::time_point() + std::chrono::hours(1);
  std::vector<SubscribeResult> results;
};

TEST_F(SubscribeQueueTest, SendsOnlyTheOldestRequestWithItsFields) {
  push(1, "news", {"sport", "weather"}, /*unsubscribe=*/false, /*history=*/5);
  push(2, "chat", {"room.1"}, /*unsubscribe=*/true);
  const auto frames = take(now);
  ASSERT_EQ(ids(frames), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(frames[0].app(), "news");
  EXPECT_EQ(std::vector<std::string>(frames[0].topics().begin(), frames[0].topics().end()),
            (std::vector<std::string>{"sport", "weather"}));
  EXPECT_FALSE(frames[0].unsubscribe());
  EXPECT_EQ(frames[0].history(), 5u);
  EXPECT_TRUE(take(now).empty());  // another app's request waits too: one in flight overall
  EXPECT_EQ(queue.in_flight_since(), now);
}

TEST_F(SubscribeQueueTest, DoneAnswerCompletesTheRequestAndLetsTheNextGo) {
  push(1, "news", {"sport"});
  push(2, "news", {"sport"}, /*unsubscribe=*/true);
  (void)take(now);
  answer(1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].id, 1u);
  EXPECT_EQ(results[0].status, SubscribeStatus::kDone);
  EXPECT_TRUE(results[0].reason.empty());
  const auto frames = take(now);
  ASSERT_EQ(ids(frames), (std::vector<std::uint64_t>{2}));
  EXPECT_TRUE(frames[0].unsubscribe());
}

TEST_F(SubscribeQueueTest, BusyAnswerSendsTheSameIdAgainAfterTheBackoffAndHoldsTheNext) {
  push(1, "news", {"sport"});
  push(2, "news", {"sport"}, /*unsubscribe=*/true);
  (void)take(now);
  answer(1, code(ErrorCode::kServerBusy));
  EXPECT_TRUE(results.empty());
  EXPECT_FALSE(queue.in_flight_since());
  EXPECT_EQ(queue.next_retry(), now + milliseconds(100));
  EXPECT_TRUE(take(now + milliseconds(99)).empty());  // the leave may not overtake the join
  EXPECT_EQ(ids(take(now + milliseconds(100))), (std::vector<std::uint64_t>{1}));
  EXPECT_FALSE(queue.next_retry());
  answer(1, code(ErrorCode::kInternal));
  EXPECT_EQ(queue.next_retry(), now + milliseconds(200));  // backing off further
}

TEST_F(SubscribeQueueTest, RefusalCompletesWithTheServersCode) {
  push(1, "news", {"sport"});
  (void)take(now);
  answer(1, code(ErrorCode::kUnknownApp));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, SubscribeStatus::kRejected);
  EXPECT_EQ(results[0].error_code, 34u);
  EXPECT_NE(results[0].reason.find("unknown_app"), std::string::npos);
  EXPECT_EQ(queue.size(), 0u);
}

TEST_F(SubscribeQueueTest, DisconnectSendsTheRequestInFlightAgainWithTheSameId) {
  push(1, "news", {"sport"});
  (void)take(now);
  queue.on_disconnected();
  EXPECT_FALSE(queue.in_flight_since());
  EXPECT_EQ(ids(take(now)), (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(results.empty());
}

TEST_F(SubscribeQueueTest, AnswerForAnIdNotInFlightIsIgnored) {
  push(1, "news", {"sport"});
  answer(1);  // not sent yet
  (void)take(now);
  answer(99);
  EXPECT_TRUE(results.empty());
  EXPECT_TRUE(queue.in_flight(1));
}

TEST_F(SubscribeQueueTest, RequestTooLargeForTheServerFailsAndTheNextOneGoes) {
  push(1, "news", std::vector<std::string>(20, std::string(60, 't')));
  push(2, "news", {"sport"});
  EXPECT_EQ(ids(take(now, /*max_body=*/100)), (std::vector<std::uint64_t>{2}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].id, 1u);
  EXPECT_EQ(results[0].status, SubscribeStatus::kInvalid);
  EXPECT_NE(results[0].reason.find("max_frame_bytes"), std::string::npos);
}

TEST_F(SubscribeQueueTest, FailAllCompletesEveryRequestInCallOrder) {
  push(1, "news", {"a"});
  push(2, "chat", {"b"});
  (void)take(now);
  for (auto& c : queue.fail_all("stopped")) run(c);
  ASSERT_EQ(results.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(results[i].id, i + 1);
    EXPECT_EQ(results[i].status, SubscribeStatus::kStopped);
    EXPECT_EQ(results[i].reason, "stopped");
  }
  EXPECT_EQ(queue.size(), 0u);
}

TEST(SubscribeQueueProblem, AcceptsTheProtocolsTopicNames) {
  EXPECT_EQ(SubscribeQueue::problem({"a", "Z9_.~%-", std::string(64, 'x')}, 100), "");
  EXPECT_EQ(SubscribeQueue::problem(std::vector<std::string>(32, "t"), 0), "");
}

TEST(SubscribeQueueProblem, RejectsWhatTheServerWouldRefuse) {
  EXPECT_NE(SubscribeQueue::problem({}, 0), "");
  EXPECT_NE(SubscribeQueue::problem(std::vector<std::string>(33, "t"), 0), "");
  EXPECT_NE(SubscribeQueue::problem({""}, 0), "");
  EXPECT_NE(SubscribeQueue::problem({std::string(65, 'x')}, 0), "");
  for (const char* bad : {"a b", "a/b", "news*", "é", "a:b", "a#"}) {
    EXPECT_NE(SubscribeQueue::problem({"ok", bad}, 0), "") << bad;
  }
  EXPECT_NE(SubscribeQueue::problem({"ok"}, 101), "");
}

TEST(SubscribeQueueFrame, LargestValidRequestFitsTheBoundTheClientReserves) {
  wire::Subscribe sub;
  sub.set_id(~std::uint64_t{0});
  sub.set_app(std::string(64, 'a'));
  for (int i = 0; i < 32; ++i) sub.add_topics(std::string(64, 't'));
  sub.set_unsubscribe(true);
  sub.set_history(100);
  std::string frame;
  protocol::append_frame(protocol::FrameType::kSubscribe, sub, frame);
  EXPECT_LE(frame.size(), SubscribeQueue::kMaxFrameBytes);
}

}  // namespace
}  // namespace herald::detail
