// The dispatcher against a real HTTP backend (WebhookReceiver: a Beast server on loopback that
// checks every signature itself) and the real RocksDB store.
#include "distribution/webhook_dispatcher.h"

#include <openssl/evp.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "http/webhook_client.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"
#include "webhook_receiver.h"

namespace herald::distribution {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::WebhookReceiver;

constexpr auto kWait = 20s;
constexpr std::string_view kSecret = "test-webhook-secret-0123456789abcdef";
constexpr std::string_view kOldSecret = "old-webhook-secret-0123456789abcdef";
constexpr std::string_view kStream = "u/news";

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Counts the dispatcher's POSTs as they complete, for tests to wait on.
class Attempts {
 public:
  void record(bool delivered) {
    std::lock_guard lock(mu_);
    ++(delivered ? delivered_ : failed_);
    cv_.notify_all();
  }
  std::size_t wait_failed(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return failed_ >= n; });
    return failed_;
  }
  std::size_t failed() {
    std::lock_guard lock(mu_);
    return failed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t delivered_ = 0;
  std::size_t failed_ = 0;
};

// The real webhook client, observed.
class ObservedTransport final : public WebhookTransport {
 public:
  ObservedTransport(std::unique_ptr<WebhookTransport> inner, Attempts& attempts)
      : inner_(std::move(inner)), attempts_(attempts) {}

  asio::awaitable<boost::system::result<unsigned>> async_post(WebhookPost post) override {
    auto status = co_await inner_->async_post(std::move(post));
    attempts_.record(status && *status >= 200 && *status < 300);
    co_return status;
  }

 private:
  std::unique_ptr<WebhookTransport> inner_;
  Attempts& attempts_;
};

struct Sent {
  std::string id;
  std::string device;
  bool binary = false;
  std::string data;  // as stored
};

class WebhookDispatcherTest : public ::testing::Test {
 protected:
  WebhookDispatcherTest() : receiver_(std::string(kSecret)) {
    storage::RocksDbOptions options;
    options.path = dir_.db_path();
    storage_ = storage::RocksDbStorage::open(options).value();
    run_loop();
  }

  ~WebhookDispatcherTest() override { stop_dispatchers(); }

  void run_loop() {
    io_.restart();
    work_.emplace(io_.get_executor());
    loop_ = std::thread([this] { io_.run(); });
  }

  // Stops every dispatcher and waits until their coroutines ended: the loop then runs out of
  // work. A dispatcher persists its cursor before it can end, so the store is settled after.
  void stop_dispatchers() {
    for (auto& d : dispatchers_) d->stop();
    dispatchers_.clear();
    work_.reset();
    if (loop_.joinable()) loop_.join();
  }

  // The real webhook client to `backend`, observed by attempts_.
  std::unique_ptr<WebhookTransport> transport_to(const WebhookReceiver& backend) {
    return std::make_unique<ObservedTransport>(
        std::make_unique<http::WebhookClient>(io_.get_executor(),
                                              http::parse_webhook_url(backend.url()), 5s),
        attempts_);
  }

  // A dispatcher delivering to receiver_, or to `backend` signing with `secret`.
  std::shared_ptr<WebhookDispatcher> start_dispatcher(std::size_t max_batch_messages = 100,
                                                      const WebhookReceiver* backend = nullptr,
                                                      std::string_view secret = kSecret) {
    WebhookDispatcherOptions options;
    options.app = "news";
    options.stream = std::string(kStream);
    options.secret = std::string(secret);
    options.max_batch_messages = max_batch_messages;
    options.retry_initial = 5ms;
    options.retry_max = 50ms;
    options.jitter_seed = 42;
    auto dispatcher = WebhookDispatcher::create(
        io_.get_executor(), std::move(options), storage_->streams(), storage_->devices(),
        transport_to(backend != nullptr ? *backend : receiver_), now_ms);
    dispatcher->start();
    dispatchers_.push_back(dispatcher);
    return dispatcher;
  }

  // Appends `n` messages, from devices d0..d2 in turn, every fifth one binary.
  void append(std::size_t n, std::int64_t expires_at_ms = 0) {
    std::vector<storage::AppendRequest> batch;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = sent_.size();
      Sent s;
      s.device = "d" + std::to_string(k % 3);
      s.id = s.device + ":" + std::to_string(1000 + k);
      s.binary = k % 5 == 4;
      s.data = s.binary ? std::string("\x00\xff", 2) + static_cast<char>(k % 256)
                        : R"({"n":)" + std::to_string(k) + R"(,"text":"h\u00e9"})";
      storage::AppendRequest request;
      request.stream = std::string(kStream);
      request.entry.app = "news";
      request.entry.message_id = s.id;
      request.entry.kind = s.binary ? storage::DataKind::kBinary : storage::DataKind::kJson;
      request.entry.data = s.data;
      request.entry.sent_at_ms = now_ms();
      request.entry.expires_at_ms = expires_at_ms != 0 ? expires_at_ms : now_ms() + 3'600'000;
      batch.push_back(std::move(request));
      sent_.push_back(std::move(s));
    }
    const auto outcome = storage::testing::append_and_wait(storage_->streams(), std::move(batch));
    ASSERT_FALSE(outcome.ec) << outcome.ec.message();
  }

  // Every message of sent_[from..] arrived, with its data, each device's in order, signed.
  void expect_delivered(std::size_t from = 0) {
    EXPECT_TRUE(receiver_.rejected().empty()) << receiver_.rejected().front();
    std::map<std::string, const Sent*> by_id;
    for (std::size_t i = from; i < sent_.size(); ++i) by_id[sent_[i].id] = &sent_[i];
    std::map<std::string, std::size_t> seen;     // id -> arrivals
    std::map<std::string, std::string> last_of;  // device -> last id seen first time
    for (const auto& m : receiver_.messages()) {
      const auto it = by_id.find(m.id);
      if (it == by_id.end()) continue;  // an earlier message sent again (at least once)
      const Sent& s = *it->second;
      EXPECT_EQ(m.device, s.device);
      EXPECT_EQ(m.base64, s.binary);
      if (s.binary) {
        EXPECT_EQ(m.data, base64(s.data)) << m.id;
      } else {
        EXPECT_EQ(m.data, boost::json::serialize(boost::json::parse(s.data))) << m.id;
      }
      if (seen[m.id]++ == 0) {
        // First arrivals of one device come in the order it sent them: ids grow.
        auto& last = last_of[m.device];
        if (!last.empty()) {
          EXPECT_LT(std::stoll(last.substr(3)), std::stoll(m.id.substr(3)));
        }
        last = m.id;
      }
    }
    EXPECT_EQ(seen.size(), by_id.size());
  }

  storage::testing::TempDir dir_;
  std::unique_ptr<storage::RocksDbStorage> storage_;
  WebhookReceiver receiver_;
  Attempts attempts_;
  std::vector<Sent> sent_;
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread loop_;
  std::vector<std::shared_ptr<WebhookDispatcher>> dispatchers_;
};

TEST_F(WebhookDispatcherTest, DeliversEverythingInOrderOnceTheBackendComesUp) {
  append(250);
  auto dispatcher = start_dispatcher();
  // Nothing listens yet: the dispatcher fails, backs off, and keeps everything.
  ASSERT_GE(attempts_.wait_failed(3, kWait), 3u);
  EXPECT_EQ(receiver_.requests(), 0u);

  receiver_.up();
  ASSERT_EQ(receiver_.wait_for_distinct(250, kWait), 250u);
  expect_delivered();
  stop_dispatchers();
  EXPECT_EQ(dispatcher->metrics().delivered_total.load(), 250u);
  EXPECT_GE(dispatcher->metrics().failed_attempts_total.load(), 3u);
  const auto cursor = storage_->devices().acked(kWebhookCursorOwner, kStream).value();
  ASSERT_TRUE(cursor.has_value());
  EXPECT_EQ(cursor->seq, 250u);
  EXPECT_EQ(cursor->epoch, storage_->streams().head(kStream).value().epoch);
}

TEST_F(WebhookDispatcherTest, RetriesTheSameBatchWhileTheBackendAnswersErrors) {
  receiver_.up();
  receiver_.fail_next(3, 503);
  append(12);
  start_dispatcher();
  ASSERT_EQ(receiver_.wait_for_distinct(12, kWait), 12u);
  EXPECT_EQ(attempts_.failed(), 3u);
  EXPECT_EQ(receiver_.requests(), 4u);  // three refusals, then the whole batch at once
  expect_delivered();
  EXPECT_EQ(receiver_.messages().size(), 12u);
}

TEST_F(WebhookDispatcherTest, BatchesHoldAtMostTheConfiguredNumberOfMessages) {
  receiver_.up();
  append(35);
  start_dispatcher(10);
  ASSERT_EQ(receiver_.wait_for_distinct(35, kWait), 35u);
  EXPECT_EQ(receiver_.batch_sizes(), (std::vector<std::size_t>{10, 10, 10, 5}));
  expect_delivered();
}

TEST_F(WebhookDispatcherTest, ANewEntryIsDeliveredAsSoonAsItsDispatcherIsWoken) {
  receiver_.up();
  append(3);
  auto dispatcher = start_dispatcher();
  ASSERT_EQ(receiver_.wait_for_distinct(3, kWait), 3u);
  // The dispatcher now sleeps without polling; only wake() brings it back.
  append(1);
  dispatcher->wake();
  ASSERT_EQ(receiver_.wait_for_distinct(4, kWait), 4u);
  expect_delivered();
}

TEST_F(WebhookDispatcherTest, ARestartedDispatcherResumesAfterItsPersistedCursor) {
  receiver_.up();
  append(20);
  start_dispatcher();
  ASSERT_EQ(receiver_.wait_for_distinct(20, kWait), 20u);
  stop_dispatchers();

  append(5);
  run_loop();
  start_dispatcher();
  ASSERT_EQ(receiver_.wait_for_distinct(25, kWait), 25u);
  expect_delivered();
  // A clean stop persisted the cursor: nothing was sent twice.
  EXPECT_EQ(receiver_.messages().size(), 25u);
}

TEST_F(WebhookDispatcherTest, ExpiredEntriesAreSteppedOverAndCounted) {
  receiver_.up();
  append(4, now_ms() - 1);  // expired before the dispatcher could send them
  append(3);
  auto dispatcher = start_dispatcher();
  ASSERT_EQ(receiver_.wait_for_distinct(3, kWait), 3u);
  stop_dispatchers();
  expect_delivered(4);
  EXPECT_EQ(receiver_.messages().size(), 3u);
  EXPECT_EQ(dispatcher->metrics().expired_total.load(), 4u);
  EXPECT_EQ(storage_->devices().acked(kWebhookCursorOwner, kStream).value()->seq, 7u);
}

TEST_F(WebhookDispatcherTest, RetargetSendsTheBacklogToTheNewBackendSignedWithTheNewSecret) {
  // The old backend never comes up; the new one checks the new secret only.
  WebhookReceiver old_backend{std::string(kOldSecret)};
  receiver_.up();
  append(30);
  auto dispatcher = start_dispatcher(10, &old_backend, kOldSecret);
  ASSERT_GE(attempts_.wait_failed(2, kWait), 2u);
  dispatcher->retarget(transport_to(receiver_), std::string(kSecret));
  ASSERT_EQ(receiver_.wait_for_distinct(30, kWait), 30u);
  expect_delivered();
  EXPECT_EQ(receiver_.messages().size(), 30u);
  EXPECT_EQ(old_backend.requests(), 0u);
}

TEST_F(WebhookDispatcherTest, APausedDispatcherSendsNothingAndKeepsEverythingForItsNextTarget) {
  WebhookReceiver first{std::string(kOldSecret)};
  first.up();
  append(5);
  auto dispatcher = start_dispatcher(100, &first, kOldSecret);
  ASSERT_EQ(first.wait_for_distinct(5, kWait), 5u);

  dispatcher->pause();
  append(7);
  dispatcher->wake();  // new entries do not resume a paused dispatcher
  receiver_.up();
  dispatcher->retarget(transport_to(receiver_), std::string(kSecret));
  ASSERT_EQ(receiver_.wait_for_distinct(7, kWait), 7u);
  expect_delivered(5);
  EXPECT_EQ(receiver_.messages().size(), 7u);
  EXPECT_EQ(first.requests(), 1u);  // the first batch only: nothing went there while paused
  stop_dispatchers();
  EXPECT_EQ(storage_->devices().acked(kWebhookCursorOwner, kStream).value()->seq, 12u);
}

TEST(WebhookDispatcherBody, CarriesJsonAsAValueAndBytesAsBase64) {
  storage::Entry json;
  json.message_id = "phone:7:42";  // device ids may hold ':'
  json.kind = storage::DataKind::kJson;
  json.data = R"( {"a": [1, 2]} )";
  json.sent_at_ms = 1'700'000'000'123;
  storage::Entry bytes;
  bytes.message_id = "tab:9";
  bytes.kind = storage::DataKind::kBinary;
  bytes.data = std::string("\x00\xff\x7b", 3);
  bytes.sent_at_ms = 5;
  EXPECT_EQ(WebhookDispatcher::batch_body("news", {json, bytes}),
            R"({"app":"news","messages":[)"
            R"({"id":"phone:7:42","device":"phone:7","received_at_ms":1700000000123,)"
            R"("data":{"a":[1,2]}},)"
            R"({"id":"tab:9","device":"tab","received_at_ms":5,"encoding":"base64",)"
            R"("data":"AP97"}]})");
}

TEST(WebhookDispatcherBackoff, DoublesUpToTheMaximumWithJitterInTheUpperHalf) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 100; ++i) {
    const auto first = WebhookDispatcher::backoff_delay(1, 500ms, 60s, random);
    EXPECT_GE(first, 250ms);
    EXPECT_LE(first, 500ms);
    const auto third = WebhookDispatcher::backoff_delay(3, 500ms, 60s, random);
    EXPECT_GE(third, 1000ms);
    EXPECT_LE(third, 2000ms);
    const auto late = WebhookDispatcher::backoff_delay(1000, 500ms, 60s, random);
    EXPECT_GE(late, 30s);
    EXPECT_LE(late, 60s);
  }
}

}  // namespace
}  // namespace herald::distribution
