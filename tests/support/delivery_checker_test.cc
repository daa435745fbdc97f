// DeliveryChecker on recorded histories, no server: each kind of violation is found, and what the
// contract allows (announced gaps, unknown outcomes) is not counted as one.
#include "delivery_checker.h"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace herald::testing {
namespace {

// Acknowledged for one device, stored in its inbox at epoch 1, seq `seq`.
SendRecord acked(const std::string& key, const std::string& device, std::uint64_t seq = 0) {
  SendRecord s{key, {device}, SendOutcome::kAcknowledged, {}};
  if (seq != 0) s.positions.push_back({0, 1, seq});
  return s;
}

DeliveryRecord delivered(const std::string& key, const std::string& device, std::uint64_t seq,
                         std::uint64_t epoch = 1, std::uint64_t stream = 0) {
  return {device, "news", stream, epoch, seq, "id-" + key, key};
}

TEST(DeliveryChecker, CleanHistoryIsOk) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1", 1));
  c.record_send(acked("b", "d1", 2));
  c.record_send(acked("c", "d2", 1));
  c.record_delivery(delivered("a", "d1", 1));
  c.record_delivery(delivered("b", "d1", 2));
  c.record_delivery(delivered("c", "d2", 1));
  const DeliveryReport r = c.check();
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.acknowledged, 3u);
  EXPECT_EQ(r.deliveries, 3u);
  EXPECT_EQ(r.owed, 3u);
  EXPECT_NE(r.summary().find("OK: no violation"), std::string::npos);
}

TEST(DeliveryChecker, AcknowledgedNeverDeliveredIsLost) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1", 1));
  c.record_send(acked("b", "d1", 2));
  c.record_delivery(delivered("a", "d1", 1));
  const DeliveryReport r = c.check();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lost.count, 1u);
  ASSERT_EQ(r.lost.examples.size(), 1u);
  EXPECT_NE(r.lost.examples[0].find("key b for d1"), std::string::npos);
  EXPECT_NE(r.summary().find("VIOLATIONS: 1"), std::string::npos);
}

TEST(DeliveryChecker, MessageForTwoDevicesDeliveredToOneIsLostForTheOther) {
  DeliveryChecker c;
  c.record_send({"a", {"d1", "d2"}, SendOutcome::kAcknowledged, {}});
  c.record_delivery(delivered("a", "d1", 1));
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.owed, 2u);
  EXPECT_EQ(r.lost.count, 1u);
  EXPECT_NE(r.lost.examples[0].find("d2"), std::string::npos);
}

TEST(DeliveryChecker, DeliveredButNeverSentIsUnexpected) {
  DeliveryChecker c;
  c.record_delivery(delivered("ghost", "d1", 1));
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.unexpected.count, 1u);
  EXPECT_NE(r.unexpected.examples[0].find("never sent"), std::string::npos);
}

TEST(DeliveryChecker, DeliveredToADeviceItWasNotForIsUnexpected) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1", 1));
  c.record_delivery(delivered("a", "d1", 1));
  c.record_delivery(delivered("a", "d2", 1));
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.unexpected.count, 1u);
  EXPECT_NE(r.unexpected.examples[0].find("sent to other devices"), std::string::npos);
}

TEST(DeliveryChecker, DeliveredAfterARefusalIsUnexpected) {
  DeliveryChecker c;
  c.record_send({"a", {"d1"}, SendOutcome::kRefused, {}});
  c.record_delivery(delivered("a", "d1", 1));
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.refused, 1u);
  EXPECT_EQ(r.unexpected.count, 1u);
  EXPECT_NE(r.unexpected.examples[0].find("refused"), std::string::npos);
}

TEST(DeliveryChecker, RefusedAndNeverDeliveredIsFine) {
  DeliveryChecker c;
  c.record_send({"a", {"d1"}, SendOutcome::kRefused, {}});
  EXPECT_TRUE(c.check().ok());
}

TEST(DeliveryChecker, SameMessageTwiceToADeviceIsDuplicatedWhereverItLands) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1", 1));
  c.record_send(acked("b", "d1", 2));
  c.record_delivery(delivered("a", "d1", 1));
  c.record_delivery(delivered("b", "d1", 2));
  c.record_delivery(delivered("a", "d1", 3));  // stored twice: a second seq
  c.record_delivery(delivered("b", "d1", 2));  // handed over twice: the same seq
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.duplicated.count, 2u);
  EXPECT_EQ(r.seq_reused.count, 0u);
  EXPECT_EQ(r.out_of_order.count, 0u);  // a repeat at a known position is only a duplicate
}

TEST(DeliveryChecker, TwoMessagesAtOnePositionIsSeqReused) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1", 1));
  c.record_send(acked("b", "d1", 1));
  c.record_delivery(delivered("a", "d1", 1));
  c.record_delivery(delivered("b", "d1", 1));
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.seq_reused.count, 1u);
  EXPECT_NE(r.seq_reused.examples[0].find("key a was delivered before"), std::string::npos);
}

TEST(DeliveryChecker, SameSeqInAnotherEpochIsNoReuse) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1"));
  c.record_send(acked("b", "d1"));
  c.record_delivery(delivered("a", "d1", 1, 1));
  c.record_gap({"d1", 0, 1, 1, 2, 0});
  c.record_delivery(delivered("b", "d1", 1, 2));
  const DeliveryReport r = c.check();
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.gaps, 1u);
}

TEST(DeliveryChecker, SeqBelowTheLastAtANewPositionIsOutOfOrder) {
  DeliveryChecker c;
  for (const char* k : {"a", "b", "c"}) c.record_send(acked(k, "d1"));
  c.record_delivery(delivered("a", "d1", 1));
  c.record_gap({"d1", 0, 1, 1, 1, 4});  // truncated: resumes after 4
  c.record_delivery(delivered("b", "d1", 5));
  c.record_delivery(delivered("c", "d1", 3));
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.out_of_order.count, 1u);
  EXPECT_EQ(r.unannounced_gaps.count, 0u);
}

TEST(DeliveryChecker, SeqJumpWithoutAGapToldIsAnUnannouncedGap) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1"));
  c.record_send(acked("b", "d1"));
  c.record_delivery(delivered("a", "d1", 1));
  c.record_delivery(delivered("b", "d1", 3));
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.unannounced_gaps.count, 1u);
  EXPECT_NE(r.unannounced_gaps.examples[0].find("seq 1 before"), std::string::npos);
}

TEST(DeliveryChecker, FirstInboxDeliveryAfterSeqOneIsAnUnannouncedGap) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1"));
  c.record_delivery(delivered("a", "d1", 2));
  EXPECT_EQ(c.check().unannounced_gaps.count, 1u);
}

TEST(DeliveryChecker, NewEpochWithoutAGapToldIsAnUnannouncedGap) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1"));
  c.record_send(acked("b", "d1"));
  c.record_delivery(delivered("a", "d1", 1, 1));
  c.record_delivery(delivered("b", "d1", 1, 2));
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.unannounced_gaps.count, 1u);
  EXPECT_NE(r.unannounced_gaps.examples[0].find("epoch 1"), std::string::npos);
}

TEST(DeliveryChecker, GapOnOneStreamDoesNotExcuseAnotherOrAnotherDevice) {
  DeliveryChecker c;
  for (const char* k : {"a", "b", "c"})
    c.record_send({k, {"d1", "d2"}, SendOutcome::kAcknowledged, {}});
  c.record_gap({"d1", 9, 1, 0, 1, 5});  // a topic stream of d1
  c.record_delivery(delivered("a", "d1", 1));
  c.record_delivery(delivered("b", "d1", 3));  // inbox of d1: not covered
  c.record_gap({"d2", 0, 1, 0, 1, 2});
  c.record_delivery(delivered("c", "d1", 4));
  c.record_delivery(delivered("a", "d2", 3));
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.unannounced_gaps.count, 1u);
}

TEST(DeliveryChecker, TruncationToldBeforeTheJumpIsNoViolation) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1", 1));
  c.record_send(acked("b", "d1", 6));
  c.record_delivery(delivered("a", "d1", 1));
  c.record_gap({"d1", 0, 1, 1, 1, 5});
  c.record_delivery(delivered("b", "d1", 6));
  EXPECT_TRUE(c.check().ok()) << c.check().summary();
}

TEST(DeliveryChecker, GapToldFromNoCursorIsNoViolation) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1"));
  c.record_gap({"d1", 0, 0, 0, 3, 9});
  c.record_delivery(delivered("a", "d1", 10, 3));
  EXPECT_TRUE(c.check().ok()) << c.check().summary();
}

TEST(DeliveryChecker, AcknowledgedMessageInsideAToldGapIsReportedApartNotLost) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1", 1));
  c.record_send(acked("expired", "d1", 2));
  c.record_send(acked("reset", "d1", 3));
  c.record_send(acked("b", "d1", 1));
  c.record_delivery(delivered("a", "d1", 1));
  c.record_gap({"d1", 0, 1, 1, 1, 2});  // seq 2 expired
  c.record_gap({"d1", 0, 1, 2, 2, 0});  // then the stream was reset: seq 3 of epoch 1 is gone
  c.record_delivery(delivered("b", "d1", 1, 2));
  const DeliveryReport r = c.check();
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.lost_in_announced_gap.count, 2u);
}

TEST(DeliveryChecker, AcknowledgedMessageOutsideEveryToldGapIsLost) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1", 1));
  c.record_send(acked("b", "d1", 7));  // after the gap's end, never delivered
  c.record_delivery(delivered("a", "d1", 1));
  c.record_gap({"d1", 0, 1, 1, 1, 5});
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.lost.count, 1u);
  EXPECT_NE(r.lost.examples[0].find("stored at stream 0 1:7"), std::string::npos);
  EXPECT_EQ(r.lost_in_announced_gap.count, 0u);
}

TEST(DeliveryChecker, UnknownOutcomesAreReportedNotCounted) {
  DeliveryChecker c;
  c.record_send({"came", {"d1"}, SendOutcome::kUnknown, {}});
  c.record_send({"never", {"d1"}, SendOutcome::kUnknown, {}});
  c.record_delivery(delivered("came", "d1", 1));
  const DeliveryReport r = c.check();
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.unknown, 2u);
  EXPECT_EQ(r.unknown_arrived.count, 1u);
  EXPECT_EQ(r.unknown_not_arrived.count, 1u);
}

TEST(DeliveryChecker, UnknownThatArrivedTwiceIsStillADuplicate) {
  DeliveryChecker c;
  c.record_send({"a", {"d1"}, SendOutcome::kUnknown, {}});
  c.record_delivery(delivered("a", "d1", 1));
  c.record_delivery(delivered("a", "d1", 2));
  EXPECT_EQ(c.check().duplicated.count, 1u);
}

TEST(DeliveryChecker, StrongestOutcomeOfAKeyCounts) {
  DeliveryChecker c;
  c.record_send({"a", {"d1"}, SendOutcome::kUnknown, {}});
  c.record_send({"a", {"d1"}, SendOutcome::kAcknowledged, {}});
  c.record_send({"a", {"d1"}, SendOutcome::kRefused, {}});
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.acknowledged, 1u);
  EXPECT_EQ(r.unknown + r.refused, 0u);
  EXPECT_EQ(r.lost.count, 1u);
}

TEST(DeliveryChecker, TopicStreamMayStartWhereTheDeviceJoined) {
  DeliveryChecker c;
  c.record_send(acked("t1", "d1"));
  c.record_send(acked("t2", "d1"));
  c.record_delivery(delivered("t1", "d1", 41, 1, 7));
  c.record_delivery(delivered("t2", "d1", 42, 1, 7));
  EXPECT_TRUE(c.check().ok()) << c.check().summary();
}

TEST(DeliveryChecker, ExamplesAreCappedButEveryViolationIsCounted) {
  DeliveryChecker c;
  for (int i = 0; i < 20; ++i) c.record_send(acked("k" + std::to_string(i), "d1"));
  const DeliveryReport r = c.check();
  EXPECT_EQ(r.lost.count, 20u);
  EXPECT_EQ(r.lost.examples.size(), DeliveryReport::kMaxExamples);
}

TEST(DeliveryChecker, HandlersRecordWhatAClientHandsOver) {
  DeliveryChecker c;
  c.record_send(acked("a", "d1"));
  c.record_send(acked("b", "d1"));
  auto on_message = c.message_handler("d1", [](const Message& m) { return m.data; });
  auto on_gap = c.gap_handler("d1");
  Message m;
  m.app = "news";
  m.epoch = 1;
  m.seq = 1;
  m.data = "a";
  on_message(m);
  on_gap(Gap{0, "", "", false, GapReason::kTruncated, 1, 1, 1, 4});
  m.seq = 5;
  m.data = "b";
  on_message(m);
  EXPECT_EQ(c.deliveries("d1"), 2u);
  EXPECT_EQ(c.deliveries("d2"), 0u);
  const DeliveryReport r = c.check();
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.gaps, 1u);
}

TEST(DeliveryChecker, RecordsFromManyThreadsAreAllCounted) {
  DeliveryChecker c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, t] {
      const std::string device = "d" + std::to_string(t);
      for (std::uint64_t seq = 1; seq <= 500; ++seq) {
        const std::string key = device + "-" + std::to_string(seq);
        c.record_send(acked(key, device, seq));
        c.record_delivery(delivered(key, device, seq));
      }
    });
  }
  for (auto& t : threads) t.join();
  const DeliveryReport r = c.check();
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.deliveries, 2000u);
  EXPECT_EQ(r.acknowledged, 2000u);
}

TEST(SendRecord, AnswerStatusDecidesTheOutcome) {
  PushOutcome answer;
  EXPECT_EQ(send_record("k", {"d1"}, answer).outcome, SendOutcome::kUnknown);  // no answer
  answer.status = 503;
  EXPECT_EQ(send_record("k", {"d1"}, answer).outcome, SendOutcome::kUnknown);
  answer.status = 500;
  EXPECT_EQ(send_record("k", {"d1"}, answer).outcome, SendOutcome::kUnknown);
  answer.status = 429;
  EXPECT_EQ(send_record("k", {"d1"}, answer).outcome, SendOutcome::kRefused);
  answer.status = 404;
  EXPECT_EQ(send_record("k", {"d1"}, answer).outcome, SendOutcome::kRefused);
  answer.status = 202;
  EXPECT_EQ(send_record("k", {"d1"}, answer).outcome, SendOutcome::kAcknowledged);
}

TEST(SendRecord, AcknowledgedAnswerGivesEachTargetsPosition) {
  PushOutcome answer;
  answer.status = 200;
  answer.body = boost::json::parse(
      R"({"id":"x","targets":[{"device":"d1","epoch":3,"seq":7},{"device":"d2","epoch":1,"seq":2}]})");
  const SendRecord s = send_record("k", {"d1", "d2"}, answer);
  ASSERT_EQ(s.positions.size(), 2u);
  EXPECT_EQ(s.positions[0].epoch, 3u);
  EXPECT_EQ(s.positions[0].seq, 7u);
  EXPECT_EQ(s.positions[1].seq, 2u);
  answer.body = boost::json::parse(R"({"targets":[{"device":"d1","dropped":true}]})");
  EXPECT_TRUE(send_record("k", {"d1"}, answer).positions.empty());
}

TEST(PayloadKey, ReadsKFromAJsonPayload) {
  Message m;
  m.data = R"({"k":"s1-42","pad":"xx"})";
  EXPECT_EQ(payload_key(m), "s1-42");
  m.data = R"({"n":1})";
  EXPECT_EQ(payload_key(m), "");
  m.data = "not json";
  EXPECT_EQ(payload_key(m), "");
}

}  // namespace
}  // namespace herald::testing
