#include "delivery.h"

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace herald::detail {
namespace {

namespace wire = protocol::wire;
using Cursor = CursorStore::Cursor;

// A CursorStore that remembers every save.
class RecordingStore final : public CursorStore {
 public:
  Cursor load(std::uint64_t stream) override {
    ++loads;
    auto it = cursors.find(stream);
    return it == cursors.end() ? Cursor{} : it->second;
  }
  void save(std::uint64_t stream, Cursor cursor) override {
    cursors[stream] = cursor;
    saves.emplace_back(stream, cursor);
  }
  std::map<std::uint64_t, Cursor> cursors;
  std::vector<std::pair<std::uint64_t, Cursor>> saves;
  int loads = 0;
};

struct Reply {
  std::uint64_t stream = 0;
  std::uint64_t epoch = 1;
  std::uint64_t head = 0;
  std::vector<std::uint64_t> seqs = {};
  bool epoch_changed = false;
  std::uint64_t truncated_before = 0;
  bool more = false;
};

// One entry of a Streams list.
struct Listed {
  std::uint64_t stream = 0;
  std::string topic = "";
  std::uint64_t epoch = 1;
  std::uint64_t head = 0;
  std::uint64_t start = 0;
  std::string app = "news";
};

std::vector<wire::StreamInfo> make_list(const std::vector<Listed>& entries) {
  std::vector<wire::StreamInfo> list;
  for (const auto& e : entries) {
    wire::StreamInfo info;
    info.set_stream(e.stream);
    info.set_app(e.app);
    info.set_topic(e.topic);
    info.set_epoch(e.epoch);
    info.set_head_seq(e.head);
    info.set_start_seq(e.start);
    list.push_back(std::move(info));
  }
  return list;
}

wire::Messages make(const Reply& r) {
  wire::Messages m;
  m.set_stream(r.stream);
  m.set_epoch(r.epoch);
  m.set_head_seq(r.head);
  m.set_epoch_changed(r.epoch_changed);
  m.set_truncated_before(r.truncated_before);
  m.set_more(r.more);
  for (auto seq : r.seqs) {
    auto* e = m.add_entries();
    e->set_seq(seq);
    e->set_app(seq % 2 == 0 ? "news" : "chat");
    e->set_message_id("m" + std::to_string(seq));
    e->set_data("{\"n\":" + std::to_string(seq) + "}");
  }
  return m;
}

class DeliveryTest : public ::testing::Test {
 protected:
  // Feeds one Messages reply; the delivered seqs are appended to `delivered`.
  Outbound reply(const Reply& r) {
    wire::Messages m = make(r);
    auto out = delivery.on_messages(m, record, {}, record_gap);
    EXPECT_TRUE(out.has_value()) << out.error().message();
    return out ? *out : Outbound{};
  }
  Outbound notify(std::uint64_t stream, std::uint64_t head) {
    return delivery.on_notify(stream, head);
  }
  // Feeds one complete Streams list.
  Outbound streams(const std::vector<Listed>& entries) {
    auto out = delivery.on_streams(make_list(entries));
    EXPECT_TRUE(out.has_value());
    return out ? *out : Outbound{};
  }
  static std::vector<std::uint64_t> pulled(const Outbound& out) {
    std::vector<std::uint64_t> streams;
    for (const auto& p : out.pulls) streams.push_back(p.stream);
    return streams;
  }

  RecordingStore store;
  Delivery delivery{store, 50};
  std::vector<Message> delivered;
  Delivery::Deliver record = [this](const Message& m) {
    delivered.push_back(m);
    events.push_back("message " + std::to_string(m.seq));
  };
  std::vector<Gap> gaps;
  Delivery::DeliverGap record_gap = [this](const Gap& g) {
    gaps.push_back(g);
    events.push_back("gap");
  };
  std::vector<std::string> events;  // messages and gaps, in the order they were handed over
};

std::vector<std::uint64_t> seqs_of(const std::vector<Message>& ms) {
  std::vector<std::uint64_t> out;
  for (const auto& m : ms) out.push_back(m.seq);
  return out;
}

TEST_F(DeliveryTest, ConnectPullsTheInboxFromTheSavedCursor) {
  store.cursors[0] = {4, 17};
  Outbound out = delivery.on_connected();
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0], (PullRequest{0, 4, 17, 50}));
  EXPECT_FALSE(out.ack);
  EXPECT_TRUE(delivery.pull_in_flight(0));
}

TEST_F(DeliveryTest, EntriesAreDeliveredInOrderThenSavedThenAcked) {
  (void)delivery.on_connected();
  Outbound out = reply({.stream = 0, .epoch = 1, .head = 3, .seqs = {1, 2, 3}});
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(delivered[1].app, "news");
  EXPECT_EQ(delivered[1].id, "m2");
  EXPECT_EQ(delivered[1].data, "{\"n\":2}");
  EXPECT_EQ(delivered[1].epoch, 1u);
  ASSERT_EQ(store.saves.size(), 1u);  // once per batch, not per message
  EXPECT_EQ(store.saves[0].second, (Cursor{1, 3}));
  EXPECT_EQ(out.ack, (AckRequest{0, 1, 3}));
  EXPECT_TRUE(out.pulls.empty());
  EXPECT_FALSE(delivery.pull_in_flight(0));
}

TEST_F(DeliveryTest, EntriesAtOrBelowTheCursorAreNeverDeliveredTwice) {
  store.cursors[0] = {1, 2};
  (void)delivery.on_connected();
  (void)reply({.head = 4, .seqs = {1, 2, 3, 4}});
  (void)reply({.head = 4, .seqs = {3, 4}});  // a second reply to a repeated pull
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(store.saves.size(), 1u);
}

TEST_F(DeliveryTest, ReplyWithoutProgressIsNeitherSavedNorAcked) {
  store.cursors[0] = {1, 5};
  (void)delivery.on_connected();
  Outbound out = reply({.head = 5});
  EXPECT_TRUE(store.saves.empty());
  EXPECT_FALSE(out.ack);
  EXPECT_TRUE(out.pulls.empty());
}

TEST_F(DeliveryTest, NotifyAboveTheCursorPulls) {
  (void)delivery.on_connected();
  (void)reply({.head = 2, .seqs = {1, 2}});
  Outbound out = notify(0, 3);
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0], (PullRequest{0, 1, 2, 50}));
}

TEST_F(DeliveryTest, NotifyAtTheCursorDoesNothing) {
  (void)delivery.on_connected();
  (void)reply({.head = 2, .seqs = {1, 2}});
  EXPECT_TRUE(notify(0, 2).pulls.empty());
}

TEST_F(DeliveryTest, NotifyBelowTheCursorPullsToLearnOfANewEpoch) {
  (void)delivery.on_connected();
  (void)reply({.head = 40, .seqs = {39, 40}, .truncated_before = 39});
  Outbound out = notify(0, 1);  // the stream was reset: epoch 2, one entry
  ASSERT_EQ(out.pulls.size(), 1u);
  (void)reply({.epoch = 2, .head = 1, .seqs = {1}, .epoch_changed = true});
  EXPECT_EQ(store.cursors[0], (Cursor{2, 1}));
}

TEST_F(DeliveryTest, NotifyWhilePullInFlightIsNotLost) {
  (void)delivery.on_connected();
  EXPECT_TRUE(notify(0, 5).pulls.empty());  // one pull per stream in flight
  EXPECT_TRUE(notify(0, 7).pulls.empty());
  // The reply was computed before 6 and 7 existed.
  Outbound out = reply({.head = 5, .seqs = {1, 2, 3, 4, 5}});
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0], (PullRequest{0, 1, 5, 50}));
  EXPECT_EQ(out.ack, (AckRequest{0, 1, 5}));
}

TEST_F(DeliveryTest, NotifyMatchedByTheReplyDoesNotPullAgain) {
  (void)delivery.on_connected();
  EXPECT_TRUE(notify(0, 4).pulls.empty());
  Outbound out = reply({.head = 4, .seqs = {1, 2, 3, 4}});
  EXPECT_TRUE(out.pulls.empty());
}

TEST_F(DeliveryTest, LateNotifyCostsOneEmptyPullAndNoMore) {
  (void)delivery.on_connected();
  EXPECT_TRUE(notify(0, 3).pulls.empty());
  Outbound out = reply({.head = 4, .seqs = {1, 2, 3, 4}});
  EXPECT_EQ(out.pulls.size(), 1u);  // 3 != 4: it might announce a new epoch
  EXPECT_TRUE(reply({.head = 4}).pulls.empty());
}

TEST_F(DeliveryTest, NotifyForAListedStreamPullsFromItsCursor) {
  store.cursors[9] = {2, 10};
  (void)delivery.on_connected();
  EXPECT_TRUE(streams({{.stream = 9, .topic = "sport", .epoch = 2, .head = 10}}).pulls.empty());
  Outbound out = notify(9, 12);
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0], (PullRequest{9, 2, 10, 50}));
}

TEST_F(DeliveryTest, NotifyForAStreamNotListedIsIgnored) {
  store.cursors[9] = {2, 10};
  (void)delivery.on_connected();
  EXPECT_TRUE(notify(9, 12).pulls.empty());
  EXPECT_FALSE(delivery.reads(9));
  EXPECT_EQ(store.loads, 1);  // the inbox's only
}

TEST_F(DeliveryTest, MoreMeansPullAgainFromTheNewCursor) {
  (void)delivery.on_connected();
  Outbound out = reply({.head = 9, .seqs = {1, 2, 3}, .more = true});
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0], (PullRequest{0, 1, 3, 50}));
}

TEST_F(DeliveryTest, HeadAboveTheCursorPullsAgain) {
  (void)delivery.on_connected();
  Outbound out = reply({.head = 4, .seqs = {1, 2}});
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0].after_seq, 2u);
}

TEST_F(DeliveryTest, ServerAnnouncingEntriesItNeverSendsDoesNotMakeItSpin) {
  store.cursors[0] = {1, 2};
  (void)delivery.on_connected();
  Outbound out = reply({.head = 9, .more = true});
  EXPECT_TRUE(out.pulls.empty());
}

TEST_F(DeliveryTest, EpochChangeResetsTheCursorAndDeliversTheNewEpoch) {
  store.cursors[0] = {1, 40};
  (void)delivery.on_connected();
  Outbound out = reply({.epoch = 2, .head = 2, .seqs = {1, 2}, .epoch_changed = true});
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(delivered[0].epoch, 2u);
  EXPECT_EQ(store.cursors[0], (Cursor{2, 2}));
  EXPECT_EQ(out.ack, (AckRequest{0, 2, 2}));
}

TEST_F(DeliveryTest, EmptyEpochChangeStillSavesTheResetCursor) {
  store.cursors[0] = {1, 40};
  (void)delivery.on_connected();
  Outbound out = reply({.epoch = 2, .epoch_changed = true});
  EXPECT_EQ(store.cursors[0], (Cursor{2, 0}));
  EXPECT_FALSE(out.ack);  // nothing to acknowledge in the new epoch yet
}

TEST_F(DeliveryTest, SecondReplyToAnOldEpochPullDoesNotDeliverTwice) {
  store.cursors[0] = {1, 40};
  (void)delivery.on_connected();
  (void)reply({.epoch = 2, .head = 2, .seqs = {1, 2}, .epoch_changed = true});
  // A pull sent with epoch 1 before the first reply arrived gets the same answer.
  (void)reply({.epoch = 2, .head = 2, .seqs = {1, 2}, .epoch_changed = true});
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(DeliveryTest, FirstPullAdoptsTheStreamsEpoch) {
  (void)delivery.on_connected();
  (void)reply({.epoch = 7, .head = 1, .seqs = {1}});
  EXPECT_EQ(store.cursors[0], (Cursor{7, 1}));
}

TEST_F(DeliveryTest, TruncatedBeforeSkipsTheLostEntriesKnowingly) {
  store.cursors[0] = {1, 3};
  (void)delivery.on_connected();
  Outbound out = reply({.head = 11, .seqs = {10, 11}, .truncated_before = 10});
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{10, 11}));
  EXPECT_EQ(out.ack, (AckRequest{0, 1, 11}));
}

TEST_F(DeliveryTest, TruncationWithNoEntriesStillMovesAndSavesTheCursor) {
  store.cursors[0] = {1, 3};
  (void)delivery.on_connected();
  (void)reply({.head = 9, .truncated_before = 10});
  EXPECT_EQ(store.cursors[0], (Cursor{1, 9}));
}

TEST_F(DeliveryTest, TruncationBehindTheCursorNeverMovesItBack) {
  store.cursors[0] = {1, 20};
  (void)delivery.on_connected();
  (void)reply({.head = 21, .seqs = {21}, .truncated_before = 10});
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{21}));
  EXPECT_EQ(store.cursors[0], (Cursor{1, 21}));
}

TEST_F(DeliveryTest, NewEpochIsAnnouncedAsAGapBeforeItsFirstEntry) {
  store.cursors[0] = {1, 40};
  (void)delivery.on_connected();
  (void)reply({.epoch = 2, .head = 2, .seqs = {1, 2}, .epoch_changed = true});
  ASSERT_EQ(gaps.size(), 1u);
  const Gap& g = gaps[0];
  EXPECT_EQ(g.stream, 0u);
  EXPECT_EQ(g.reason, GapReason::kNewEpoch);
  EXPECT_EQ(g.from_epoch, 1u);
  EXPECT_EQ(g.from_seq, 40u);
  EXPECT_EQ(g.epoch, 2u);
  EXPECT_EQ(g.resume_after_seq, 0u);
  EXPECT_TRUE(g.app.empty());  // the inbox holds every app's messages
  EXPECT_EQ(events, (std::vector<std::string>{"gap", "message 1", "message 2"}));
}

TEST_F(DeliveryTest, NewEpochIsAnnouncedOnceWhenASecondAnswerSaysItAgain) {
  store.cursors[0] = {1, 40};
  (void)delivery.on_connected();
  (void)reply({.epoch = 2, .head = 2, .seqs = {1, 2}, .epoch_changed = true});
  (void)reply({.epoch = 2, .head = 2, .seqs = {1, 2}, .epoch_changed = true});
  EXPECT_EQ(gaps.size(), 1u);
}

TEST_F(DeliveryTest, NewEpochWithTruncatedEntriesIsOneGapResumingAfterThem) {
  store.cursors[0] = {1, 40};
  (void)delivery.on_connected();
  (void)reply(
      {.epoch = 2, .head = 9, .seqs = {8, 9}, .epoch_changed = true, .truncated_before = 8});
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].reason, GapReason::kNewEpoch);
  EXPECT_EQ(gaps[0].epoch, 2u);
  EXPECT_EQ(gaps[0].resume_after_seq, 7u);
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{8, 9}));
}

TEST_F(DeliveryTest, TruncationIsAnnouncedAsAGapFromTheCursorToTheEntryBeforeTheFirstKept) {
  store.cursors[0] = {1, 3};
  (void)delivery.on_connected();
  (void)reply({.head = 11, .seqs = {10, 11}, .truncated_before = 10});
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].reason, GapReason::kTruncated);
  EXPECT_EQ(gaps[0].from_epoch, 1u);
  EXPECT_EQ(gaps[0].from_seq, 3u);
  EXPECT_EQ(gaps[0].epoch, 1u);
  EXPECT_EQ(gaps[0].resume_after_seq, 9u);
  EXPECT_EQ(events, (std::vector<std::string>{"gap", "message 10", "message 11"}));
}

TEST_F(DeliveryTest, TruncationBeforeTheFirstPullIsAGapFromEpochZero) {
  (void)delivery.on_connected();
  (void)reply({.epoch = 5, .head = 11, .seqs = {11}, .truncated_before = 11});
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].reason, GapReason::kTruncated);
  EXPECT_EQ(gaps[0].from_epoch, 0u);
  EXPECT_EQ(gaps[0].from_seq, 0u);
  EXPECT_EQ(gaps[0].epoch, 5u);
  EXPECT_EQ(gaps[0].resume_after_seq, 10u);
}

TEST_F(DeliveryTest, OrdinaryAnswersAdoptingAnEpochOrTruncatedBehindTheCursorAreNoGap) {
  (void)delivery.on_connected();
  (void)reply({.epoch = 7, .head = 2, .seqs = {1, 2}});
  (void)reply({.epoch = 7, .head = 3, .seqs = {3}, .truncated_before = 2});
  EXPECT_TRUE(gaps.empty());
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(DeliveryTest, ThrowingGapHandlerLeavesTheCursorUnmovedAndRethrows) {
  store.cursors[0] = {1, 3};
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 11, .seqs = {10, 11}, .truncated_before = 10});
  auto failing = [](const Gap&) { throw std::runtime_error("journal full"); };
  EXPECT_THROW((void)delivery.on_messages(m, record, {}, failing), std::runtime_error);
  EXPECT_TRUE(delivered.empty());
  EXPECT_EQ(delivery.cursor(0), (Cursor{1, 3}));
  EXPECT_EQ(store.cursors[0], (Cursor{1, 3}));  // the next client is told of the gap again
}

TEST_F(DeliveryTest, JoiningATopicAtItsStartIsNoGap) {
  store.cursors[3] = {1, 10};
  (void)delivery.on_connected();
  (void)streams({{.stream = 3, .topic = "scores", .head = 31, .start = 30}});
  (void)reply({.stream = 3, .head = 31, .seqs = {31}});
  EXPECT_TRUE(gaps.empty());
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{31}));
}

TEST_F(DeliveryTest, GapOfATopicStreamNamesItsAppAndTopic) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 3, .topic = "scores", .head = 2, .app = "chat"},
                 {.stream = 4, .head = 1, .app = "news"}});
  (void)reply({.stream = 3, .head = 9, .seqs = {9}, .truncated_before = 9});
  (void)reply({.stream = 4, .epoch = 2, .head = 1, .seqs = {1}, .epoch_changed = true});
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0].stream, 3u);
  EXPECT_EQ(gaps[0].app, "chat");
  EXPECT_EQ(gaps[0].topic, "scores");
  EXPECT_FALSE(gaps[0].broadcast);
  EXPECT_EQ(gaps[0].resume_after_seq, 8u);
  EXPECT_EQ(gaps[1].stream, 4u);
  EXPECT_EQ(gaps[1].app, "news");
  EXPECT_TRUE(gaps[1].broadcast);
  EXPECT_EQ(gaps[1].reason, GapReason::kNewEpoch);
}

TEST_F(DeliveryTest, UnannouncedGapIsAnErrorAndNothingPastItIsDelivered) {
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 5, .seqs = {1, 2, 4, 5}});
  auto out = delivery.on_messages(m, record);
  EXPECT_FALSE(out.has_value());
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(store.cursors[0], (Cursor{1, 2}));  // what was delivered is saved
}

TEST_F(DeliveryTest, ThrowingHandlerSavesUpToTheEntryBeforeAndRethrows) {
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 3, .seqs = {1, 2, 3}});
  auto failing = [this](const Message& msg) {
    if (msg.seq == 3) throw std::runtime_error("disk full");
    delivered.push_back(msg);
  };
  EXPECT_THROW((void)delivery.on_messages(m, failing), std::runtime_error);
  EXPECT_EQ(store.cursors[0], (Cursor{1, 2}));  // 3 comes again next time
}

TEST_F(DeliveryTest, ResyncPullsTheInboxAndEveryListedStream) {
  (void)delivery.on_connected();
  (void)reply({.head = 0});
  (void)streams({{.stream = 5, .head = 1}, {.stream = 6, .head = 0}, {.stream = 7, .head = 0}});
  (void)reply({.stream = 5, .head = 1, .seqs = {1}});
  (void)streams({{.stream = 5, .head = 1}, {.stream = 6, .head = 0}});  // 7 dropped
  Outbound out = delivery.on_pong(true);
  ASSERT_EQ(out.pulls.size(), 3u);
  EXPECT_EQ(out.pulls[0], (PullRequest{0, 1, 0, 50}));
  EXPECT_EQ(out.pulls[1], (PullRequest{5, 1, 1, 50}));
  EXPECT_EQ(out.pulls[2], (PullRequest{6, 1, 0, 50}));
}

TEST_F(DeliveryTest, ResyncWhilePullInFlightPullsAgainAfterTheReply) {
  (void)delivery.on_connected();
  EXPECT_TRUE(delivery.on_pong(true).pulls.empty());
  Outbound out = reply({.head = 1, .seqs = {1}});
  EXPECT_EQ(out.pulls.size(), 1u);
}

TEST_F(DeliveryTest, PlainPongPullsNothing) {
  (void)delivery.on_connected();
  (void)reply({.head = 0});
  EXPECT_TRUE(delivery.on_pong(false).pulls.empty());
}

TEST_F(DeliveryTest, FailedPullIsRetriedOnce) {
  (void)delivery.on_connected();
  delivery.on_request_failed(protocol::ErrorCode::kServerBusy);
  EXPECT_FALSE(delivery.pull_in_flight(0));
  ASSERT_TRUE(delivery.has_failed_pulls());
  Outbound out = delivery.retry_failed();
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0].stream, 0u);
  EXPECT_FALSE(delivery.has_failed_pulls());
  EXPECT_TRUE(delivery.retry_failed().pulls.empty());
}

TEST_F(DeliveryTest, ErrorIsTakenAsTheAnswerToTheOldestWaitingPull) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 5, .head = 3}});  // waiting: inbox, then 5
  delivery.on_request_failed(protocol::ErrorCode::kInternal);
  EXPECT_FALSE(delivery.pull_in_flight(0));
  EXPECT_TRUE(delivery.pull_in_flight(5));
}

TEST_F(DeliveryTest, ErrorWithNoPullWaitingAnsweredAnAck) {
  (void)delivery.on_connected();
  (void)reply({.head = 1, .seqs = {1}});
  delivery.on_request_failed(protocol::ErrorCode::kBadRequest);
  EXPECT_FALSE(delivery.has_failed_pulls());
}

TEST_F(DeliveryTest, UnknownStreamForgetsATopicStreamUntilTheNextList) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 5, .topic = "sport", .head = 3}});
  (void)reply({.head = 0});  // answers the inbox pull
  delivery.on_request_failed(protocol::ErrorCode::kUnknownStream);
  EXPECT_FALSE(delivery.reads(5));
  EXPECT_FALSE(delivery.has_failed_pulls());
  EXPECT_TRUE(notify(5, 4).pulls.empty());
  EXPECT_EQ(pulled(delivery.on_pong(true)), (std::vector<std::uint64_t>{0}));
  // The next list names it again: read from the cursor it kept.
  EXPECT_EQ(pulled(streams({{.stream = 5, .topic = "sport", .head = 4}})),
            (std::vector<std::uint64_t>{5}));
  EXPECT_EQ(store.loads, 2);
}

TEST_F(DeliveryTest, InboxIsNeverForgotten) {
  (void)delivery.on_connected();
  delivery.on_request_failed(protocol::ErrorCode::kUnknownStream);
  EXPECT_TRUE(delivery.reads(0));
  EXPECT_TRUE(delivery.has_failed_pulls());
}

TEST_F(DeliveryTest, ReplyForAStreamWhosePullWasMisattributedStillDelivers) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 5, .head = 1}});
  // The error actually answered an ack; it is taken for the inbox pull...
  delivery.on_request_failed(protocol::ErrorCode::kInternal);
  // ...and the real answers arrive: nothing is lost.
  (void)reply({.head = 0});
  (void)reply({.stream = 5, .head = 1, .seqs = {1}});
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{1}));
}

TEST_F(DeliveryTest, ReconnectPullsTheInboxAndLeavesTheOtherStreamsToTheNextList) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 5, .head = 3}});
  delivery.on_disconnected();
  EXPECT_FALSE(delivery.pull_in_flight(0));
  EXPECT_FALSE(delivery.pull_in_flight(5));
  EXPECT_EQ(pulled(delivery.on_connected()), (std::vector<std::uint64_t>{0}));
  EXPECT_EQ(pulled(streams({{.stream = 5, .head = 3}})), (std::vector<std::uint64_t>{5}));
  EXPECT_EQ(store.loads, 2);  // cursors are loaded once per stream
}

TEST_F(DeliveryTest, ListOfTooManyStreamsIsAnErrorAndChangesNothing) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 5, .head = 3}});
  std::vector<Listed> many;
  for (std::uint64_t s = 1; s <= Delivery::kMaxStreams; ++s) many.push_back({.stream = s});
  EXPECT_FALSE(delivery.on_streams(make_list(many)).has_value());
  EXPECT_TRUE(delivery.reads(5));
  EXPECT_FALSE(delivery.reads(6));
  many.pop_back();  // the inbox and 4095 others fit
  EXPECT_TRUE(delivery.on_streams(make_list(many)).has_value());
}

TEST_F(DeliveryTest, UnknownDataKindIsBinary) {
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 1, .seqs = {1}});
  m.mutable_entries(0)->set_kind(static_cast<wire::DataKind>(7));
  ASSERT_TRUE(delivery.on_messages(m, record).has_value());
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_TRUE(delivered[0].binary);
}

TEST_F(DeliveryTest, NeverWrittenStreamLeavesTheCursorAlone) {
  (void)delivery.on_connected();
  Outbound out = reply({.epoch = 0, .head = 0});
  EXPECT_TRUE(store.saves.empty());
  EXPECT_TRUE(out.pulls.empty());
}

TEST_F(DeliveryTest, BinaryEntriesAreFlagged) {
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 1, .seqs = {1}});
  m.mutable_entries(0)->set_kind(wire::DATA_KIND_BINARY);
  m.mutable_entries(0)->set_sent_at_ms(1234);
  ASSERT_TRUE(delivery.on_messages(m, record).has_value());
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_TRUE(delivered[0].binary);
  EXPECT_EQ(delivered[0].sent_at_ms, 1234);
}

// ---------------------------------------------------------------------------------------------
// Tombstones and recalls.

TEST_F(DeliveryTest, TombstoneMovesTheCursorWithoutAHandlerCallOrAGap) {
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 3, .seqs = {1, 2, 3}});
  m.mutable_entries(1)->set_kind(wire::DATA_KIND_TOMBSTONE);
  m.mutable_entries(1)->clear_data();
  auto out = delivery.on_messages(m, record);
  ASSERT_TRUE(out.has_value());  // not a gap
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(store.cursors[0], (Cursor{1, 3}));
  EXPECT_EQ(out->ack, (AckRequest{0, 1, 3}));
}

TEST_F(DeliveryTest, BatchOfOnlyTombstonesIsSavedAndAcked) {
  store.cursors[0] = {1, 4};
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 6, .seqs = {5, 6}});
  for (auto& e : *m.mutable_entries()) e.set_kind(wire::DATA_KIND_TOMBSTONE);
  auto out = delivery.on_messages(m, record);
  ASSERT_TRUE(out.has_value());
  EXPECT_TRUE(delivered.empty());
  EXPECT_EQ(store.cursors[0], (Cursor{1, 6}));
  EXPECT_EQ(out->ack, (AckRequest{0, 1, 6}));
  EXPECT_TRUE(out->pulls.empty());
}

TEST_F(DeliveryTest, RecallGoesToTheRecallHandlerWithTheRecalledIdInStreamOrder) {
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 3, .seqs = {1, 2, 3}});
  wire::Entry* e = m.mutable_entries(1);
  e->set_kind(wire::DATA_KIND_RECALL);
  e->set_message_id("r2");
  e->set_data("m1");
  e->set_sent_at_ms(77);
  std::vector<std::string> order;
  std::vector<Recall> recalls;
  auto out = delivery.on_messages(
      m, [&](const Message& msg) { order.push_back("message " + msg.id); },
      [&](const Recall& r) {
        order.push_back("recall " + r.recalled_id);
        recalls.push_back(r);
      });
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(order, (std::vector<std::string>{"message m1", "recall m1", "message m3"}));
  ASSERT_EQ(recalls.size(), 1u);
  EXPECT_EQ(recalls[0].app, "news");
  EXPECT_EQ(recalls[0].id, "r2");
  EXPECT_EQ(recalls[0].stream, 0u);
  EXPECT_EQ(recalls[0].epoch, 1u);
  EXPECT_EQ(recalls[0].seq, 2u);
  EXPECT_EQ(recalls[0].sent_at_ms, 77);
  EXPECT_EQ(store.cursors[0], (Cursor{1, 3}));
}

TEST_F(DeliveryTest, RecallIsNeverHandedToTheMessageHandler) {
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 1, .seqs = {1}});
  m.mutable_entries(0)->set_kind(wire::DATA_KIND_RECALL);
  ASSERT_TRUE(delivery.on_messages(m, record).has_value());  // no recall handler
  EXPECT_TRUE(delivered.empty());
  EXPECT_EQ(store.cursors[0], (Cursor{1, 1}));
}

TEST_F(DeliveryTest, RecallWithAnEmptyIdReachesNoHandlerButMovesTheCursor) {
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 1, .seqs = {1}});
  m.mutable_entries(0)->set_kind(wire::DATA_KIND_RECALL);
  m.mutable_entries(0)->clear_data();
  int recalls = 0;
  ASSERT_TRUE(delivery.on_messages(m, record, [&](const Recall&) { ++recalls; }).has_value());
  EXPECT_EQ(recalls, 0);
  EXPECT_EQ(store.cursors[0], (Cursor{1, 1}));
}

TEST_F(DeliveryTest, ThrowingRecallHandlerSavesUpToTheEntryBeforeAndRethrows) {
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 2, .seqs = {1, 2}});
  m.mutable_entries(1)->set_kind(wire::DATA_KIND_RECALL);
  auto failing = [](const Recall&) { throw std::runtime_error("disk full"); };
  EXPECT_THROW((void)delivery.on_messages(m, record, failing), std::runtime_error);
  EXPECT_EQ(store.cursors[0], (Cursor{1, 1}));  // the recall comes again next time
}

TEST_F(DeliveryTest, RecallAtOrBelowTheCursorIsNotHandedOverAgain) {
  store.cursors[0] = {1, 1};
  (void)delivery.on_connected();
  wire::Messages m = make({.head = 1, .seqs = {1}});
  m.mutable_entries(0)->set_kind(wire::DATA_KIND_RECALL);
  int recalls = 0;
  ASSERT_TRUE(delivery.on_messages(m, record, [&](const Recall&) { ++recalls; }).has_value());
  EXPECT_EQ(recalls, 0);
}

// ---------------------------------------------------------------------------------------------
// Topic and broadcast streams (docs/protocol.md section 11).

TEST_F(DeliveryTest, ListPullsOnlyStreamsWhoseEpochOrHeadIsBeyondTheCursor) {
  store.cursors[5] = {1, 10};
  store.cursors[6] = {1, 20};
  store.cursors[8] = {1, 5};
  (void)delivery.on_connected();
  Outbound out = streams({{.stream = 5, .topic = "a", .head = 12, .start = 3},
                          {.stream = 6, .topic = "b", .head = 20, .start = 3},
                          {.stream = 7, .topic = "c", .head = 40, .start = 40},
                          {.stream = 8, .epoch = 2, .head = 5}});
  ASSERT_EQ(out.pulls.size(), 2u);
  EXPECT_EQ(out.pulls[0], (PullRequest{5, 1, 10, 50}));
  EXPECT_EQ(out.pulls[1], (PullRequest{8, 1, 5, 50}));  // another epoch: only a pull tells
  EXPECT_FALSE(out.ack);
  EXPECT_TRUE(delivery.reads(6));
  EXPECT_TRUE(delivery.reads(7));
}

TEST_F(DeliveryTest, ListMovesAMissingCursorToTheStartAndSavesIt) {
  (void)delivery.on_connected();
  Outbound out = streams({{.stream = 3, .topic = "news", .epoch = 4, .head = 40, .start = 40}});
  EXPECT_TRUE(out.pulls.empty());
  EXPECT_EQ(store.cursors[3], (Cursor{4, 40}));
  EXPECT_EQ(delivery.cursor(3), (Cursor{4, 40}));
  // A join with history: the start is below the head, so the stream is pulled from the start.
  out = streams({{.stream = 9, .topic = "sport", .epoch = 4, .head = 40, .start = 35}});
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0], (PullRequest{9, 4, 35, 50}));
}

TEST_F(DeliveryTest, ListMovesAnOlderCursorOfTheSameEpochToTheStart) {
  store.cursors[3] = {4, 12};
  (void)delivery.on_connected();
  Outbound out = streams({{.stream = 3, .topic = "news", .epoch = 4, .head = 50, .start = 40}});
  EXPECT_EQ(store.cursors[3], (Cursor{4, 40}));
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0], (PullRequest{3, 4, 40, 50}));
  // The server answers from the start: no gap, nothing before it delivered.
  (void)reply(
      {.stream = 3, .epoch = 4, .head = 50, .seqs = {41, 42, 43, 44, 45, 46, 47, 48, 49, 50}});
  EXPECT_EQ(delivered.front().seq, 41u);
  EXPECT_EQ(store.cursors[3], (Cursor{4, 50}));
}

TEST_F(DeliveryTest, ListLeavesACursorAtOrPastTheStartOrOfAnotherEpochAlone) {
  store.cursors[3] = {4, 45};
  store.cursors[4] = {2, 5};
  (void)delivery.on_connected();
  (void)streams({{.stream = 3, .epoch = 4, .head = 50, .start = 40},
                 {.stream = 4, .epoch = 3, .head = 9, .start = 7}});
  EXPECT_EQ(store.cursors[3], (Cursor{4, 45}));
  EXPECT_EQ(store.cursors[4], (Cursor{2, 5}));
  EXPECT_TRUE(store.saves.empty());
}

TEST_F(DeliveryTest, NewEpochThatIsTheListsStartsAtTheStartWithoutAGap) {
  store.cursors[3] = {1, 50};
  (void)delivery.on_connected();
  Outbound out = streams({{.stream = 3, .topic = "news", .epoch = 2, .head = 30, .start = 20}});
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0], (PullRequest{3, 1, 50, 50}));
  // The server answers the old epoch's cursor as if from the start of the new one.
  wire::Messages m =
      make({.stream = 3, .epoch = 2, .head = 22, .seqs = {21, 22}, .epoch_changed = true});
  auto answer = delivery.on_messages(m, record);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{21, 22}));
  EXPECT_EQ(store.cursors[3], (Cursor{2, 22}));
}

TEST_F(DeliveryTest, PullInFlightFromBeforeTheStartIsAnsweredWithoutAGap) {
  store.cursors[3] = {1, 10};
  (void)delivery.on_connected();
  (void)streams({{.stream = 3, .head = 11, .start = 0}});  // pull from 10 in flight
  // The device left and joined again meanwhile: the new list starts at the head.
  EXPECT_TRUE(streams({{.stream = 3, .head = 30, .start = 30}}).pulls.empty());
  EXPECT_EQ(delivery.cursor(3), (Cursor{1, 30}));
  Outbound out = reply({.stream = 3, .head = 31, .seqs = {31}});  // answered from the start
  EXPECT_EQ(seqs_of(delivered), (std::vector<std::uint64_t>{31}));
  EXPECT_EQ(out.ack, (AckRequest{3, 1, 31}));
}

TEST_F(DeliveryTest, ListWhilePullInFlightPullsAgainAfterTheReply) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 3, .head = 2}});
  EXPECT_TRUE(streams({{.stream = 3, .head = 5}}).pulls.empty());  // one pull in flight
  Outbound out = reply({.stream = 3, .head = 2, .seqs = {1, 2}});
  EXPECT_EQ(pulled(out), (std::vector<std::uint64_t>{3}));
}

TEST_F(DeliveryTest, StreamDroppedFromTheListIsNoLongerPulledAndItsLateAnswerIsDropped) {
  (void)delivery.on_connected();
  (void)reply({.head = 0});
  (void)streams({{.stream = 3, .topic = "news", .head = 2}, {.stream = 4, .head = 0}});
  EXPECT_TRUE(delivery.pull_in_flight(3));
  EXPECT_TRUE(streams({{.stream = 4, .head = 0}}).pulls.empty());
  EXPECT_FALSE(delivery.reads(3));
  // The answer to the pull in flight: nothing delivered, saved or acked.
  const std::size_t saves = store.saves.size();
  Outbound out = reply({.stream = 3, .head = 2, .seqs = {1, 2}});
  EXPECT_TRUE(delivered.empty());
  EXPECT_FALSE(out.ack);
  EXPECT_TRUE(out.pulls.empty());
  EXPECT_EQ(store.saves.size(), saves);
  EXPECT_EQ(delivery.cursor(3), (Cursor{1, 0}));
  EXPECT_FALSE(delivery.pull_in_flight(3));
  EXPECT_TRUE(notify(3, 3).pulls.empty());
  EXPECT_EQ(pulled(delivery.on_pong(true)), (std::vector<std::uint64_t>{0, 4}));
}

TEST_F(DeliveryTest, StreamListedAgainKeepsItsCursorAndIsLoadedOnce) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 3, .head = 2}});
  (void)reply({.stream = 3, .head = 2, .seqs = {1, 2}});
  (void)streams({});
  EXPECT_EQ(pulled(streams({{.stream = 3, .head = 4}})), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(delivery.cursor(3), (Cursor{1, 2}));
  EXPECT_EQ(store.loads, 2);  // the inbox and 3, once each
}

TEST_F(DeliveryTest, ListEntryForTheInboxIsSkipped) {
  (void)delivery.on_connected();
  EXPECT_TRUE(streams({{.stream = 0, .topic = "x", .head = 9}}).pulls.empty());
  EXPECT_TRUE(delivery.reads(0));
  (void)reply({.head = 1, .seqs = {1}});
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].topic, "");
  EXPECT_FALSE(delivered[0].broadcast);
}

TEST_F(DeliveryTest, MessagesOfATopicOrBroadcastStreamCarryItAndInboxMessagesDoNot) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 3, .topic = "sport", .head = 1}, {.stream = 4, .head = 1}});
  (void)reply({.stream = 3, .head = 1, .seqs = {1}});
  (void)reply({.stream = 4, .head = 1, .seqs = {1}});
  (void)reply({.stream = 0, .head = 1, .seqs = {1}});
  ASSERT_EQ(delivered.size(), 3u);
  EXPECT_EQ(delivered[0].topic, "sport");
  EXPECT_FALSE(delivered[0].broadcast);
  EXPECT_EQ(delivered[1].topic, "");
  EXPECT_TRUE(delivered[1].broadcast);
  EXPECT_EQ(delivered[2].topic, "");
  EXPECT_FALSE(delivered[2].broadcast);
}

TEST_F(DeliveryTest, RecallOfATopicStreamCarriesTheTopic) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 3, .topic = "sport", .head = 1}});
  wire::Messages m = make({.stream = 3, .head = 1, .seqs = {1}});
  m.mutable_entries(0)->set_kind(wire::DATA_KIND_RECALL);
  std::vector<Recall> recalls;
  ASSERT_TRUE(
      delivery.on_messages(m, record, [&](const Recall& r) { recalls.push_back(r); }).has_value());
  ASSERT_EQ(recalls.size(), 1u);
  EXPECT_EQ(recalls[0].topic, "sport");
  EXPECT_FALSE(recalls[0].broadcast);
}

TEST_F(DeliveryTest, EntryWithoutAnAppTakesTheStreamsApp) {
  (void)delivery.on_connected();
  (void)streams({{.stream = 3, .topic = "sport", .head = 1, .app = "scores"}});
  wire::Messages m = make({.stream = 3, .head = 1, .seqs = {1}});
  m.mutable_entries(0)->clear_app();
  ASSERT_TRUE(delivery.on_messages(m, record).has_value());
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].app, "scores");
}

TEST_F(DeliveryTest, FailedPullOfAStreamDroppedMeanwhileIsNotRetried) {
  (void)delivery.on_connected();
  (void)reply({.head = 0});
  (void)streams({{.stream = 3, .head = 2}});
  delivery.on_request_failed(protocol::ErrorCode::kServerBusy);
  EXPECT_TRUE(delivery.has_failed_pulls());
  (void)streams({});
  EXPECT_FALSE(delivery.has_failed_pulls());
  EXPECT_TRUE(delivery.retry_failed().pulls.empty());
}

}  // namespace
}  // namespace herald::detail
