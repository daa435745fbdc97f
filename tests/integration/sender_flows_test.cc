// What a business service does with the sender API, against a real heraldd and real devices
// (client library): rotate its key while it keeps sending, replace a message with a collapse key,
// retry a send with an Idempotency-Key, push to an alias.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "herald_server.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;
using boost::beast::http::verb;

constexpr auto kWait = 20s;

std::string messages_path(const TestApp& app) { return "/v1/apps/" + app.id + "/messages"; }

std::string body(json::object o) { return json::serialize(o); }

json::object to_device(const std::string& device, json::value data) {
  return {{"to", json::object{{"device", device}}}, {"data", std::move(data)}};
}

// ------------------------------------------------------------------------------- key rotation

// Senders that push in a loop with whatever key is current, counting what each key achieved.
class SendingFleet {
 public:
  SendingFleet(std::uint16_t http_port, std::string key, int senders)
      : key_(std::move(key)), accepted_(static_cast<std::size_t>(senders)) {
    for (int i = 0; i < senders; ++i) {
      threads_.emplace_back([this, http_port, i] { run(http_port, i); });
    }
  }
  ~SendingFleet() { stop(); }

  void use_key(const std::string& key) {
    std::lock_guard lock(mu_);
    key_ = key;
  }
  // Waits until every sender has had `n` more requests accepted with `key` since this call.
  bool wait_accepted_with(const std::string& key, int n) {
    std::unique_lock lock(mu_);
    std::vector<int> base;
    for (const auto& per_key : accepted_) base.push_back(per_key.count(key) ? per_key.at(key) : 0);
    return cv_.wait_for(lock, kWait, [&] {
      for (std::size_t i = 0; i < accepted_.size(); ++i) {
        const auto it = accepted_[i].find(key);
        if ((it == accepted_[i].end() ? 0 : it->second) < base[i] + n) return false;
      }
      return true;
    });
  }
  void stop() {
    stopping_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  [[nodiscard]] std::int64_t accepted() const { return total_accepted_; }
  [[nodiscard]] std::vector<int> failures() const {
    std::lock_guard lock(mu_);
    return failures_;
  }

 private:
  void run(std::uint16_t http_port, int index) {
    Sender sender(http_port);
    for (int n = 0; !stopping_; ++n) {
      std::string key;
      {
        std::lock_guard lock(mu_);
        key = key_;
      }
      const auto r = sender.post(messages_path(kNewsApp), key,
                                 body(to_device("rotating", json::object{{"n", n}})));
      std::lock_guard lock(mu_);
      if (r.accepted()) {
        ++accepted_[static_cast<std::size_t>(index)][key];
        ++total_accepted_;
      } else {
        failures_.push_back(r.status);
      }
      cv_.notify_all();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string key_;
  std::vector<std::map<std::string, int>> accepted_;  // per sender, per key
  std::vector<int> failures_;                         // HTTP status of every failed request
  std::atomic<std::int64_t> total_accepted_{0};
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

TEST(SenderFlows, KeyRotationUnderLoadFailsNoRequest) {
  HeraldServer server;
  Sender admin(server.http_port());
  const std::string token = server.admin_token();
  admin.register_device(kNewsApp, "rotating");
  const auto keys_path = "/v1/admin/apps/" + kNewsApp.id + "/keys";
  const auto old_keys = admin.call(verb::get, keys_path, token);
  ASSERT_EQ(old_keys.status, 200);
  ASSERT_EQ(old_keys.body.at("keys").as_array().size(), 1u);
  const std::string old_id(old_keys.body.at("keys").at(0).at("id").as_string());

  SendingFleet fleet(server.http_port(), kNewsApp.key, 4);
  ASSERT_TRUE(fleet.wait_accepted_with(kNewsApp.key, 20));

  // Step 1: a second key. Step 2: the old one revoked with a grace period; senders still on it
  // keep working while they move over.
  const auto added = admin.call(verb::post, keys_path, token, R"({"label":"2026-12"})");
  ASSERT_EQ(added.status, 201) << json::serialize(added.body);
  const std::string new_key(added.body.at("key").as_string());
  const auto graced = admin.call(verb::delete_, keys_path + "/" + old_id + "?grace_s=3600", token);
  ASSERT_EQ(graced.status, 200) << json::serialize(graced.body);
  ASSERT_TRUE(fleet.wait_accepted_with(kNewsApp.key, 20));  // in its grace period

  fleet.use_key(new_key);
  ASSERT_TRUE(fleet.wait_accepted_with(new_key, 5));  // every sender has moved over
  // Nobody uses the old key now: end its grace at once. It is refused from this moment.
  const auto revoked = admin.call(verb::delete_, keys_path + "/" + old_id + "?grace_s=0", token);
  ASSERT_EQ(revoked.status, 200) << json::serialize(revoked.body);
  EXPECT_EQ(
      admin.post(messages_path(kNewsApp), kNewsApp.key, body(to_device("rotating", 1))).status,
      401);
  ASSERT_TRUE(fleet.wait_accepted_with(new_key, 20));
  fleet.stop();

  EXPECT_EQ(fleet.failures(), std::vector<int>{});
  // Every accepted message is in the device's inbox, and nothing else.
  const auto device = admin.call(verb::get, "/v1/apps/news/devices/rotating", new_key);
  ASSERT_EQ(device.status, 200);
  EXPECT_EQ(device.body.at("streams").at(0).at("head_seq").as_int64(), fleet.accepted());
}

// ------------------------------------------------------------------------------- collapse key

TEST(SenderFlows, ACollapseKeyReplacesTheUndeliveredMessage) {
  HeraldServer server;
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "scoreboard");
  std::vector<std::string> ids;
  // Offline: three scores under one key, then a message without a key.
  for (const char* score : {"1-0", "2-0", "2-1"}) {
    auto m = to_device("scoreboard", json::object{{"score", score}});
    m["collapse_key"] = "match-17";
    const auto r = sender.post(messages_path(kNewsApp), kNewsApp.key, body(m));
    ASSERT_TRUE(r.accepted()) << r.status;
    ids.push_back(r.id());
  }
  const auto other =
      sender.post(messages_path(kNewsApp), kNewsApp.key, body(to_device("scoreboard", "news")));
  ASSERT_TRUE(other.accepted());

  TestDevice device(server, "scoreboard", token);
  auto& inbox = device.inbox();
  ASSERT_EQ(inbox.wait_for(2, kWait), 2u);
  // Delivered in order: the latest score (its place is where it was sent), then the other one.
  // Frames are in order and the pull is one batch, so a replaced score would have come first.
  const auto got = inbox.messages();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, ids[2]);
  EXPECT_EQ(json::parse(got[0].data).at("score"), "2-1");
  EXPECT_EQ(got[1].id, other.id());

  for (int i = 0; i < 2; ++i) {
    const auto status =
        sender.call(verb::get, messages_path(kNewsApp) + "/" + ids[i], kNewsApp.key);
    ASSERT_EQ(status.status, 200);
    EXPECT_EQ(status.body.at("targets").at(0).at("state"), "replaced");
  }

  // Once delivered, a message is not replaced: the next one under the key is a new message.
  auto later = to_device("scoreboard", json::object{{"score", "3-1"}});
  later["collapse_key"] = "match-17";
  const auto r = sender.post(messages_path(kNewsApp), kNewsApp.key, body(later));
  ASSERT_TRUE(r.accepted());
  ASSERT_EQ(inbox.wait_for(3, kWait), 3u);
  EXPECT_EQ(inbox.messages()[2].id, r.id());
}

// ---------------------------------------------------------------------------- idempotent retry

TEST(SenderFlows, RacingRetriesWithOneIdempotencyKeyCreateOneMessage) {
  HeraldServer server;
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "orders");
  TestDevice device(server, "orders", token);
  ASSERT_TRUE(device.wait_connected(kWait));

  // Eight clients retry the same request at once, as a sender whose first try timed out might.
  const std::string request = body(to_device("orders", json::object{{"order", 42}}));
  std::vector<std::string> ids(8);
  std::vector<int> replays(8, 0);
  std::vector<std::thread> clients;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    clients.emplace_back([&, i] {
      Sender mine(server.http_port());
      // 503 busy: the first request with this key is still being answered. A sender retries
      // with backoff, and so do these.
      for (int attempt = 0; attempt < 100 && ids[i].empty(); ++attempt) {
        const auto r = mine.call(verb::post, messages_path(kNewsApp), kNewsApp.key, request,
                                 {{"Idempotency-Key", "order-42"}});
        if (r.accepted()) {
          ids[i] = r.id();
        } else if (r.status != 503) {
          ADD_FAILURE() << "status " << r.status;
          return;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(5 << std::min(attempt, 5)));
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u);
  EXPECT_FALSE(ids[0].empty());

  // One message reached the device; a further retry is still answered with the same id.
  ASSERT_EQ(device.inbox().wait_for(1, kWait), 1u);
  const auto again = sender.call(verb::post, messages_path(kNewsApp), kNewsApp.key, request,
                                 {{"Idempotency-Key", "order-42"}});
  ASSERT_TRUE(again.accepted());
  EXPECT_EQ(again.id(), ids[0]);
  // A marker sent after everything else arrives right after the one message: no second copy.
  const auto marker =
      sender.post(messages_path(kNewsApp), kNewsApp.key, body(to_device("orders", "marker")));
  ASSERT_TRUE(marker.accepted());
  ASSERT_EQ(device.inbox().wait_for(2, kWait), 2u);
  const auto got = device.inbox().messages();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, ids[0]);
  EXPECT_EQ(got[1].id, marker.id());
}

// -------------------------------------------------------------------------------- alias fan-out

TEST(SenderFlows, AnAliasReachesEveryBoundDeviceOnlineOrNot) {
  HeraldServer server;
  Sender sender(server.http_port());
  std::map<std::string, std::string> tokens;
  for (const char* d : {"alice-phone", "alice-tablet", "alice-watch"}) {
    tokens[d] = sender.register_device(kNewsApp, d);
  }
  const auto alias_path = "/v1/apps/news/aliases/alice";
  const auto bound = sender.call(verb::put, alias_path, kNewsApp.key,
                                 R"({"devices":["alice-phone","alice-tablet","alice-watch"]})");
  ASSERT_EQ(bound.status, 200) << json::serialize(bound.body);

  TestDevice phone(server, "alice-phone", tokens["alice-phone"]);
  TestDevice tablet(server, "alice-tablet", tokens["alice-tablet"]);
  ASSERT_TRUE(phone.wait_connected(kWait));
  ASSERT_TRUE(tablet.wait_connected(kWait));

  json::object to_alice{{"to", json::object{{"alias", "alice"}}}, {"data", "first"}};
  const auto first = sender.post(messages_path(kNewsApp), kNewsApp.key, body(to_alice));
  ASSERT_TRUE(first.accepted());
  EXPECT_EQ(first.body.at("targets").as_array().size(), 3u);
  ASSERT_EQ(phone.inbox().wait_for(1, kWait), 1u);
  ASSERT_EQ(tablet.inbox().wait_for(1, kWait), 1u);

  // The watch was offline: it gets the message when it connects.
  TestDevice watch(server, "alice-watch", tokens["alice-watch"]);
  ASSERT_EQ(watch.inbox().wait_for(1, kWait), 1u);
  for (TestDevice* d : {&phone, &tablet, &watch})
    EXPECT_EQ(d->inbox().messages()[0].id, first.id());

  // Unbound, the tablet is no longer a target.
  ASSERT_EQ(
      sender.call(verb::delete_, std::string(alias_path) + "/devices/alice-tablet", kNewsApp.key)
          .status,
      200);
  to_alice["data"] = "second";
  const auto second = sender.post(messages_path(kNewsApp), kNewsApp.key, body(to_alice));
  ASSERT_TRUE(second.accepted());
  EXPECT_EQ(second.body.at("targets").as_array().size(), 2u);
  ASSERT_EQ(phone.inbox().wait_for(2, kWait), 2u);
  ASSERT_EQ(watch.inbox().wait_for(2, kWait), 2u);
  // The tablet's marker comes after anything it might wrongly have been sent.
  const auto marker =
      sender.post(messages_path(kNewsApp), kNewsApp.key, body(to_device("alice-tablet", "m")));
  ASSERT_TRUE(marker.accepted());
  ASSERT_EQ(tablet.inbox().wait_for(2, kWait), 2u);
  EXPECT_EQ(tablet.inbox().messages()[1].id, marker.id());
  // Exactly once everywhere.
  for (TestDevice* d : {&phone, &tablet, &watch}) {
    const auto got = d->inbox().messages();
    std::set<std::string> unique;
    for (const auto& m : got) unique.insert(m.id);
    EXPECT_EQ(unique.size(), got.size());
  }
}

}  // namespace
}  // namespace herald::testing
