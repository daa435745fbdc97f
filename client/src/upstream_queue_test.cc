#include "upstream_queue.h"

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
using Clock = UpstreamQueue::Clock;

constexpr std::uint32_t kServerMax = protocol::kDefaultMaxBodyBytes;

std::uint32_t code(ErrorCode c) { return static_cast<std::uint32_t>(c); }

class UpstreamQueueTest : public ::testing::Test {
 protected:
  // Pushes a message whose callback records its result.
  void push(std::uint64_t id, std::string app, std::string data = "{}", bool binary = false) {
    queue.push(UpstreamMessage{id, std::move(app), std::move(data), binary,
                               [this](const UpstreamResult& r) { results.push_back(r); }});
  }

  // The Upstream frames take_sendable() produces at `at`; completions are run.
  std::vector<wire::Upstream> take(Clock::time_point at, std::uint32_t max_body = kServerMax) {
    std::string frames;
    std::vector<UpstreamCompletion> done;
    queue.take_sendable(at, max_body, frames, done);
    for (auto& c : done) run(c);
    std::vector<wire::Upstream> out;
    std::span<const std::uint8_t> rest{reinterpret_cast<const std::uint8_t*>(frames.data()),
                                       frames.size()};
    while (!rest.empty()) {
      const auto r = protocol::parse_frame(rest, protocol::kMaxEncodableBodyBytes);
      EXPECT_EQ(r.status, protocol::ParseStatus::kComplete);
      if (r.status != protocol::ParseStatus::kComplete) break;
      EXPECT_EQ(r.frame.type, protocol::FrameType::kUpstream);
      auto up = protocol::decode_body<wire::Upstream>(r.frame.body);
      EXPECT_TRUE(up.has_value());
      if (up) out.push_back(*up);
      rest = rest.subspan(r.frame.frame_bytes);
    }
    return out;
  }

  void ack(std::uint64_t id, std::uint32_t error_code = 0) {
    if (auto c = queue.on_ack(id, error_code, now)) run(*c);
  }

  void run(UpstreamCompletion& c) {
    released_bytes += c.bytes;
    if (c.done) c.done(c.result);
  }

  static std::vector<std::uint64_t> ids(const std::vector<wire::Upstream>& frames) {
    std::vector<std::uint64_t> out;
    for (const auto& f : frames) out.push_back(f.id());
    return out;
  }

  // The backoff always draws its ceiling: 100 ms, then 200 ms, ...
  UpstreamQueue queue{
      Backoff(milliseconds(100), milliseconds(1000), [](std::uint64_t bound) { return bound; })};
  Clock::time_point now = Clock::time_point() + std::chrono::hours(1);
  std::vector<UpstreamResult> results;
  std::size_t released_bytes = 0;
};

TEST_F(UpstreamQueueTest, SendsTheOldestMessageOfEachAppAndHoldsTheRest) {
  push(1, "chat");
  push(2, "chat");
  push(3, "news", "\x01", /*binary=*/true);
  const auto frames = take(now);
  EXPECT_EQ(ids(frames), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(frames[0].app(), "chat");
  EXPECT_EQ(frames[0].data(), "{}");
  EXPECT_EQ(frames[0].kind(), wire::DATA_KIND_JSON);
  EXPECT_EQ(frames[1].kind(), wire::DATA_KIND_BINARY);
  EXPECT_TRUE(take(now).empty());  // nothing more until an ack
}

TEST_F(UpstreamQueueTest, StoredAckCompletesTheMessageAndLetsTheAppsNextOneGo) {
  push(1, "chat");
  push(2, "chat", "[1]");
  (void)take(now);
  ack(1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].id, 1u);
  EXPECT_EQ(results[0].status, UpstreamStatus::kStored);
  EXPECT_EQ(released_bytes, 6u);  // "chat" + "{}"
  EXPECT_EQ(ids(take(now)), (std::vector<std::uint64_t>{2}));
}

TEST_F(UpstreamQueueTest, BusyAnswerSendsTheSameIdAgainAfterTheBackoffAndHoldsTheAppsNext) {
  push(1, "chat");
  push(2, "chat");
  (void)take(now);
  ack(1, code(ErrorCode::kServerBusy));
  EXPECT_TRUE(results.empty());
  EXPECT_EQ(queue.next_retry(), now + milliseconds(100));
  EXPECT_TRUE(take(now + milliseconds(99)).empty());  // 2 may not overtake 1
  EXPECT_EQ(ids(take(now + milliseconds(100))), (std::vector<std::uint64_t>{1}));
  EXPECT_FALSE(queue.next_retry());
}

TEST_F(UpstreamQueueTest, RepeatedBusyAnswersBackOffFurther) {
  push(1, "chat");
  (void)take(now);
  ack(1, code(ErrorCode::kServerBusy));
  (void)take(now + milliseconds(100));
  ack(1, code(ErrorCode::kInternal));
  EXPECT_EQ(queue.next_retry(), now + milliseconds(200));
}

TEST_F(UpstreamQueueTest, PermanentRefusalCompletesWithTheServersCode) {
  push(1, "chat");
  push(2, "chat");
  (void)take(now);
  ack(1, code(ErrorCode::kUnknownApp));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, UpstreamStatus::kRejected);
  EXPECT_EQ(results[0].error_code, 34u);
  EXPECT_NE(results[0].reason.find("unknown_app"), std::string::npos);
  EXPECT_EQ(ids(take(now)), (std::vector<std::uint64_t>{2}));
}

TEST_F(UpstreamQueueTest, DisconnectPutsWhatWasInFlightBackWithTheSameIds) {
  push(1, "chat");
  push(2, "news");
  (void)take(now);
  queue.on_disconnected();
  EXPECT_FALSE(queue.oldest_in_flight());
  EXPECT_EQ(ids(take(now)), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_TRUE(results.empty());
}

TEST_F(UpstreamQueueTest, AckForAnIdNotInFlightIsIgnored) {
  push(1, "chat");
  ack(1);  // not sent yet
  (void)take(now);
  ack(99);
  EXPECT_TRUE(results.empty());
  EXPECT_TRUE(queue.in_flight(1));
}

TEST_F(UpstreamQueueTest, MessageTooLargeForTheServerFailsAndTheAppsNextOneGoes) {
  push(1, "chat", std::string(200, 'x'), /*binary=*/true);
  push(2, "chat");
  EXPECT_EQ(ids(take(now, /*max_body=*/100)), (std::vector<std::uint64_t>{2}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].id, 1u);
  EXPECT_EQ(results[0].status, UpstreamStatus::kInvalid);
  EXPECT_NE(results[0].reason.find("max_frame_bytes"), std::string::npos);
}

TEST_F(UpstreamQueueTest, FailAllCompletesEveryMessageInCallOrder) {
  push(1, "chat");
  push(2, "news");
  push(3, "chat");
  (void)take(now);
  for (auto& c : queue.fail_all("stopped")) run(c);
  ASSERT_EQ(results.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].id, i + 1);
    EXPECT_EQ(results[i].status, UpstreamStatus::kStopped);
    EXPECT_EQ(results[i].reason, "stopped");
  }
  EXPECT_EQ(queue.size(), 0u);
}

TEST_F(UpstreamQueueTest, OldestInFlightIsWhenTheFirstUnackedMessageWasSent) {
  push(1, "chat");
  push(2, "news");
  (void)take(now);
  push(3, "mail");
  (void)take(now + milliseconds(5));
  EXPECT_EQ(queue.oldest_in_flight(), now);
  ack(1);
  ack(2);
  EXPECT_EQ(queue.oldest_in_flight(), now + milliseconds(5));
}

}  // namespace
}  // namespace herald::detail
