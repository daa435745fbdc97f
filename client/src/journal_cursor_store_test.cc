#include "herald/journal_cursor_store.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "delivery.h"
#include "test_dir.h"

namespace herald {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using testing::read_file;
using testing::TestDir;
using testing::write_file;
using Cursor = CursorStore::Cursor;

Message msg(std::uint64_t stream, std::uint64_t epoch, std::uint64_t seq,
            std::string data = "{\"x\":1}") {
  Message m;
  m.app = "news";
  m.stream = stream;
  m.epoch = epoch;
  m.seq = seq;
  m.id = "m" + std::to_string(seq);
  m.data = std::move(data);
  return m;
}

std::string line(std::uint64_t stream, std::uint64_t epoch, std::uint64_t seq) {
  return JournalCursorStore::format_line("d1", msg(stream, epoch, seq)) + "\n";
}

Recall recall(std::uint64_t stream, std::uint64_t epoch, std::uint64_t seq,
              std::string recalled_id) {
  Recall r;
  r.app = "news";
  r.stream = stream;
  r.epoch = epoch;
  r.seq = seq;
  r.id = "r" + std::to_string(seq);
  r.recalled_id = std::move(recalled_id);
  return r;
}

TEST(JournalCursorStore, NewJournalIsCreatedEmptyWithNoCursors) {
  TestDir dir;
  JournalCursorStore journal(dir / "out.jsonl", "d1");
  EXPECT_TRUE(std::filesystem::exists(dir / "out.jsonl"));
  EXPECT_EQ(journal.load(0), (Cursor{0, 0}));
  EXPECT_EQ(journal.recovered_lines(), 0u);
}

TEST(JournalCursorStore, LinesReachTheFileOnlyWithSave) {
  TestDir dir;
  JournalCursorStore journal(dir / "out.jsonl", "d1");
  journal.append(msg(0, 1, 1));
  journal.append(msg(0, 1, 2));
  EXPECT_EQ(read_file(dir / "out.jsonl"), "");
  journal.save(0, {1, 2});
  EXPECT_EQ(read_file(dir / "out.jsonl"), line(0, 1, 1) + line(0, 1, 2));
}

TEST(JournalCursorStore, CursorsAreRebuiltFromTheLastLineOfEachStream) {
  TestDir dir;
  write_file(dir / "out.jsonl",
             line(0, 1, 49) + line(0, 1, 50) + line(7, 3, 4) + line(0, 2, 1) + line(7, 3, 5));
  JournalCursorStore journal(dir / "out.jsonl", "d1");
  EXPECT_EQ(journal.load(0), (Cursor{2, 1}));  // the epoch changed after seq 50
  EXPECT_EQ(journal.load(7), (Cursor{3, 5}));
  EXPECT_EQ(journal.load(8), (Cursor{0, 0}));
  EXPECT_EQ(journal.recovered_lines(), 5u);
}

TEST(JournalCursorStore, TornLastLineIsTruncatedAndItsMessageComesAgain) {
  TestDir dir;
  const std::string torn = line(0, 1, 3).substr(0, 25);
  write_file(dir / "out.jsonl", line(0, 1, 1) + line(0, 1, 2) + torn);
  {
    JournalCursorStore journal(dir / "out.jsonl", "d1");
    EXPECT_EQ(journal.truncated_bytes(), torn.size());
    EXPECT_EQ(journal.load(0), (Cursor{1, 2}));
    EXPECT_EQ(read_file(dir / "out.jsonl"), line(0, 1, 1) + line(0, 1, 2));
    journal.append(msg(0, 1, 3));
    journal.save(0, {1, 3});
  }
  EXPECT_EQ(read_file(dir / "out.jsonl"), line(0, 1, 1) + line(0, 1, 2) + line(0, 1, 3));
}

TEST(JournalCursorStore, TornOnlyLineLeavesAnEmptyJournal) {
  TestDir dir;
  write_file(dir / "out.jsonl", "{\"device\":\"d1\",\"app");
  JournalCursorStore journal(dir / "out.jsonl", "d1");
  EXPECT_EQ(journal.load(0), (Cursor{0, 0}));
  EXPECT_EQ(read_file(dir / "out.jsonl"), "");
}

TEST(JournalCursorStore, LongJournalIsScannedAcrossReadChunks) {
  TestDir dir;
  std::string text;
  for (std::uint64_t seq = 1; seq <= 5000; ++seq) text += line(0, 1, seq);
  write_file(dir / "out.jsonl", text + "{\"dev");
  JournalCursorStore journal(dir / "out.jsonl", "d1");
  EXPECT_EQ(journal.load(0), (Cursor{1, 5000}));
  EXPECT_EQ(journal.recovered_lines(), 5000u);
  EXPECT_EQ(read_file(dir / "out.jsonl"), text);
}

TEST(JournalCursorStore, CorruptCompleteLineIsAnErrorNamingThePathAndLine) {
  TestDir dir;
  write_file(dir / "out.jsonl", line(0, 1, 1) + "not json\n" + line(0, 1, 2));
  try {
    JournalCursorStore journal(dir / "out.jsonl", "d1");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr((dir / "out.jsonl").string()));
    EXPECT_THAT(e.what(), HasSubstr("line 2"));
  }
}

TEST(JournalCursorStore, LineWithoutASeqIsAnError) {
  TestDir dir;
  write_file(dir / "out.jsonl", "{\"device\":\"d1\",\"stream\":0,\"epoch\":1}\n");
  EXPECT_THROW(JournalCursorStore(dir / "out.jsonl", "d1"), std::runtime_error);
}

TEST(JournalCursorStore, JournalOfAnotherDeviceIsAnError) {
  TestDir dir;
  write_file(dir / "out.jsonl", line(0, 1, 1));
  EXPECT_THROW(JournalCursorStore(dir / "out.jsonl", "d2"), std::runtime_error);
}

TEST(JournalCursorStore, CursorMovesWithoutAMessageAreKeptInMemoryOnly) {
  TestDir dir;
  {
    JournalCursorStore journal(dir / "out.jsonl", "d1");
    journal.save(0, {2, 0});  // an epoch change with no entry yet
    EXPECT_EQ(journal.load(0), (Cursor{2, 0}));
  }
  EXPECT_EQ(read_file(dir / "out.jsonl"), "");
}

TEST(JournalCursorStore, FormatLineEmbedsJsonData) {
  const std::string text = JournalCursorStore::format_line("d1", msg(3, 2, 9, "{\"a\":[1,2]}"));
  EXPECT_EQ(text,
            "{\"device\":\"d1\",\"app\":\"news\",\"stream\":3,\"epoch\":2,\"seq\":9,\"id\":\"m9\","
            "\"sent_at_ms\":0,\"data\":{\"a\":[1,2]}}");
}

TEST(JournalCursorStore, FormatLineKeepsMultiLineJsonOnOneLine) {
  const std::string text =
      JournalCursorStore::format_line("d1", msg(0, 1, 1, "{\n  \"a\": \"x\\ny\"\n}"));
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_EQ(json::parse(text).at("data").at("a").as_string(), "x\ny");
}

TEST(JournalCursorStore, FormatLineEncodesBinaryAndInvalidJsonAsBase64) {
  Message m = msg(0, 1, 1, std::string("\x00\xff\n", 3));
  m.binary = true;
  json::value v = json::parse(JournalCursorStore::format_line("d1", m));
  EXPECT_EQ(v.at("data").as_string(), "AP8K");
  EXPECT_TRUE(v.at("binary").as_bool());
  json::value bad = json::parse(JournalCursorStore::format_line("d1", msg(0, 1, 1, "{oops")));
  EXPECT_EQ(bad.at("data").as_string(), "e29vcHM=");
}

TEST(JournalCursorStore, FormatLineEscapesStrings) {
  Message m = msg(0, 1, 1);
  m.app = "a\"b\\c\n";
  json::value v = json::parse(JournalCursorStore::format_line("d1", m));
  EXPECT_EQ(v.at("app").as_string(), "a\"b\\c\n");
}

TEST(JournalCursorStore, FormatLineOfARecallNamesTheRecalledMessage) {
  EXPECT_EQ(JournalCursorStore::format_line("d1", recall(0, 1, 3, "m1")),
            "{\"device\":\"d1\",\"app\":\"news\",\"stream\":0,\"epoch\":1,\"seq\":3,\"id\":\"r3\","
            "\"sent_at_ms\":0,\"recall\":\"m1\"}");
}

TEST(JournalCursorStore, FormatLineNamesTheTopicOrBroadcastBeforeTheData) {
  Message m = msg(3, 1, 41);
  m.topic = "sport";
  EXPECT_EQ(
      JournalCursorStore::format_line("d1", m),
      "{\"device\":\"d1\",\"app\":\"news\",\"stream\":3,\"epoch\":1,\"seq\":41,\"id\":\"m41\","
      "\"sent_at_ms\":0,\"topic\":\"sport\",\"data\":{\"x\":1}}");
  Message b = msg(4, 1, 2);
  b.broadcast = true;
  EXPECT_EQ(JournalCursorStore::format_line("d1", b),
            "{\"device\":\"d1\",\"app\":\"news\",\"stream\":4,\"epoch\":1,\"seq\":2,\"id\":\"m2\","
            "\"sent_at_ms\":0,\"broadcast\":true,\"data\":{\"x\":1}}");
  Recall r = recall(3, 1, 42, "m41");
  r.topic = "sport";
  EXPECT_EQ(json::parse(JournalCursorStore::format_line("d1", r)).at("topic").as_string(), "sport");
}

TEST(JournalCursorStore, TopicLinesRebuildTheirStreamsCursor) {
  TestDir dir;
  Message m = msg(3, 1, 41);
  m.topic = "sport";
  {
    JournalCursorStore store(dir / "j", "d1");
    store.append(m);
    store.save(3, {1, 41});
  }
  JournalCursorStore store(dir / "j", "d1");
  EXPECT_EQ(store.load(3), (Cursor{1, 41}));
}

TEST(JournalCursorStore, RecallLinesReachTheFileWithSaveAndRebuildTheCursor) {
  TestDir dir;
  {
    JournalCursorStore journal(dir / "out.jsonl", "d1");
    journal.append(msg(0, 1, 1));
    journal.append(recall(0, 1, 2, "m1"));
    journal.save(0, {1, 2});
  }
  EXPECT_EQ(read_file(dir / "out.jsonl"),
            line(0, 1, 1) + JournalCursorStore::format_line("d1", recall(0, 1, 2, "m1")) + "\n");
  JournalCursorStore journal(dir / "out.jsonl", "d1");
  EXPECT_EQ(journal.load(0), (Cursor{1, 2}));
}

// The journal behind the delivery state machine: what a restarted herald-device --out does.
TEST(JournalCursorStore, RestartedClientPullsAfterTheLastJournaledMessage) {
  TestDir dir;
  {
    JournalCursorStore journal(dir / "out.jsonl", "d1");
    detail::Delivery delivery(journal, 10);
    (void)delivery.on_connected();
    protocol::wire::Messages m;
    m.set_epoch(1);
    m.set_head_seq(2);
    for (std::uint64_t seq : {1, 2}) {
      auto* e = m.add_entries();
      e->set_seq(seq);
      e->set_app("news");
      e->set_data("1");
    }
    ASSERT_TRUE(delivery.on_messages(m, [&](const Message& msg) { journal.append(msg); }));
  }
  JournalCursorStore journal(dir / "out.jsonl", "d1");
  detail::Delivery delivery(journal, 10);
  auto out = delivery.on_connected();
  ASSERT_EQ(out.pulls.size(), 1u);
  EXPECT_EQ(out.pulls[0], (detail::PullRequest{0, 1, 2, 10}));
}

TEST(JournalCursorStore, RecallJournaledByItsHandlerIsNotRepeatedAfterARestart) {
  TestDir dir;
  // The server's answer, before and after the restart: a message, then a recall of it.
  auto reply = [] {
    protocol::wire::Messages m;
    m.set_epoch(1);
    m.set_head_seq(2);
    auto* e = m.add_entries();
    e->set_seq(1);
    e->set_app("news");
    e->set_message_id("m1");
    e->set_data("1");
    e = m.add_entries();
    e->set_seq(2);
    e->set_app("news");
    e->set_message_id("r2");
    e->set_data("m1");
    e->set_kind(protocol::wire::DATA_KIND_RECALL);
    return m;
  };
  int recalls = 0;
  for (int run = 0; run < 2; ++run) {
    JournalCursorStore journal(dir / "out.jsonl", "d1");
    detail::Delivery delivery(journal, 10);
    (void)delivery.on_connected();
    auto m = reply();
    ASSERT_TRUE(delivery.on_messages(
        m, [&](const Message& msg) { journal.append(msg); },
        [&](const Recall& r) {
          ++recalls;
          journal.append(r);
        }));
  }
  EXPECT_EQ(recalls, 1);
  const std::string text = read_file(dir / "out.jsonl");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  EXPECT_THAT(text, HasSubstr("\"recall\":\"m1\""));
}

}  // namespace
}  // namespace herald
