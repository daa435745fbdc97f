#include "logic/upstream_service.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include "distribution/webhook_dispatcher.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::logic {
namespace {

namespace asio = boost::asio;

constexpr std::int64_t kNowMs = 1'700'000'000'000;
constexpr std::int64_t kTtlS = 3600;

struct Outcome {
  boost::system::error_code ec;
  UpstreamStored stored;
  bool completed = false;
};

UpstreamMessage message(std::string device, std::uint64_t id, std::string data,
                        storage::DataKind kind = storage::DataKind::kJson,
                        std::string app = "news") {
  return UpstreamMessage{std::move(device), id, std::move(app), std::move(data), kind};
}

class UpstreamServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { open(100); }

  void open(std::size_t max_pending) {
    service_.reset();
    if (!storage_) {
      storage::RocksDbOptions options;
      options.path = dir_.db_path();
      storage_ = storage::RocksDbStorage::open(options).value();
      ASSERT_TRUE(storage_->devices().register_device("news", "d1", kNowMs).value());
      ASSERT_TRUE(storage_->devices().register_device("news", "d2", kNowMs).value());
      ASSERT_TRUE(storage_->devices().register_device("chat", "d1", kNowMs).value());
    }
    service_ = std::make_unique<UpstreamService>(
        std::vector<UpstreamAppSettings>{{"news", max_pending, kTtlS}}, 64, storage_->streams(),
        storage_->devices(), [] { return kNowMs; },
        [this](const std::string& app) { woken_.push_back(app); });
  }

  // Starts a store; its outcome is filled in once io_ runs.
  void start(UpstreamMessage m, Outcome& out) {
    service_->async_store(
        std::move(m),
        asio::bind_executor(io_, [&out](boost::system::error_code ec, UpstreamStored stored) {
          out = {ec, stored, true};
        }));
  }

  Outcome store(UpstreamMessage m) {
    Outcome out;
    start(std::move(m), out);
    io_.restart();
    io_.run();
    EXPECT_TRUE(out.completed);
    return out;
  }

  std::vector<storage::Entry> stored_entries() {
    storage::ReadRequest read;
    const std::string key = UpstreamService::stream_key("news");
    read.stream = key;
    read.max_entries = 1000;
    read.now_ms = kNowMs;
    return storage_->streams().read(read).value().entries;
  }

  std::uint64_t head() {
    return storage_->streams().head(UpstreamService::stream_key("news")).value().head_seq;
  }

  storage::testing::TempDir dir_;
  std::unique_ptr<storage::RocksDbStorage> storage_;
  std::unique_ptr<UpstreamService> service_;
  std::vector<std::string> woken_;
  asio::io_context io_;
};

TEST_F(UpstreamServiceTest, StoresAMessageInTheAppsUpstreamStreamAndWakesItsDispatcher) {
  const auto out = store(message("d1", 7, R"({"score":3})"));
  ASSERT_FALSE(out.ec) << out.ec.message();
  EXPECT_FALSE(out.stored.duplicate);
  EXPECT_EQ(out.stored.seq, 1u);

  const auto entries = stored_entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].app, "news");
  EXPECT_EQ(entries[0].message_id, "d1:7");
  EXPECT_EQ(entries[0].kind, storage::DataKind::kJson);
  EXPECT_EQ(entries[0].data, R"({"score":3})");
  EXPECT_EQ(entries[0].sent_at_ms, kNowMs);
  EXPECT_EQ(entries[0].expires_at_ms, kNowMs + kTtlS * 1000);
  EXPECT_EQ(woken_, std::vector<std::string>{"news"});
}

TEST_F(UpstreamServiceTest, AResendWithTheSameIdIsStoredOnce) {
  ASSERT_FALSE(store(message("d1", 7, "1")).ec);
  const auto again = store(message("d1", 7, "1"));
  ASSERT_FALSE(again.ec) << again.ec.message();
  EXPECT_TRUE(again.stored.duplicate);
  EXPECT_EQ(head(), 1u);
  EXPECT_EQ(woken_.size(), 1u);  // nothing new to deliver
  EXPECT_EQ(service_->metrics().duplicates_total.load(), 1u);
}

TEST_F(UpstreamServiceTest, ConcurrentResendsOfOneIdAreStoredOnce) {
  Outcome first;
  Outcome second;
  start(message("d1", 9, "1"), first);
  start(message("d1", 9, "1"), second);
  io_.run();
  ASSERT_FALSE(first.ec);
  ASSERT_FALSE(second.ec);
  EXPECT_NE(first.stored.duplicate, second.stored.duplicate);
  EXPECT_EQ(head(), 1u);
}

TEST_F(UpstreamServiceTest, TheSameIdFromAnotherDeviceIsAnotherMessage) {
  ASSERT_FALSE(store(message("d1", 7, "1")).ec);
  const auto other = store(message("d2", 7, "1"));
  ASSERT_FALSE(other.ec);
  EXPECT_FALSE(other.stored.duplicate);
  EXPECT_EQ(head(), 2u);
}

TEST_F(UpstreamServiceTest, MessagesHandedOverInOrderAreStoredInThatOrder) {
  std::vector<Outcome> outs(50);
  for (std::size_t i = 0; i < outs.size(); ++i) {
    start(message(i % 2 ? "d1" : "d2", i + 1, std::to_string(i)), outs[i]);
  }
  io_.run();
  const auto entries = stored_entries();
  ASSERT_EQ(entries.size(), outs.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_FALSE(outs[i].ec);
    EXPECT_EQ(entries[i].data, std::to_string(i));
  }
}

TEST_F(UpstreamServiceTest, AtTheBoundItAnswersBusyAndStoresNothing) {
  open(3);
  for (std::uint64_t id = 1; id <= 3; ++id) ASSERT_FALSE(store(message("d1", id, "1")).ec);
  EXPECT_EQ(service_->pending("news").value(), 3u);

  const auto refused = store(message("d1", 4, "1"));
  EXPECT_EQ(refused.ec, LogicError::kBusy);
  EXPECT_EQ(head(), 3u);
  EXPECT_EQ(woken_.size(), 3u);
  EXPECT_EQ(service_->metrics().busy_total.load(), 1u);
  // Refused means unknown to the dedupe too: once there is room, the same id is stored.
  const auto key = UpstreamService::stream_key("news");
  const auto epoch = storage_->streams().head(key).value().epoch;
  ASSERT_TRUE(storage_->devices()
                  .save_ack(distribution::kWebhookCursorOwner, key, {epoch, 1, kNowMs})
                  .has_value());
  EXPECT_EQ(service_->pending("news").value(), 2u);
  const auto retried = store(message("d1", 4, "1"));
  ASSERT_FALSE(retried.ec);
  EXPECT_FALSE(retried.stored.duplicate);
  EXPECT_EQ(head(), 4u);
}

TEST_F(UpstreamServiceTest, StoresInFlightCountTowardTheBound) {
  open(3);
  std::vector<Outcome> outs(10);
  for (std::size_t i = 0; i < outs.size(); ++i) start(message("d1", i + 1, "1"), outs[i]);
  io_.run();
  std::size_t stored = 0;
  for (const auto& out : outs) {
    if (!out.ec) {
      ++stored;
    } else {
      EXPECT_EQ(out.ec, LogicError::kBusy);
    }
  }
  EXPECT_EQ(stored, 3u);
  EXPECT_EQ(head(), 3u);
}

TEST_F(UpstreamServiceTest, RefusedMessagesChangeNothing) {
  struct Case {
    UpstreamMessage m;
    LogicError expected;
  };
  const std::vector<Case> cases = {
      {message("d1", 1, "1", storage::DataKind::kJson, "chat"), LogicError::kUnknownApp},
      {message("d1", 1, "1", storage::DataKind::kJson, "nosuch"), LogicError::kUnknownApp},
      {message("d3", 1, "1"), LogicError::kUnknownDevice},
      {message("d1", 0, "1"), LogicError::kBadRequest},
      {message("d1", 1, "{\"a\":"), LogicError::kBadRequest},
      {message("d1", 1, ""), LogicError::kBadRequest},
      {message("d1", 1, "\"\xff\""), LogicError::kBadRequest},
      {message("d1", 1, "", storage::DataKind::kTombstone), LogicError::kBadRequest},
      {message("d1", 1, "m", storage::DataKind::kRecall), LogicError::kBadRequest},
      {message("d1", 1, std::string(65, 'x'), storage::DataKind::kBinary),
       LogicError::kPayloadTooLarge},
  };
  for (const auto& c : cases) {
    const auto out = store(c.m);
    EXPECT_EQ(out.ec, c.expected) << c.m.app << " " << c.m.device << " " << c.m.data;
  }
  EXPECT_EQ(head(), 0u);
  EXPECT_TRUE(woken_.empty());
  // None of them was remembered as sent: the same id is stored once it is valid.
  EXPECT_FALSE(store(message("d1", 1, "1")).stored.duplicate);
}

TEST_F(UpstreamServiceTest, BinaryDataMayBeAnyBytesUpToTheMaximum) {
  const std::string bytes("\x00\xff\x7b\x80", 4);
  ASSERT_FALSE(store(message("d1", 1, bytes, storage::DataKind::kBinary)).ec);
  ASSERT_FALSE(store(message("d1", 2, std::string(64, 'x'), storage::DataKind::kBinary)).ec);
  const auto entries = stored_entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].kind, storage::DataKind::kBinary);
  EXPECT_EQ(entries[0].data, bytes);
}

TEST_F(UpstreamServiceTest, AnAppSetAtRunTimeAcceptsWithItsOwnSettings) {
  EXPECT_FALSE(service_->accepts("chat"));
  EXPECT_EQ(store(message("d1", 1, "1", storage::DataKind::kJson, "chat")).ec,
            LogicError::kUnknownApp);
  service_->set_app({"chat", 1, 60}, true);
  EXPECT_TRUE(service_->accepts("chat"));
  const auto stored = store(message("d1", 1, "1", storage::DataKind::kJson, "chat"));
  ASSERT_FALSE(stored.ec) << stored.ec.message();
  EXPECT_EQ(woken_, std::vector<std::string>{"chat"});
  // Its own bound (1) and TTL (60 s), not news's.
  EXPECT_EQ(store(message("d1", 2, "1", storage::DataKind::kJson, "chat")).ec, LogicError::kBusy);
  storage::ReadRequest read;
  const std::string key = UpstreamService::stream_key("chat");
  read.stream = key;
  read.now_ms = kNowMs;
  const auto entries = storage_->streams().read(read).value().entries;
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].expires_at_ms, kNowMs + 60'000);
}

TEST_F(UpstreamServiceTest, AnAppThatStopsAcceptingKeepsWhatItStoredUntilItAcceptsAgain) {
  ASSERT_FALSE(store(message("d1", 1, "1")).ec);
  service_->set_app({"news", 100, kTtlS}, false);
  EXPECT_FALSE(service_->accepts("news"));
  EXPECT_EQ(store(message("d1", 2, "1")).ec, LogicError::kUnknownApp);
  EXPECT_EQ(service_->pending("news").value(), 1u);  // still stored, still pending

  service_->set_app({"news", 100, kTtlS}, true);
  ASSERT_FALSE(store(message("d1", 2, "1")).ec);
  EXPECT_TRUE(store(message("d1", 1, "1")).stored.duplicate);  // the first is still stored
  EXPECT_EQ(head(), 2u);
  EXPECT_EQ(service_->pending("news").value(), 2u);
}

TEST(UpstreamServiceKeys, NameOneAppDeviceAndId) {
  EXPECT_EQ(UpstreamService::stream_key("news"), "u/news");
  EXPECT_EQ(UpstreamService::dedupe_key("news", "d:1", 18446744073709551615u),
            "upstream/news/d:1/18446744073709551615");
}

}  // namespace
}  // namespace herald::logic
