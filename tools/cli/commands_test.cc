// What each command sends and prints, checked against docs/api/openapi.yaml without a server:
// this is where output is compared byte for byte.
#include "cli/command.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>

#include "cli/run.h"
#include "http/http_server.h"
#include "tls/testing/test_certificates.h"
#include "tls/tls_context.h"

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

TEST(Commands, PushToATopicAConditionOrEveryDeviceSendsTheSharedTarget) {
  EXPECT_EQ(
      *build("push", {"--app", "a", "--topic", "sports", "--data", "1", "--spread", "60"}).body,
      json::parse(R"({"to": {"topic": "sports"}, "data": 1, "spread_s": 60})"));
  EXPECT_EQ(build("push",
                  {"--app", "a", "--condition", "'a' in topics && !('b' in topics)", "--data", "1"})
                .body->at("to"),
            json::parse(R"j({"condition": "'a' in topics && !('b' in topics)"})j"));
  EXPECT_EQ(build("push", {"--app", "a", "--broadcast", "--data", "1"}).body->at("to"),
            json::parse(R"({"broadcast": true})"));
}

TEST(Commands, PushTakesExactlyOneTarget) {
  const auto refusal = [](std::vector<std::string_view> args) {
    try {
      (void)build("push", std::move(args));
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no UsageError");
  };
  EXPECT_EQ(refusal({"--app", "a", "--data", "1"}),
            "push needs a target: --device ID (one or more), --alias NAME, --topic TOPIC, "
            "--condition EXPR or --broadcast");
  EXPECT_EQ(refusal({"--app", "a", "--device", "d", "--topic", "t", "--data", "1"}),
            "push takes one target, not both --device and --topic");
  EXPECT_EQ(refusal({"--app", "a", "--topic", "t", "--broadcast", "--data", "1"}),
            "push takes one target, not both --topic and --broadcast");
  EXPECT_EQ(refusal({"--app", "a", "--alias", "u", "--condition", "'t' in topics", "--data", "1"}),
            "push takes one target, not both --alias and --condition");
}

TEST(Commands, PushSpreadsOnlyASharedMessage) {
  EXPECT_THROW((void)build("push", {"--app", "a", "--device", "d", "--data", "1", "--spread", "5"}),
               UsageError);
  EXPECT_THROW((void)build("push", {"--app", "a", "--broadcast", "--data", "1", "--spread", "-1"}),
               UsageError);
  EXPECT_FALSE(build("push", {"--app", "a", "--broadcast", "--data", "1"})
                   .body->as_object()
                   .contains("spread_s"));
}

TEST(Commands, TopicCommandsCallTheTopicRoutes) {
  Call call = build("topic subscribe", {"--app", "news", "--topic", "sports", "--device", "d1",
                                        "--device", "d2", "--history", "10"});
  EXPECT_EQ(call.verb, bhttp::verb::post);
  EXPECT_EQ(call.target, "/v1/apps/news/topics/sports/subscribers");
  EXPECT_EQ(*call.body, json::parse(R"({"devices": ["d1", "d2"], "history": 10})"));
  EXPECT_EQ(*build("topic subscribe", {"--app", "news", "--topic", "t", "--device", "d"}).body,
            json::parse(R"({"devices": ["d"]})"));

  call = build("topic unsubscribe", {"--app", "news", "--topic", "sports", "--device", "d1"});
  EXPECT_EQ(call.verb, bhttp::verb::delete_);
  EXPECT_EQ(call.target, "/v1/apps/news/topics/sports/subscribers/d1");
  EXPECT_FALSE(call.body.has_value());

  call = build("topic get", {"--app", "news", "--topic", "sports"});
  EXPECT_EQ(call.verb, bhttp::verb::get);
  EXPECT_EQ(call.target, "/v1/apps/news/topics/sports");

  call = build("device topics", {"--app", "news", "--device", "d1"});
  EXPECT_EQ(call.verb, bhttp::verb::get);
  EXPECT_EQ(call.target, "/v1/apps/news/devices/d1/topics");
}

TEST(Commands, TopicSubscribersPagesWithAfterAndLimit) {
  EXPECT_EQ(build("topic subscribers", {"--app", "news", "--topic", "sports"}).target,
            "/v1/apps/news/topics/sports/subscribers");
  EXPECT_EQ(build("topic subscribers",
                  {"--app", "news", "--topic", "sports", "--after", "a:b&c", "--limit", "2"})
                .target,
            "/v1/apps/news/topics/sports/subscribers?after=a%3Ab%26c&limit=2");
  EXPECT_EQ(build("topic subscribers", {"--app", "news", "--topic", "t", "--limit", "5"}).target,
            "/v1/apps/news/topics/t/subscribers?limit=5");
  EXPECT_THROW((void)build("topic subscribers", {"--app", "news", "--topic", "t", "--limit", "0"}),
               UsageError);
}

TEST(Commands, TopicNamesStayOneSegment) {
  EXPECT_EQ(build("topic get", {"--app", "news", "--topic", "50%/x"}).target,
            "/v1/apps/news/topics/50%25%2Fx");
}

TEST(Commands, TopicSubscribeNeedsADeviceAndUnsubscribeExactlyOne) {
  EXPECT_THROW((void)build("topic subscribe", {"--app", "news", "--topic", "t"}), UsageError);
  EXPECT_THROW((void)build("topic unsubscribe",
                           {"--app", "news", "--topic", "t", "--device", "a", "--device", "b"}),
               UsageError);
  EXPECT_THROW((void)build("topic get", {"--app", "news"}), UsageError);
}

TEST(Commands, TopicCommandsPrintWhatTheServerDid) {
  EXPECT_EQ(rendered("topic subscribe", R"({"topic": "sports", "joined": 2})"),
            "subscribed 2 devices to topic sports\n");
  EXPECT_EQ(rendered("topic subscribe", R"({"topic": "sports", "joined": 1})"),
            "subscribed 1 device to topic sports\n");
  EXPECT_EQ(
      rendered("topic unsubscribe", R"({"device": "d1", "topic": "sports", "joined": false})"),
      "unsubscribed d1 from topic sports\n");
  EXPECT_EQ(rendered("topic get", R"({"topic": "sports", "stream": 12,
      "created_at_ms": 1714564800000, "subscribers": 3})"),
            "topic        sports\n"
            "stream       12\n"
            "created      2024-05-01T12:00:00.000Z\n"
            "subscribers  3\n");
}

TEST(Commands, TopicSubscribersPrintsThePageAndHowToReadTheNext) {
  EXPECT_EQ(rendered("topic subscribers",
                     R"({"topic": "sports", "devices": ["d1", "d2"], "next_after": "d2"})"),
            "TOPIC   DEVICE\n"
            "sports  d1\n"
            "sports  d2\n"
            "\n"
            "more: --after d2\n");
  EXPECT_EQ(rendered("topic subscribers", R"({"topic": "sports", "devices": ["d1"]})"),
            "TOPIC   DEVICE\n"
            "sports  d1\n");
  EXPECT_EQ(rendered("topic subscribers", R"({"topic": "sports", "devices": []})"),
            "no subscribers of topic sports\n");
}

TEST(Commands, DeviceTopicsPrintsEachTopicAndSince) {
  EXPECT_EQ(rendered("device topics", R"({"device": "d1", "topics": [
      {"topic": "news", "since_ms": 1714564800000}, {"topic": "sports", "since_ms": 0}]})"),
            "TOPIC   SINCE\n"
            "news    2024-05-01T12:00:00.000Z\n"
            "sports  1970-01-01T00:00:00.000Z\n");
  EXPECT_EQ(rendered("device topics", R"({"device": "d1", "topics": []})"),
            "device d1 has joined no topic\n");
}

TEST(Commands, PushOfASharedMessagePrintsItsPlaceInTheStream) {
  EXPECT_EQ(rendered("push", R"({"id": "0123456789abcdef", "state": "sent", "targets": [],
      "stream": {"stream": 4, "epoch": 77, "seq": 9}})"),
            "id      0123456789abcdef\n"
            "state   sent\n"
            "stream  4\n"
            "epoch   77\n"
            "seq     9\n");
}

// How message get prints a topic, condition or broadcast message, sent at 12:00 on 2024-05-01,
// whose answer has `members` (audience, stream, stats, ...) besides the ones every status has.
std::string shared_status(std::string_view members) {
  return rendered("message get", R"({"id": "0123456789abcdef", "state": "sent",
      "created_at_ms": 1714564800000, "targets": [], "totals": {}, )" +
                                     std::string(members) + "}");
}

// What every shared status prints first: "delivered", always there, is the widest name.
constexpr std::string_view kSharedHead =
    "id         0123456789abcdef\n"
    "state      sent\n"
    "created    2024-05-01T12:00:00.000Z\n";

TEST(Commands, MessageStatusOfATopicMessageShowsItsAudienceAndCounts) {
  EXPECT_EQ(shared_status(R"("expires_at_ms": 1715169600000, "audience": {"topic": "sports"},
      "stream": {"epoch": 77, "seq": 9}, "stats": {"delivered": 3, "acked": 2, "targeted": 4})"),
            std::string(kSharedHead) +
                "expires    2024-05-08T12:00:00.000Z\n"
                "audience   topic sports\n"
                "epoch      77\n"
                "seq        9\n"
                "targeted   4\n"
                "delivered  3\n"
                "acked      2\n");
}

TEST(Commands, MessageStatusOfAnExpiredBroadcastCountsTheDevicesItMissed) {
  EXPECT_EQ(shared_status(R"("audience": {"broadcast": true},
      "stats": {"delivered": 1, "acked": 1, "targeted": 5, "expired": 4})"),
            std::string(kSharedHead) +
                "audience   broadcast\n"
                "targeted   5\n"
                "delivered  1\n"
                "acked      1\n"
                "expired    4\n");
}

TEST(Commands, MessageStatusOfAConditionNotYetCountedShowsADash) {
  EXPECT_EQ(shared_status(R"("audience": {"condition": "'a' in topics && 'b' in topics"},
      "stats": {"delivered": 0, "acked": 0})"),
            std::string(kSharedHead) +
                "audience   condition 'a' in topics && 'b' in topics\n"
                "targeted   -\n"
                "delivered  0\n"
                "acked      0\n");
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

// The whole of `herald` (run()) against an in-process HTTPS server on loopback that answers
// every request {"status": "ok"}.
class RunOverHttps : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) / "herald_cli_https" / info->name();
    certs_ = tls::testing::make_test_certificates(dir_);
    http::HttpServerOptions options;
    tls::ServerSettings tls;
    tls.cert_file = certs_.cert_file.string();
    tls.key_file = certs_.key_file.string();
    options.tls = tls::make_server_context(tls);
    server_ = std::make_unique<http::HttpServer>(
        std::vector<boost::asio::io_context*>{&io_},
        boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0), &ok_handler,
        options);
    server_->start();
    loop_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    server_->stop();
    loop_.join();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  static boost::asio::awaitable<http::Response> ok_handler(http::Request) {
    http::Response res{bhttp::status::ok, 11};
    res.body() = R"({"status": "ok"})";
    co_return res;
  }

  // run() with `env` as the whole environment; returns the exit status.
  int run_herald(std::vector<std::string_view> args) {
    out_.str("");
    err_.str("");
    const Getenv getenv = [this](std::string_view name) -> std::optional<std::string> {
      const auto it = env_.find(std::string(name));
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    return run(args, getenv, out_, err_);
  }

  std::string https_url() const { return "https://127.0.0.1:" + std::to_string(server_->port()); }

  std::filesystem::path dir_;
  tls::testing::TestCertificates certs_;
  boost::asio::io_context io_;
  std::unique_ptr<http::HttpServer> server_;
  std::thread loop_;
  std::map<std::string, std::string> env_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(RunOverHttps, TalksToAnHttpsServerWithTheCaFileAndServerNameFromTheEnvironment) {
  env_["HERALD_SERVER"] = https_url();
  env_["HERALD_CA_FILE"] = certs_.ca_file.string();
  env_["HERALD_TLS_SERVER_NAME"] = certs_.server_name;
  EXPECT_EQ(run_herald({"health"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "ok\n");
}

TEST_F(RunOverHttps, AnAddressAsTheHostIsTheNameTheCertificateMustCarry) {
  // The test certificate carries 127.0.0.1 as well as its name.
  const std::string ca = certs_.ca_file.string();
  const std::string server = https_url();
  EXPECT_EQ(run_herald({"--server", server, "--ca-file", ca, "health"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "ok\n");
}

TEST_F(RunOverHttps, ACertificateNotForTheServerNameIsRefusedClearly) {
  const std::string ca = certs_.ca_file.string();
  const std::string server = https_url();
  EXPECT_EQ(run_herald(
                {"--server", server, "--ca-file", ca, "--tls-server-name", "other.test", "health"}),
            kExitFailed);
  EXPECT_NE(err_.str().find("certificate verify failed"), std::string::npos) << err_.str();
}

TEST_F(RunOverHttps, AMissingCaFileIsNamed) {
  const std::string server = https_url();
  EXPECT_EQ(run_herald({"--server", server, "--ca-file", "/nonexistent/ca.pem", "health"}),
            kExitFailed);
  EXPECT_NE(err_.str().find("/nonexistent/ca.pem"), std::string::npos) << err_.str();
}

TEST(Run, AServerUrlOfAnotherSchemeIsAUsageError) {
  std::ostringstream out;
  std::ostringstream err;
  const Getenv none = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  const std::vector<std::string_view> args = {"--server", "ftp://h:21", "health"};
  EXPECT_EQ(run(args, none, out, err), kExitUsage);
  EXPECT_NE(err.str().find("scheme must be http or https, not 'ftp'"), std::string::npos)
      << err.str();
}

}  // namespace
}  // namespace herald::cli
