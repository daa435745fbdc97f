// What each command sends and prints, checked against docs/api/openapi.yaml without a server:
// this is where output is compared byte for byte.
#include "cli/command.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace herald::cli {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

const Command& command(std::string_view name) {
  for (const Command& c : commands()) {
    if (c.name() == name) return c;
  }
  throw std::logic_error("no command " + std::string(name));
}

Call build(std::string_view name, std::vector<std::string_view> args) {
  return command(name).build(Args::parse(args));
}

std::string rendered(std::string_view name, std::string_view body) {
  std::ostringstream out;
  command(name).render(json::parse(body), out);
  return out.str();
}

TEST(Commands, EveryCommandHasWhatHelpAndDispatchNeed) {
  std::vector<std::string> names;
  for (const Command& c : commands()) {
    EXPECT_FALSE(c.summary.empty()) << c.name();
    EXPECT_FALSE(c.route.empty()) << c.name();
    EXPECT_NE(c.build, nullptr) << c.name();
    EXPECT_NE(c.render, nullptr) << c.name();
    for (const auto flag : c.flags) {
      ASSERT_NE(find_flag(flag), nullptr) << c.name() << " --" << flag;
      EXPECT_FALSE(find_flag(flag)->global) << c.name() << " --" << flag;
    }
    names.push_back(c.name());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
}

TEST(Commands, PushSendsEveryFieldTheContractNames) {
  const Call call =
      build("push", {"--app", "news", "--device", "d1", "--device", "d2", "--data", R"({"a":1})",
                     "--ttl", "0", "--collapse-key", "score", "--priority", "high", "--send-at",
                     "1714564800000", "--idempotency-key", "order-7"});
  EXPECT_EQ(call.verb, bhttp::verb::post);
  EXPECT_EQ(call.target, "/v1/apps/news/messages");
  EXPECT_EQ(*call.body, json::parse(R"({"to": {"devices": ["d1", "d2"]}, "data": {"a": 1},
      "ttl_s": 0, "collapse_key": "score", "priority": "high", "send_at_ms": 1714564800000})"));
  EXPECT_EQ(call.headers,
            (std::vector<std::pair<std::string, std::string>>{{"Idempotency-Key", "order-7"}}));
}

TEST(Commands, PushNamesOneDeviceOrAnAliasAndBase64Data) {
  EXPECT_EQ(*build("push", {"--app", "a", "--device", "d", "--data-base64", "AA=="}).body,
            json::parse(R"({"to": {"device": "d"}, "data": "AA==", "encoding": "base64"})"));
  EXPECT_EQ(build("push", {"--app", "a", "--alias", "u", "--data", "1"}).body->at("to"),
            json::parse(R"({"alias": "u"})"));
}

TEST(Commands, MessageGetAndRevokeCallTheMessagesRoute) {
  const Call get = build("message get", {"--app", "news", "--id", "0123456789abcdef"});
  EXPECT_EQ(get.verb, bhttp::verb::get);
  EXPECT_EQ(get.target, "/v1/apps/news/messages/0123456789abcdef");
  EXPECT_FALSE(get.body.has_value());
  const Call revoke = build("message revoke", {"--app", "news", "--id", "0123456789abcdef"});
  EXPECT_EQ(revoke.verb, bhttp::verb::delete_);
  EXPECT_EQ(revoke.target, get.target);
}

TEST(Commands, IdsInAPathStayOneSegment) {
  EXPECT_EQ(build("device get", {"--app", "a/b", "--device", "../x?y"}).target,
            "/v1/apps/a%2Fb/devices/..%2Fx%3Fy");
}

TEST(Commands, AdminKeyRevokeSendsTheGraceAsAQuery) {
  EXPECT_EQ(build("admin key revoke", {"--app", "a", "--key-id", "k1", "--grace", "60"}).target,
            "/v1/admin/apps/a/keys/k1?grace_s=60");
  EXPECT_EQ(build("admin key revoke", {"--app", "a", "--key-id", "k1"}).target,
            "/v1/admin/apps/a/keys/k1");
}

TEST(Commands, AdminAppSetSendsOnlyWhatIsGiven) {
  EXPECT_EQ(*build("admin app set", {"--app", "a", "--requests-per-s", "10", "--no-webhook"}).body,
            json::parse(R"({"rate_limits": {"requests_per_s": 10}, "webhook": null})"));
  EXPECT_EQ(*build("admin app disable", {"--app", "a"}).body, json::parse(R"({"disabled": true})"));
  EXPECT_FALSE(build("admin key add", {"--app", "a"}).body.has_value());
}

TEST(Commands, MessageStatusPrintsEachStageSinceTheMessageWasCreated) {
  const std::string out = rendered("message get", R"({
      "id": "0123456789abcdef", "state": "sent", "created_at_ms": 1714564800000,
      "targets": [
        {"device": "phone-1", "epoch": 7, "seq": 3, "state": "acked",
         "stored_at_ms": 1714564800002, "notified_at_ms": 1714564800005,
         "delivered_at_ms": 1714564800040, "acked_at_ms": 1714564801500},
        {"device": "tab-2", "epoch": 9, "seq": 1, "state": "stored",
         "stored_at_ms": 1714564800003}],
      "totals": {"acked": 1, "stored": 1}})");
  EXPECT_EQ(out,
            "id       0123456789abcdef\n"
            "state    sent\n"
            "created  2024-05-01T12:00:00.000Z\n"
            "totals   acked 1, stored 1\n"
            "\n"
            "DEVICE   EPOCH  SEQ  STATE   STORED  NOTIFIED  DELIVERED  ACKED\n"
            "phone-1  7      3    acked   +2ms    +5ms      +40ms      +1.5s\n"
            "tab-2    9      1    stored  +3ms    -         -          -\n");
}

TEST(Commands, MessageStatusOfAScheduledMessageHasNoStageColumns) {
  const std::string out = rendered("message get", R"({
      "id": "0123456789abcdef", "state": "scheduled", "created_at_ms": 1714564800000,
      "send_at_ms": 1714568400000, "expires_at_ms": 1715173200000,
      "targets": [{"device": "phone-1", "state": "scheduled"}],
      "totals": {"scheduled": 1}})");
  EXPECT_EQ(out,
            "id       0123456789abcdef\n"
            "state    scheduled\n"
            "created  2024-05-01T12:00:00.000Z\n"
            "send at  2024-05-01T13:00:00.000Z\n"
            "expires  2024-05-08T13:00:00.000Z\n"
            "totals   scheduled 1\n"
            "\n"
            "DEVICE   EPOCH  SEQ  STATE\n"
            "phone-1  -      -    scheduled\n");
}

TEST(Commands, MessageStatusShowsWhenItWasCancelledAndWhyATargetWasDropped) {
  std::string out = rendered("message revoke", R"({
      "id": "0123456789abcdef", "state": "cancelled", "created_at_ms": 1714564800000,
      "send_at_ms": 1714568400000, "cancelled_at_ms": 1714564802000,
      "targets": [{"device": "phone-1", "state": "cancelled", "cancelled_at_ms": 1714564802000}],
      "totals": {"cancelled": 1}})");
  EXPECT_EQ(out,
            "id         0123456789abcdef\n"
            "state      cancelled\n"
            "created    2024-05-01T12:00:00.000Z\n"
            "send at    2024-05-01T13:00:00.000Z\n"
            "cancelled  2024-05-01T12:00:02.000Z\n"
            "totals     cancelled 1\n"
            "\n"
            "DEVICE   EPOCH  SEQ  STATE      CANCELLED\n"
            "phone-1  -      -    cancelled  +2.0s\n");
  out = rendered("message get", R"({
      "id": "0123456789abcdef", "state": "sent", "created_at_ms": 1714564800000,
      "send_at_ms": 1714568400000,
      "targets": [{"device": "phone-1", "epoch": 7, "seq": 3, "state": "stored",
                   "stored_at_ms": 1714568400001},
                  {"device": "tab-2", "state": "dropped", "dropped_reason": "unregistered"}],
      "totals": {"dropped": 1, "stored": 1}})");
  EXPECT_EQ(out,
            "id       0123456789abcdef\n"
            "state    sent\n"
            "created  2024-05-01T12:00:00.000Z\n"
            "send at  2024-05-01T13:00:00.000Z\n"
            "totals   dropped 1, stored 1\n"
            "\n"
            "DEVICE   EPOCH  SEQ  STATE    STORED  NOTIFIED  DELIVERED  ACKED  DROPPED\n"
            "phone-1  7      3    stored   +1h00m  -         -          -      -\n"
            "tab-2    -      -    dropped  -       -         -          -      unregistered\n");
}

TEST(Commands, PushPrintsAScheduledMessageAndDroppedTargets) {
  const std::string out = rendered("push", R"({"id": "0123456789abcdef", "state": "scheduled",
      "send_at_ms": 1714564800000, "targets": [{"device": "d1", "dropped": true}]})");
  EXPECT_EQ(out,
            "id       0123456789abcdef\n"
            "state    scheduled\n"
            "send at  2024-05-01T12:00:00.000Z\n"
            "\n"
            "DEVICE  EPOCH  SEQ  ONLINE  DROPPED\n"
            "d1      -      -    -       yes\n");
}

TEST(Commands, AdminDeviceGetPrintsTheDeviceItsAppsAndItsInbox) {
  EXPECT_EQ(build("admin device get", {"--device", "../x?y"}).target,
            "/v1/admin/devices/..%2Fx%3Fy");
  EXPECT_EQ(rendered("admin device get", R"({"device": "phone-1", "online": true,
      "node": "edge-3", "last_seen_ms": 1714564800000,
      "apps": [{"app": "chat", "registered_at_ms": 1714564700000},
               {"app": "news", "registered_at_ms": 1714564800000}],
      "streams": [{"stream": "inbox", "epoch": 7, "head_seq": 12, "acked_seq": 10,
                   "acked_at_ms": 1714564799000}]})"),
            "device     phone-1\n"
            "online     yes\n"
            "node       edge-3\n"
            "last seen  2024-05-01T12:00:00.000Z\n"
            "\n"
            "APP   REGISTERED\n"
            "chat  2024-05-01T11:58:20.000Z\n"
            "news  2024-05-01T12:00:00.000Z\n"
            "\n"
            "STREAM  EPOCH  HEAD_SEQ  ACKED_SEQ  ACKED_AT\n"
            "inbox   7      12        10         2024-05-01T11:59:59.000Z\n");
  EXPECT_EQ(rendered("admin device get", R"({"device": "phone-1", "online": false, "apps": [],
      "streams": [{"stream": "inbox", "epoch": 0, "head_seq": 0}]})"),
            "device     phone-1\n"
            "online     no\n"
            "node       -\n"
            "last seen  -\n"
            "apps       -\n"
            "\n"
            "STREAM  EPOCH  HEAD_SEQ  ACKED_SEQ  ACKED_AT\n"
            "inbox   0      0         -          -\n");
}

}  // namespace
}  // namespace herald::cli
