// Named crash points (src/common/crash_point.h, docs/crash-testing.md) against a real heraldd:
// armed with one, heraldd dies by SIGKILL at exactly that line in the middle of a push load;
// restarted unarmed on the same data and ports, it must have lost nothing it acknowledged, and
// the devices (the real client library on file cursor stores) must get every message once, with
// no seq reused and no gap, as the DeliveryChecker sees it. The upstream point is checked on the
// upstream path: each message stored once, completed once, and handed to the backend.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "captured_run.h"
#include "checked_device.h"
#include "delivery_checker.h"
#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "sender.h"
#include "test_device.h"
#include "webhook_receiver.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 30s;
constexpr int kDevices = 3;
constexpr int kMessages = 30;
// How long a careful sender keeps retrying one message: past a restart of heraldd (about a
// second here).
constexpr auto kGiveUp = 10s;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

enum class Load {
  kImmediate,  // messages sent one after another, each until answered (idempotency keys)
  kScheduled,  // messages scheduled a moment ahead, all accepted before the first fires
};

struct CrashCase {
  std::string point;
  int hit = 1;  // the hit that kills
  Load load = Load::kImmediate;
};

std::string case_name(const ::testing::TestParamInfo<CrashCase>& info) { return info.param.point; }

// How CTest and gtest name a case: "after_store_write:10".
void PrintTo(const CrashCase& c, std::ostream* out) { *out << c.point << ":" << c.hit; }

class CrashPointTest : public ::testing::TestWithParam<CrashCase> {
 protected:
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  std::filesystem::path dir_ = make_temp_dir("herald-crash-point");
};

TEST_P(CrashPointTest, HeralddKilledThereLosesDuplicatesAndReusesNothing) {
  const CrashCase& c = GetParam();
  HeraldServer server({}, {"HERALD_CRASH_POINT=" + c.point + ":" + std::to_string(c.hit)});
  Sender sender(server.http_port());
  DeliveryChecker checker;
  EventLoop loop;
  std::vector<std::string> ids;
  std::vector<std::unique_ptr<CheckedDevice>> devices;
  for (int i = 0; i < kDevices; ++i) {
    ids.push_back("crash-" + std::to_string(i));
    const std::string token = sender.register_device(kNewsApp, ids.back());
    devices.push_back(
        std::make_unique<CheckedDevice>(loop, server, ids.back(), token, dir_, checker));
  }
  for (auto& d : devices) ASSERT_TRUE(d->wait_connected(kWait));

  // The load runs beside the wait for heraldd's death, and goes on after the restart: a careful
  // sender retries with its idempotency key while heraldd is down. Joined before the checks (or
  // stopped at the next message when the test fails first).
  std::jthread load([&](std::stop_token stop) {
    Sender careful(server.http_port());
    const std::int64_t send_at = c.load == Load::kScheduled ? now_ms() + 1'500 : 0;
    for (int i = 0; i < kMessages && !stop.stop_requested(); ++i) {
      const std::string& device = ids[static_cast<std::size_t>(i) % ids.size()];
      const std::string key = c.point + "-" + std::to_string(i);
      // Scheduled messages take no idempotency key; they are all accepted before heraldd dies.
      const PushOutcome answer =
          c.load == Load::kScheduled
              ? careful.post("/v1/apps/" + kNewsApp.id + "/messages", kNewsApp.key,
                             checked_message_body(device, key, send_at))
              : careful.post_message_until_answered(kNewsApp, checked_message_body(device, key),
                                                    key, 20ms, kGiveUp);
      checker.record_send(send_record(key, {device}, answer));
    }
  });

  const std::optional<int> status = server.wait_exit(kWait);
  ASSERT_TRUE(status) << "heraldd did not reach " << c.point << " " << c.hit << " times";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
      << "heraldd ended otherwise than killed at the point: status " << *status;
  server.set_environment({});
  server.restart();
  load.join();

  // A last message per device, sent after everything else: delivery is in order per device, so
  // once it arrived everything stored before it for that device did.
  for (const auto& device : ids) {
    const std::string fence = "fence-" + device;
    const PushOutcome answer = sender.post_message_until_answered(
        kNewsApp, checked_message_body(device, fence), fence, 20ms, kGiveUp);
    ASSERT_TRUE(answer.accepted()) << answer.status;
    checker.record_send(send_record(fence, {device}, answer));
  }
  for (const auto& device : ids) {
    ASSERT_TRUE(checker.wait_for(device, "fence-" + device, kWait)) << device << " never drained";
  }

  const DeliveryReport report = checker.check();
  std::cout << c.point << ":" << c.hit << "\n" << report.summary();
  EXPECT_TRUE(report.ok()) << report.summary();
  // A process crash loses nothing acknowledged, so no stream needed a new epoch either.
  EXPECT_EQ(report.gaps, 0u) << report.summary();
  EXPECT_EQ(report.acknowledged + report.unknown + report.refused,
            static_cast<std::size_t>(kMessages + kDevices));
}

// Each point at a hit in the middle of the load: registrations answer kDevices requests over HTTP
// before it starts, and each device pulls its inbox once when it connects.
INSTANTIATE_TEST_SUITE_P(EveryPoint, CrashPointTest,
                         ::testing::Values(CrashCase{"after_group_write", 10},
                                           CrashCase{"after_store_write", 10},
                                           CrashCase{"after_notify_sent", 10},
                                           CrashCase{"after_http_answer", kDevices + 10},
                                           CrashCase{"after_pull_reply", kDevices + 10},
                                           CrashCase{"after_ack", 8},
                                           CrashCase{"after_scheduled_fire", 10, Load::kScheduled}),
                         case_name);

// The upstream path's point: a device's Upstream stored, heraldd killed before its UpstreamAck.
// The client sends it again with the same id after the restart; it is stored once, every message
// completes kStored exactly once, and the backend gets each id (at least once, as documented).
TEST(CrashPoint, UpstreamStoredButNotAcknowledgedIsStoredOnceAndCompletesOnce) {
  constexpr std::uint64_t kUpstreams = 12;
  const auto port = WebhookReceiver::pick_port();
  HeraldServer server(
      {"--apps.news.webhook_url=http://127.0.0.1:" + std::to_string(port) + "/hooks/herald",
       "--upstream.retry_initial_ms=20", "--upstream.retry_max_ms=200"},
      {"HERALD_CRASH_POINT=after_upstream_store:5"});
  std::string secret;
  std::getline(std::ifstream(server.data_dir() / "webhook_secret.news"), secret);
  WebhookReceiver backend(secret, port);
  backend.up();
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "phone-up");

  EventLoop loop;
  StateLog states;
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::uint64_t, std::vector<UpstreamStatus>> results;  // by id, each completion
  Client client(loop, device_options(server, "phone-up", token), make_memory_cursor_store());
  client.on_state(states.handler());
  client.start();
  ASSERT_TRUE(states.wait_connected(kWait));
  std::vector<std::uint64_t> ids;
  for (std::uint64_t n = 1; n <= kUpstreams; ++n) {
    ids.push_back(client.send_upstream(kNewsApp.id, R"({"n":)" + std::to_string(n) + "}", false,
                                       [&](const UpstreamResult& r) {
                                         std::lock_guard lock(mu);
                                         results[r.id].push_back(r.status);
                                         cv.notify_all();
                                       }));
  }
  const std::optional<int> status = server.wait_exit(kWait);
  ASSERT_TRUE(status) << "heraldd never reached after_upstream_store 5 times";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << *status;
  server.set_environment({});
  server.restart();

  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return results.size() == kUpstreams; }))
        << results.size() << " of " << kUpstreams << " completed";
    for (const auto id : ids) {
      EXPECT_EQ(results[id], std::vector<UpstreamStatus>{UpstreamStatus::kStored}) << id;
    }
  }
  ASSERT_EQ(backend.wait_for_distinct(kUpstreams, kWait), kUpstreams);
  EXPECT_TRUE(backend.rejected().empty());
  std::set<std::string> data;
  for (const auto& m : backend.messages()) data.insert(m.data);
  EXPECT_EQ(data.size(), kUpstreams);  // one message per id: never stored twice under two ids
  client.stop();
}

// Found by the crash points: the idempotency record is written with the message and completed
// with the answer after it, unsynced. Killed between the two, heraldd answered every retry with
// that key 503 for the key's 24 hours. The record now names the message, and the answer is
// rebuilt from its status (src/http/sender_api.cc, async_replay).
TEST(CrashPoint, RetryOfAMessageStoredJustBeforeTheKillGetsItsFirstAnswer) {
  HeraldServer server({}, {"HERALD_CRASH_POINT=after_store_write"});
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "phone-1");
  const std::string body = checked_message_body("phone-1", "once");
  const PushOutcome first =
      sender.call(boost::beast::http::verb::post, "/v1/apps/" + kNewsApp.id + "/messages",
                  kNewsApp.key, body, {{"Idempotency-Key", "once"}});
  EXPECT_EQ(first.status, 0);  // killed before it answered
  ASSERT_TRUE(server.wait_exit(kWait));
  server.set_environment({});
  server.restart();
  const PushOutcome retry =
      sender.call(boost::beast::http::verb::post, "/v1/apps/" + kNewsApp.id + "/messages",
                  kNewsApp.key, body, {{"Idempotency-Key", "once"}});
  ASSERT_EQ(retry.status, 200) << boost::json::serialize(retry.body);
  EXPECT_EQ(retry.body.at("targets").at(0).at("device"), "phone-1");
  // No epoch or seq: the kill came before the target's stored stage was recorded (unsynced,
  // after the answer); the answer says what the message's status knows.
  EXPECT_FALSE(retry.body.at("targets").at(0).as_object().contains("online"));
  // The device gets the message once.
  TestDevice device(server, "phone-1", token);
  ASSERT_EQ(device.inbox().wait_for(1, kWait), 1u);
  EXPECT_EQ(device.inbox().messages().at(0).id, std::string(retry.body.at("id").as_string()));
}

TEST(CrashPoint, UnknownNameFailsStartUpNamingTheKnownOnes) {
  const auto dir = make_temp_dir("herald-crash-point-typo");
  const CapturedRun run = run_captured(
      {bin_path("heraldd").string(), "--data_dir=" + (dir / "data").string(),
       "--access.listen=127.0.0.1:0", "--http.listen=127.0.0.1:0", "--app=news:" + kNewsApp.key},
      {"HERALD_CRASH_POINT=after_stroe_write"}, kWait);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("unknown crash point 'after_stroe_write'"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("after_store_write"), std::string::npos) << run.err;
}

TEST(CrashPoint, HitCountThatIsNotANumberFailsStartUp) {
  const auto dir = make_temp_dir("herald-crash-point-count");
  const CapturedRun run = run_captured(
      {bin_path("heraldd").string(), "--data_dir=" + (dir / "data").string(),
       "--access.listen=127.0.0.1:0", "--http.listen=127.0.0.1:0", "--app=news:" + kNewsApp.key},
      {"HERALD_CRASH_POINT=after_ack:0"}, kWait);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("is not a number from 1"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace herald::testing
