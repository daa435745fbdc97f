// MessageScheduler over the real stack below it: MessageService and MessageTracker on RocksDB in
// a temporary directory, the local router. The clock is injected: a test moves time by setting
// it, and drives the scheduler one step at a time (async_fire_due), or runs its loop and waits
// for its steps (never for wall-clock time, except where the timer itself is under test).
#include "logic/message_scheduler.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "distribution/local_router.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::logic {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr std::int64_t kT0 = 1'800'000'000'000;
constexpr std::int64_t kMinute = 60'000;

MessageLimits test_limits() {
  MessageLimits limits;
  limits.max_payload_bytes = 64;
  limits.max_targets = 3;
  limits.default_ttl_s = 600;
  limits.max_ttl_s = 3600;
  return limits;
}

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class MessageSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    open();
    ASSERT_TRUE(storage_->devices().register_device("shop", "d1", kT0).value());
    ASSERT_TRUE(storage_->devices().register_device("shop", "d2", kT0).value());
    ASSERT_TRUE(storage_->devices().register_device("news", "d3", kT0).value());
  }

  void TearDown() override { close(); }

  // Opens the store (kept across close()/open(): a restart) and a scheduler over it.
  void open(SchedulerLimits limits = {}) {
    if (!storage_) {
      storage::RocksDbOptions options;
      options.path = dir_.db_path();
      options.env = env_;
      storage_ = storage::RocksDbStorage::open(options).value();
    }
    tracker_ = std::make_unique<MessageTracker>(storage_->streams(), storage_->records(),
                                                storage_->devices(), router_, clock());
    topics_ = std::make_unique<TopicService>(storage_->streams(), storage_->records(),
                                             storage_->devices(), apps_, router_, clock());
    service_ = std::make_unique<MessageService>(test_limits(), apps_, storage_->streams(),
                                                storage_->devices(), router_, ids_, *tracker_,
                                                *topics_, clock());
    scheduler_ = MessageScheduler::create(io_.get_executor(), limits, *service_, *tracker_,
                                          storage_->streams(), storage_->records(), ids_, clock());
  }

  // Everything down, the database closed, as a process exit would leave it.
  void close() {
    if (scheduler_) {
      scheduler_->stop();
      drain();
    }
    scheduler_.reset();
    service_.reset();
    topics_.reset();
    tracker_.reset();
    storage_.reset();
  }

  // Runs everything queued on io_ to completion (the scheduler's loop, if started, must have
  // been stopped).
  void drain() {
    io_.restart();
    io_.run();
  }

  Clock clock() {
    return [this] { return real_clock_ ? system_now_ms() : now_.load(); };
  }

  // Runs `op` on io_ to completion.
  template <class T>
  T run(asio::awaitable<T> op) {
    std::optional<T> out;
    std::exception_ptr failure;
    asio::co_spawn(io_, std::move(op), [&out, &failure](std::exception_ptr e, T r) {
      failure = e;
      if (!e) out = std::move(r);
    });
    drain();
    if (failure) std::rethrow_exception(failure);
    return std::move(*out);
  }

  // Runs io_ one handler at a time until `done()` holds (for the loop, which never runs out of
  // work). Fails the test after 30 s instead of hanging.
  void run_until(const std::function<bool()>& done) {
    io_.restart();
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "timed out";
        return;
      }
      io_.run_one_for(100ms);
    }
  }

  static SendRequest request(std::vector<std::string> devices, std::string data = "1",
                             std::optional<std::int64_t> ttl_s = std::nullopt,
                             std::string app = "shop") {
    SendRequest r;
    r.app = std::move(app);
    r.devices = std::move(devices);
    r.data = std::move(data);
    r.ttl_s = ttl_s;
    return r;
  }

  boost::system::result<ScheduleResult> schedule(SendRequest r, std::int64_t send_at_ms) {
    return run(scheduler_->async_schedule(std::move(r), send_at_ms));
  }

  // Schedules and expects success; returns the message id.
  std::string schedule_ok(SendRequest r, std::int64_t send_at_ms) {
    auto scheduled = schedule(std::move(r), send_at_ms);
    EXPECT_TRUE(scheduled) << scheduled.error().message();
    return scheduled ? scheduled->message_id : "";
  }

  boost::system::result<CancelOutcome> cancel(const std::string& id, std::string app = "shop") {
    return run(scheduler_->async_cancel(std::move(app), id));
  }

  FireStep fire_due() { return run(scheduler_->async_fire_due()); }

  // Starts async_schedule on io_ without running io_ (for tests that run the loop).
  void start_schedule(SendRequest r, std::int64_t send_at_ms,
                      std::optional<boost::system::result<ScheduleResult>>& out) {
    asio::co_spawn(io_, scheduler_->async_schedule(std::move(r), send_at_ms),
                   [&out](std::exception_ptr, boost::system::result<ScheduleResult> result) {
                     out = std::move(result);
                   });
  }

  std::vector<storage::Entry> inbox(const std::string& device) {
    const std::string key = MessageService::inbox_key(device);
    storage::ReadRequest read;
    read.stream = key;
    read.now_ms = clock()();
    return storage_->streams().read(read).value().entries;
  }

  std::uint64_t head(const std::string& device) {
    return storage_->streams().head(MessageService::inbox_key(device)).value().head_seq;
  }

  json::object status(const std::string& id, const std::string& app = "shop") {
    // A writer barrier first, as MessageTracker::async_status passes: stage records are queued
    // unsynced after a send and need not be written yet.
    EXPECT_FALSE(storage::testing::write_and_wait(storage_->streams(), storage::AppendBatch{}).ec);
    return status_as_written(id, app);
  }
  // The status from what is written now, without a barrier (which would wait for a held write).
  json::object status_as_written(const std::string& id, const std::string& app = "shop") {
    auto s = tracker_->status(app, id);
    EXPECT_TRUE(s) << s.error().message();
    return s ? *s : json::object{};
  }

  std::size_t sched_records() {
    return storage_->records().scan("sched/", {}, 1000, now_.load()).value().size();
  }

  std::atomic<std::int64_t> now_{kT0};
  bool real_clock_ = false;
  asio::io_context io_;
  storage::testing::TempDir dir_;
  storage::testing::WalSyncGate gate_;  // outlives the storage that syncs through it
  std::shared_ptr<::rocksdb::Env> env_;
  std::unique_ptr<storage::RocksDbStorage> storage_;
  AppRegistry apps_{{{"shop", {"shop-key"}}, {"news", {"news-key"}}}};
  distribution::LocalRouter router_;
  MessageIdGenerator ids_;
  std::unique_ptr<MessageTracker> tracker_;
  std::unique_ptr<TopicService> topics_;
  std::unique_ptr<MessageService> service_;
  std::shared_ptr<MessageScheduler> scheduler_;
};

// ------------------------------------------------------------------------------ when it fires

TEST_F(MessageSchedulerTest, FiresAtItsSendTimeAndNotBefore) {
  const std::int64_t due = kT0 + 10 * kMinute;
  const auto scheduled = schedule(request({"d1"}, R"({"n":1})", 60), due);
  ASSERT_TRUE(scheduled) << scheduled.error().message();
  EXPECT_EQ(scheduled->send_at_ms, due);
  EXPECT_EQ(scheduled->devices, std::vector<std::string>{"d1"});
  const std::string id = scheduled->message_id;
  auto s = status(id);
  EXPECT_EQ(s.at("state"), "scheduled");
  EXPECT_EQ(s.at("send_at_ms"), due);
  EXPECT_EQ(s.at("targets").at(0).at("state"), "scheduled");
  EXPECT_EQ(scheduler_->pending("shop"), 1u);

  now_ = due - 1;
  FireStep step = fire_due();
  EXPECT_EQ(step.fired, 0u);
  EXPECT_EQ(step.next_due_ms, due);
  EXPECT_EQ(head("d1"), 0u);
  EXPECT_EQ(status(id).at("state"), "scheduled");

  now_ = due;
  step = fire_due();
  EXPECT_EQ(step.fired, 1u);
  EXPECT_FALSE(step.next_due_ms.has_value());
  const auto entries = inbox("d1");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].message_id, id);
  EXPECT_EQ(entries[0].data, R"({"n":1})");
  EXPECT_EQ(entries[0].sent_at_ms, due);
  EXPECT_EQ(entries[0].expires_at_ms, due + 60'000);  // the TTL counts from the send time
  s = status(id);
  EXPECT_EQ(s.at("state"), "sent");
  EXPECT_EQ(s.at("send_at_ms"), due);
  EXPECT_EQ(s.at("created_at_ms"), kT0);
  EXPECT_EQ(s.at("targets").at(0).at("state"), "stored");
  EXPECT_EQ(scheduler_->pending(), 0u);
  EXPECT_EQ(sched_records(), 0u);

  now_ = due + kMinute;
  EXPECT_EQ(fire_due().fired, 0u);  // once only
  EXPECT_EQ(head("d1"), 1u);
}

TEST_F(MessageSchedulerTest, FiresSeveralInTheOrderOfTheirSendTimes) {
  // Scheduled out of order, for one device.
  schedule_ok(request({"d1"}, "3"), kT0 + 3 * kMinute);
  schedule_ok(request({"d1"}, "1"), kT0 + 1 * kMinute);
  schedule_ok(request({"d1", "d2"}, "2"), kT0 + 2 * kMinute);
  schedule_ok(request({"d1"}, "4"), kT0 + 4 * kMinute);

  now_ = kT0 + 1 * kMinute;
  EXPECT_EQ(fire_due().fired, 1u);
  ASSERT_EQ(inbox("d1").size(), 1u);
  EXPECT_EQ(inbox("d1")[0].data, "1");

  // Two overdue at once fire in one step, stored in due order.
  now_ = kT0 + 3 * kMinute;
  const FireStep step = fire_due();
  EXPECT_EQ(step.fired, 2u);
  EXPECT_EQ(step.next_due_ms, kT0 + 4 * kMinute);
  std::vector<std::string> data;
  for (const auto& e : inbox("d1")) data.push_back(e.data);
  EXPECT_EQ(data, (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(head("d2"), 1u);
  EXPECT_EQ(scheduler_->pending(), 1u);
}

TEST_F(MessageSchedulerTest, FiresInBoundedBatches) {
  close();
  open({.fire_batch = 2});
  for (int i = 0; i < 5; ++i) schedule_ok(request({"d1"}, std::to_string(i)), kT0 + kMinute + i);
  now_ = kT0 + 2 * kMinute;
  FireStep step = fire_due();
  EXPECT_EQ(step.fired, 2u);
  EXPECT_TRUE(step.more);
  step = fire_due();
  EXPECT_EQ(step.fired, 2u);
  step = fire_due();
  EXPECT_EQ(step.fired, 1u);
  EXPECT_FALSE(step.more);
  std::vector<std::string> data;
  for (const auto& e : inbox("d1")) data.push_back(e.data);
  EXPECT_EQ(data, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
}

// ------------------------------------------------------------------------------------ cancel

TEST_F(MessageSchedulerTest, ACancelledMessageIsNeverSent) {
  const std::int64_t due = kT0 + kMinute;
  const std::string id = schedule_ok(request({"d1", "d2"}), due);
  now_ = kT0 + 1000;
  auto outcome = cancel(id);
  ASSERT_TRUE(outcome) << outcome.error().message();
  EXPECT_EQ(*outcome, CancelOutcome::kCancelled);
  const auto s = status(id);
  EXPECT_EQ(s.at("state"), "cancelled");
  EXPECT_EQ(s.at("cancelled_at_ms"), kT0 + 1000);
  ASSERT_EQ(s.at("targets").as_array().size(), 2u);
  for (const auto& t : s.at("targets").as_array()) EXPECT_EQ(t.at("state"), "cancelled");
  EXPECT_EQ(s.at("totals").at("cancelled"), 2);
  EXPECT_EQ(scheduler_->pending(), 0u);
  EXPECT_EQ(sched_records(), 0u);

  now_ = due + kMinute;
  const FireStep step = fire_due();
  EXPECT_EQ(step.fired, 0u);
  EXPECT_EQ(head("d1"), 0u);
  EXPECT_EQ(head("d2"), 0u);
  // Cancelling again changes nothing and says the same.
  outcome = cancel(id);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, CancelOutcome::kCancelled);
  EXPECT_EQ(status(id).at("cancelled_at_ms"), kT0 + 1000);
}

TEST_F(MessageSchedulerTest, AMessageAlreadySentIsNotScheduledAnyMore) {
  const std::string id = schedule_ok(request({"d1"}), kT0 + kMinute);
  now_ = kT0 + kMinute;
  ASSERT_EQ(fire_due().fired, 1u);
  const auto outcome = cancel(id);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, CancelOutcome::kNotScheduled);
  EXPECT_EQ(status(id).at("state"), "sent");
  EXPECT_EQ(cancel("0123456789abcdef").error(), LogicError::kUnknownMessage);
}

// The exactly-once races: a fire and a cancel that both decided to write (each read the message
// as still scheduled) reach the writer one behind the other. The first one's write is held in
// its fsync while the second decides, so the second cannot have seen it.
class MessageSchedulerRaceTest : public MessageSchedulerTest {
 protected:
  void SetUp() override {
    env_ = storage::testing::gated_env(gate_);
    MessageSchedulerTest::SetUp();
  }
  // Lets `op` run on io_ until it waits for the writer, and the writer hold its write there.
  template <class T>
  void start_held(asio::awaitable<T> op, std::optional<T>& out) {
    asio::co_spawn(io_, std::move(op), [&out](std::exception_ptr e, T r) {
      if (!e) out = std::move(r);
    });
    io_.restart();
    io_.poll();
  }
};

TEST_F(MessageSchedulerRaceTest, ACancelDecidedWhileTheFireIsBeingWrittenFindsItSent) {
  const std::string id = schedule_ok(request({"d1"}), kT0 + kMinute);
  now_ = kT0 + kMinute;
  gate_.hold();
  std::optional<FireStep> step;
  start_held(scheduler_->async_fire_due(), step);
  ASSERT_TRUE(gate_.wait_until_blocked());  // the fire's write waits for its fsync
  std::optional<boost::system::result<CancelOutcome>> cancelled;
  start_held(scheduler_->async_cancel("shop", id), cancelled);
  EXPECT_EQ(status_as_written(id).at("state"), "scheduled");  // what the cancel saw
  gate_.release();
  drain();

  ASSERT_TRUE(step && cancelled && *cancelled);
  EXPECT_EQ(step->fired, 1u);
  EXPECT_EQ(**cancelled, CancelOutcome::kNotScheduled);  // sent: the API revokes it instead
  EXPECT_EQ(head("d1"), 1u);
  EXPECT_EQ(status(id).at("state"), "sent");
  EXPECT_EQ(scheduler_->pending(), 0u);
  EXPECT_EQ(scheduler_->metrics().cancelled_total.load(), 0u);
}

TEST_F(MessageSchedulerRaceTest, AFireDecidedWhileTheCancelIsBeingWrittenSendsNothing) {
  const std::string id = schedule_ok(request({"d1"}), kT0 + kMinute);
  now_ = kT0 + kMinute;
  gate_.hold();
  std::optional<boost::system::result<CancelOutcome>> cancelled;
  start_held(scheduler_->async_cancel("shop", id), cancelled);
  ASSERT_TRUE(gate_.wait_until_blocked());  // the cancel's write waits for its fsync
  std::optional<FireStep> step;
  start_held(scheduler_->async_fire_due(), step);
  gate_.release();
  drain();

  ASSERT_TRUE(step && cancelled && *cancelled);
  EXPECT_EQ(**cancelled, CancelOutcome::kCancelled);
  EXPECT_EQ(step->fired, 1u);  // it found the message settled
  EXPECT_EQ(scheduler_->metrics().fired_total.load(), 0u);
  EXPECT_EQ(head("d1"), 0u);
  EXPECT_EQ(status(id).at("state"), "cancelled");
  EXPECT_EQ(scheduler_->pending(), 0u);
  EXPECT_EQ(sched_records(), 0u);
}

TEST_F(MessageSchedulerRaceTest, TwoStepsFiringTheSameMessageStoreItOnce) {
  schedule_ok(request({"d1"}), kT0 + kMinute);
  now_ = kT0 + kMinute;
  gate_.hold();
  std::optional<FireStep> first;
  start_held(scheduler_->async_fire_due(), first);
  ASSERT_TRUE(gate_.wait_until_blocked());
  std::optional<FireStep> second;
  start_held(scheduler_->async_fire_due(), second);
  gate_.release();
  drain();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(head("d1"), 1u);
  EXPECT_EQ(scheduler_->metrics().fired_total.load(), 1u);
}

// ----------------------------------------------------------------------------------- restart

TEST_F(MessageSchedulerTest, ARestartPicksUpEveryPendingMessageAndFiresTheOverdueAtOnce) {
  const std::string early = schedule_ok(request({"d1"}, "early"), kT0 + kMinute);
  const std::string late = schedule_ok(request({"d1"}, "late"), kT0 + 10 * kMinute);
  schedule_ok(request({"d3"}, "news", std::nullopt, "news"), kT0 + 10 * kMinute);
  close();

  now_ = kT0 + 5 * kMinute;  // down while the first was due
  open();
  ASSERT_TRUE(scheduler_->recover());
  EXPECT_EQ(scheduler_->pending(), 3u);
  EXPECT_EQ(scheduler_->pending("shop"), 2u);
  EXPECT_EQ(status(early).at("state"), "scheduled");
  FireStep step = fire_due();
  EXPECT_EQ(step.fired, 1u);
  EXPECT_EQ(step.next_due_ms, kT0 + 10 * kMinute);
  ASSERT_EQ(inbox("d1").size(), 1u);
  EXPECT_EQ(inbox("d1")[0].data, "early");
  EXPECT_EQ(inbox("d1")[0].sent_at_ms, kT0 + 5 * kMinute);
  EXPECT_EQ(status(early).at("state"), "sent");

  now_ = kT0 + 10 * kMinute;
  step = fire_due();
  EXPECT_EQ(step.fired, 2u);
  EXPECT_EQ(head("d1"), 2u);
  EXPECT_EQ(head("d3"), 1u);
  EXPECT_EQ(status(late).at("state"), "sent");
  EXPECT_EQ(scheduler_->pending(), 0u);
}

TEST_F(MessageSchedulerTest, AMessageDueLongerAgoThanItsTtlIsDroppedAsExpired) {
  const std::int64_t due = kT0 + kMinute;
  const std::string id = schedule_ok(request({"d1"}, "1", 30), due);
  close();
  now_ = due + 31'000;  // the server was down for longer than the TTL
  open();
  ASSERT_TRUE(scheduler_->recover());
  EXPECT_EQ(fire_due().fired, 1u);
  EXPECT_EQ(head("d1"), 0u);
  const auto s = status(id);
  EXPECT_EQ(s.at("state"), "dropped");
  EXPECT_EQ(s.at("targets").at(0).at("state"), "dropped");
  EXPECT_EQ(s.at("targets").at(0).at("dropped_reason"), "expired");
  EXPECT_EQ(scheduler_->pending(), 0u);
}

// ------------------------------------------------------------------ devices that went away

TEST_F(MessageSchedulerTest, ADeviceUnregisteredBeforeTheSendTimeIsDroppedAndTheOthersGetIt) {
  const std::string id = schedule_ok(request({"d1", "d2"}), kT0 + kMinute);
  ASSERT_TRUE(storage_->devices().unregister_device("shop", "d2").value());
  now_ = kT0 + kMinute;
  EXPECT_EQ(fire_due().fired, 1u);
  EXPECT_EQ(head("d1"), 1u);
  EXPECT_EQ(head("d2"), 0u);
  const auto s = status(id);
  EXPECT_EQ(s.at("state"), "sent");
  json::object by_device;
  for (const auto& t : s.at("targets").as_array()) {
    by_device[t.at("device").as_string()] = t;
  }
  EXPECT_EQ(by_device.at("d1").at("state"), "stored");
  EXPECT_EQ(by_device.at("d2").at("state"), "dropped");
  EXPECT_EQ(by_device.at("d2").at("dropped_reason"), "unregistered");
  EXPECT_EQ(s.at("totals"), json::parse(R"({"dropped": 1, "stored": 1})"));
}

TEST_F(MessageSchedulerTest, AMessageWhoseDevicesAreAllGoneEndsDroppedAndTheLoopGoesOn) {
  const std::string gone = schedule_ok(request({"d2"}), kT0 + kMinute);
  const std::string next = schedule_ok(request({"d1"}), kT0 + kMinute + 1);
  ASSERT_TRUE(storage_->devices().unregister_device("shop", "d2").value());
  now_ = kT0 + 2 * kMinute;
  const FireStep step = fire_due();
  EXPECT_EQ(step.fired, 2u);
  EXPECT_EQ(step.retried, 0u);
  EXPECT_EQ(status(gone).at("state"), "dropped");
  EXPECT_EQ(status(gone).at("targets").at(0).at("dropped_reason"), "unregistered");
  EXPECT_EQ(status(next).at("state"), "sent");
  EXPECT_EQ(sched_records(), 0u);
  EXPECT_EQ(scheduler_->pending(), 0u);
}

// ------------------------------------------------------------------- refused: nothing stored

TEST_F(MessageSchedulerTest, OverTheLimitsIsRefusedAndStoresNothing) {
  close();
  open({.max_pending_per_app = 2, .max_pending_total = 3});
  const std::string first = schedule_ok(request({"d1"}), kT0 + kMinute);
  schedule_ok(request({"d1"}), kT0 + kMinute);
  EXPECT_EQ(schedule(request({"d1"}), kT0 + kMinute).error(), LogicError::kTooManyScheduled);
  schedule_ok(request({"d3"}, "1", std::nullopt, "news"), kT0 + kMinute);
  // The app is under its own limit, the node is at its total.
  EXPECT_EQ(schedule(request({"d3"}, "1", std::nullopt, "news"), kT0 + kMinute).error(),
            LogicError::kTooManyScheduled);
  EXPECT_EQ(sched_records(), 3u);
  EXPECT_EQ(scheduler_->pending(), 3u);

  // A slot comes back when a message is cancelled (or sent).
  ASSERT_EQ(cancel(first).value(), CancelOutcome::kCancelled);
  schedule_ok(request({"d1"}), kT0 + kMinute);
  EXPECT_EQ(scheduler_->pending("shop"), 2u);
}

TEST_F(MessageSchedulerTest, ASendTimeBeyondTheHorizonOrNegativeIsRefusedAndStoresNothing) {
  const std::int64_t horizon = scheduler_->limits().max_horizon_ms;
  EXPECT_EQ(schedule(request({"d1"}), kT0 + horizon + 1).error(), LogicError::kBadSendAt);
  EXPECT_EQ(schedule(request({"d1"}), -1).error(), LogicError::kBadSendAt);
  EXPECT_EQ(sched_records(), 0u);
  EXPECT_EQ(scheduler_->pending(), 0u);
  schedule_ok(request({"d1"}), kT0 + horizon);  // the horizon itself is allowed
}

TEST_F(MessageSchedulerTest, IsValidatedAsAnImmediateSendAndStoresNothingOnError) {
  EXPECT_EQ(schedule(request({"d1", "nope"}), kT0 + kMinute).error(), LogicError::kUnknownDevice);
  EXPECT_EQ(schedule(request({"d3"}), kT0 + kMinute).error(), LogicError::kUnknownDevice);
  EXPECT_EQ(schedule(request({"d1"}, std::string(65, 'x')), kT0 + kMinute).error(),
            LogicError::kPayloadTooLarge);
  EXPECT_EQ(schedule(request({"d1"}, "1", 3601), kT0 + kMinute).error(), LogicError::kBadTtl);
  EXPECT_EQ(schedule(request({"d1", "d2", "d1"}, "1"), kT0 + kMinute).value().devices,
            (std::vector<std::string>{"d1", "d2"}));  // duplicates removed, as in a send
  EXPECT_EQ(schedule(request({"d1", "d2", "x", "y"}), kT0 + kMinute).error(),
            LogicError::kTooManyTargets);
  EXPECT_EQ(schedule(request({"d1"}, "1", std::nullopt, "nosuch"), kT0 + kMinute).error(),
            LogicError::kUnknownApp);
  EXPECT_EQ(sched_records(), 1u);  // the one that was valid
}

// Remembers the priority of each notify it is handed.
struct PriorityLink final : distribution::DeviceLink {
  std::vector<distribution::NotifyPriority> priorities;
  void notify(std::uint64_t, std::uint64_t, distribution::NotifyPriority priority) override {
    priorities.push_back(priority);
  }
  void supersede() override {}
  void refresh_streams() override {}
};

TEST_F(MessageSchedulerTest, BinaryDataAndOptionsSurviveTheRecordUnchanged) {
  SendRequest r = request({"d1"}, std::string("\x00\xff\x01 bytes", 9), 120);
  r.kind = storage::DataKind::kBinary;
  r.collapse_key = "score";
  r.priority = distribution::NotifyPriority::kNormal;
  schedule_ok(std::move(r), kT0 + kMinute);
  close();
  open();
  now_ = kT0 + kMinute;
  const auto link = std::make_shared<PriorityLink>();
  router_.attach("d1", link);
  ASSERT_EQ(fire_due().fired, 1u);
  EXPECT_EQ(link->priorities, std::vector{distribution::NotifyPriority::kNormal});
  const auto entries = inbox("d1");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].kind, storage::DataKind::kBinary);
  EXPECT_EQ(entries[0].data, std::string("\x00\xff\x01 bytes", 9));
  EXPECT_EQ(entries[0].expires_at_ms, kT0 + kMinute + 120'000);
}

// ---------------------------------------------------------------------------------- the loop

TEST_F(MessageSchedulerTest, TheLoopWakesForAMessageDueSoonerThanTheOneItSleepsFor) {
  ASSERT_TRUE(scheduler_->recover());
  scheduler_->start();
  const auto& m = scheduler_->metrics();
  run_until([&] { return m.steps_total >= 1; });  // nothing scheduled: sleeps until woken

  std::optional<boost::system::result<ScheduleResult>> later;
  start_schedule(request({"d1"}, "later"), kT0 + 60 * kMinute, later);
  // Woken by it, the loop scans again and sleeps until it is due (a minute of steady time).
  run_until([&] { return later.has_value() && m.steps_total >= 2; });
  EXPECT_EQ(head("d1"), 0u);

  now_ = kT0 + kMinute;
  std::optional<boost::system::result<ScheduleResult>> sooner;
  start_schedule(request({"d1"}, "sooner"), now_.load(), sooner);
  run_until([&] { return m.fired_total >= 1; });
  ASSERT_EQ(inbox("d1").size(), 1u);
  EXPECT_EQ(inbox("d1")[0].data, "sooner");

  // The clock reaches the later one; wake() stands for the timer, which sleeps in real time.
  now_ = kT0 + 60 * kMinute;
  scheduler_->wake();
  run_until([&] { return m.fired_total >= 2; });
  EXPECT_EQ(head("d1"), 2u);
  ASSERT_FALSE(inbox("d1").empty());  // "sooner" expired meanwhile (its TTL is 10 minutes)
  EXPECT_EQ(inbox("d1").back().data, "later");
}

TEST_F(MessageSchedulerTest, TheLoopFiresWhenItsTimerExpires) {
  // The one test on the real clock: what is under test is the timer that sleeps until then.
  real_clock_ = true;
  ASSERT_TRUE(scheduler_->recover());
  scheduler_->start();
  const std::int64_t due = system_now_ms() + 50;
  std::optional<boost::system::result<ScheduleResult>> scheduled;
  start_schedule(request({"d1"}), due, scheduled);
  run_until([&] { return scheduler_->metrics().fired_total >= 1; });
  ASSERT_TRUE(scheduled && *scheduled);
  const auto entries = inbox("d1");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].message_id, (*scheduled)->message_id);
  EXPECT_GE(entries[0].sent_at_ms, due);
}

TEST_F(MessageSchedulerTest, StopEndsTheLoop) {
  scheduler_->start();
  run_until([&] { return scheduler_->metrics().steps_total >= 1; });
  scheduler_->stop();
  drain();  // returns only once the loop's coroutine has ended
  SUCCEED();
}

}  // namespace
}  // namespace herald::logic
