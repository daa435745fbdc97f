// The herald CLI end to end: the real `herald` binary, run as its users run it (a process with its
// own environment, reading nothing but what the test gives it), against a real heraldd, with a
// device on the real client library where a message must arrive. Every route heraldd serves is
// called; tools/cli/commands_test.cc checks, without a server, what herald sends and prints byte
// for byte.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "captured_run.h"
#include "herald_server.h"
#include "test_device.h"

namespace herald::testing {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Every command `herald --help` must list.
const std::vector<std::string> kCommands = {
    "register",
    "device get",
    "device rm",
    "device topics",
    "alias get",
    "alias set",
    "alias rm",
    "alias bind",
    "alias unbind",
    "topic subscribe",
    "topic unsubscribe",
    "topic subscribers",
    "topic get",
    "push",
    "message get",
    "message revoke",
    "health",
    "admin app create",
    "admin app list",
    "admin app get",
    "admin app set",
    "admin app disable",
    "admin app enable",
    "admin key add",
    "admin key list",
    "admin key revoke",
    "admin device get",
};

// Whether help text `out` has an entry for `command` (a line that starts with it).
bool lists(const std::string& out, const std::string& command) {
  return out.find("\n  " + command + " ") != std::string::npos ||
         out.find("\n  " + command + "\n") != std::string::npos;
}

// The whitespace-separated cells of each line of `text`.
std::vector<std::vector<std::string>> lines_of(const std::string& text) {
  std::vector<std::vector<std::string>> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream cells(line);
    std::vector<std::string> row;
    for (std::string cell; cells >> cell;) row.push_back(cell);
    lines.push_back(std::move(row));
  }
  return lines;
}

// The value of field `name` in a "name  value" list: the rest of the first line that starts with
// the name and two spaces; nullopt when there is none.
std::optional<std::string> field_of(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(name + "  ")) {
      const auto value = line.find_first_not_of(' ', name.size());
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return std::nullopt;
}

// The rows of the table whose header row starts with `first_header`, without the header.
std::vector<std::vector<std::string>> table_of(const std::string& text,
                                               const std::string& first_header) {
  std::vector<std::vector<std::string>> rows;
  bool in_table = false;
  for (auto& line : lines_of(text)) {
    if (!in_table) {
      in_table = !line.empty() && line.front() == first_header;
    } else if (line.empty()) {
      break;
    } else {
      rows.push_back(std::move(line));
    }
  }
  return rows;
}

class Cli : public ::testing::Test {
 protected:
  Cli() : home_(make_temp_dir("herald-cli-home")) {}
  ~Cli() override {
    std::error_code ignored;
    std::filesystem::remove_all(home_, ignored);
  }

  // heraldd, started on first use: the tests of usage and help need none.
  HeraldServer& server() {
    if (!server_) server_ = std::make_unique<HeraldServer>();
    return *server_;
  }
  std::string server_url() { return "http://127.0.0.1:" + std::to_string(server().http_port()); }
  std::string admin_token() {
    std::ifstream in(server().data_dir() / "admin_token");
    std::string token;
    std::getline(in, token);
    return token;
  }

  // Runs herald with `args` in an environment of HOME (an empty directory of this test, so that
  // no config file of the machine's is read) and `env`.
  CapturedRun herald(const std::vector<std::string>& args,
                     const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {bin_path("herald").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> vars = {"HOME=" + home_.string()};
    vars.insert(vars.end(), env.begin(), env.end());
    return run_captured(argv, vars);
  }
  // herald with the server and the news app's key on the command line.
  CapturedRun sender(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_url(), "--key", kNewsApp.key});
    return herald(args);
  }
  // herald with the server and the admin token on the command line.
  CapturedRun admin(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_url(), "--admin-token", admin_token()});
    return herald(args);
  }
  // Runs a command that must succeed and returns its stdout.
  std::string ok(const CapturedRun& run) {
    EXPECT_EQ(run.exit_code, 0) << "stderr: " << run.err;
    EXPECT_EQ(run.err, "");
    return run.out;
  }
  void write_config(const std::filesystem::path& path, const std::string& toml) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << toml;
  }
  std::filesystem::path default_config() const { return home_ / ".config" / "herald" / "cli.toml"; }

  std::filesystem::path home_;
  std::unique_ptr<HeraldServer> server_;
};

// ------------------------------------------------------------------------------ sender commands

TEST_F(Cli, RegisterPrintsOnlyTheDeviceToken) {
  const std::string out = ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  ASSERT_EQ(lines_of(out).size(), 1u);
  ASSERT_EQ(lines_of(out)[0].size(), 1u);
  EXPECT_FALSE(lines_of(out)[0][0].empty());
}

TEST_F(Cli, PushToDevicesPrintsTheIdAndEachDevicesSequenceNumber) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  ok(sender({"register", "--app", "news", "--device", "phone-2"}));
  ok(sender({"push", "--app", "news", "--device", "phone-1", "--data", R"({"n":1})"}));

  const std::string out = ok(sender({"push", "--app", "news", "--device", "phone-1", "--device",
                                     "phone-2", "--data", R"({"n":2})", "--ttl", "60"}));
  const auto id = field_of(out, "id");
  ASSERT_TRUE(id.has_value()) << out;
  EXPECT_EQ(id->size(), 16u);
  const auto lines = lines_of(out);
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      std::vector<std::string>{"DEVICE", "EPOCH", "SEQ", "ONLINE"}),
            lines.end())
      << out;
  const auto rows = table_of(out, "DEVICE");
  ASSERT_EQ(rows.size(), 2u) << out;
  ASSERT_EQ(rows[0].size(), 4u) << out;
  ASSERT_EQ(rows[1].size(), 4u) << out;
  // DEVICE, EPOCH (the inbox's, random), SEQ, ONLINE.
  EXPECT_EQ(rows[0][0], "phone-1");
  EXPECT_EQ(rows[0][2], "2");
  EXPECT_EQ(rows[0][3], "no");
  EXPECT_EQ(rows[1][0], "phone-2");
  EXPECT_EQ(rows[1][2], "1");
  EXPECT_EQ(rows[1][3], "no");
}

TEST_F(Cli, PushWithJsonPrintsTheServersAnswerExactly) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  const std::string out =
      ok(sender({"--json", "push", "--app", "news", "--device", "phone-1", "--data", "\"hi\""}));
  const json::value answer = json::parse(out);
  // The server serializes with Boost.JSON: its bytes are what serializing the parsed value gives.
  EXPECT_EQ(out, json::serialize(answer) + "\n");
  EXPECT_EQ(answer.at("targets").at(0).at("device"), "phone-1");
}

TEST_F(Cli, PushSendsBase64DataAsBinary) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  ok(sender({"push", "--app", "news", "--device", "phone-1", "--data-base64", "AAEC/w=="}));
  const auto bad =
      sender({"push", "--app", "news", "--device", "phone-1", "--data-base64", "not base64!"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("bad_request"));
}

TEST_F(Cli, PushToAnAliasReachesEveryDeviceBoundToIt) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  ok(sender({"register", "--app", "news", "--device", "tablet-1"}));
  ok(sender({"alias", "set", "--app", "news", "--alias", "user-1", "--device", "phone-1",
             "--device", "tablet-1"}));
  const json::value answer = json::parse(ok(
      sender({"push", "--json", "--app", "news", "--alias", "user-1", "--data", R"({"t":"hi"})"})));
  std::vector<std::string> devices;
  for (const auto& t : answer.at("targets").as_array()) {
    devices.emplace_back(t.at("device").as_string());
  }
  std::sort(devices.begin(), devices.end());
  EXPECT_EQ(devices, (std::vector<std::string>{"phone-1", "tablet-1"}));
}

TEST_F(Cli, DeviceGetShowsTheDeviceAndItsInbox) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  ok(sender({"push", "--app", "news", "--device", "phone-1", "--data", "1"}));
  const std::string out = ok(sender({"device", "get", "--app", "news", "--device", "phone-1"}));
  EXPECT_EQ(field_of(out, "device"), "phone-1");
  EXPECT_EQ(field_of(out, "online"), "no");
  const auto streams = table_of(out, "STREAM");
  ASSERT_EQ(streams.size(), 1u) << out;
  EXPECT_EQ(streams[0][0], "inbox");
  EXPECT_EQ(streams[0][2], "1");  // HEAD_SEQ
}

TEST_F(Cli, DeviceRmUnregistersTheDevice) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  EXPECT_EQ(ok(sender({"device", "rm", "--app", "news", "--device", "phone-1"})),
            "unregistered phone-1\n");
  const auto gone = sender({"device", "get", "--app", "news", "--device", "phone-1"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(gone.out, "");
  EXPECT_THAT(gone.err, HasSubstr("herald: unknown_device: "));
  EXPECT_THAT(gone.err, HasSubstr("(HTTP 404)"));
}

TEST_F(Cli, AliasCommandsBindAndUnbindDevices) {
  for (const char* d : {"phone-1", "phone-2", "phone-3"}) {
    ok(sender({"register", "--app", "news", "--device", d}));
  }
  const auto devices_of = [](const std::string& out) {
    std::vector<std::string> devices;
    for (const auto& row : table_of(out, "ALIAS")) devices.push_back(row.at(1));
    return devices;
  };
  using Devices = std::vector<std::string>;
  EXPECT_EQ(devices_of(ok(sender({"alias", "set", "--app", "news", "--alias", "u1", "--device",
                                  "phone-1", "--device", "phone-2"}))),
            (Devices{"phone-1", "phone-2"}));
  EXPECT_EQ(devices_of(ok(sender(
                {"alias", "bind", "--app", "news", "--alias", "u1", "--device", "phone-3"}))),
            (Devices{"phone-1", "phone-2", "phone-3"}));
  EXPECT_EQ(devices_of(ok(sender(
                {"alias", "unbind", "--app", "news", "--alias", "u1", "--device", "phone-1"}))),
            (Devices{"phone-2", "phone-3"}));
  EXPECT_EQ(devices_of(ok(sender({"alias", "get", "--app", "news", "--alias", "u1"}))),
            (Devices{"phone-2", "phone-3"}));
  EXPECT_EQ(ok(sender({"alias", "rm", "--app", "news", "--alias", "u1"})), "deleted alias u1\n");
  const auto gone = sender({"alias", "get", "--app", "news", "--alias", "u1"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, HasSubstr("unknown_alias"));
}

TEST_F(Cli, MessageGetShowsEachDevicesStateAndRevokeRevokesIt) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  const auto id =
      field_of(ok(sender({"push", "--app", "news", "--device", "phone-1", "--data", "1"})), "id");
  ASSERT_TRUE(id.has_value());

  std::string out = ok(sender({"message", "get", "--app", "news", "--id", *id}));
  EXPECT_EQ(field_of(out, "id"), *id);
  EXPECT_EQ(field_of(out, "state"), "sent");
  auto targets = table_of(out, "DEVICE");
  ASSERT_EQ(targets.size(), 1u) << out;
  EXPECT_EQ(targets[0][0], "phone-1");
  EXPECT_EQ(targets[0][3], "stored");                  // STATE: the device never connected
  EXPECT_TRUE(targets[0][4].starts_with("+")) << out;  // STORED, since creation

  out = ok(sender({"message", "revoke", "--app", "news", "--id", *id}));
  EXPECT_EQ(field_of(out, "state"), "revoked");
  targets = table_of(out, "DEVICE");
  ASSERT_EQ(targets.size(), 1u) << out;
  EXPECT_EQ(targets[0][3], "revoked");

  const auto unknown = sender({"message", "get", "--app", "news", "--id", "0000000000000000"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("(HTTP 404)"));
}

TEST_F(Cli, PushWithSendAtSchedulesAndRevokeCancels) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  const auto in_an_hour = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch() + 1h)
                              .count();
  std::string out = ok(sender({"push", "--app", "news", "--device", "phone-1", "--data", "1",
                               "--send-at", std::to_string(in_an_hour)}));
  EXPECT_EQ(field_of(out, "state"), "scheduled") << out;
  ASSERT_TRUE(field_of(out, "send at").has_value()) << out;
  const auto id = field_of(out, "id");
  ASSERT_TRUE(id.has_value());

  out = ok(sender({"message", "get", "--app", "news", "--id", *id}));
  EXPECT_EQ(field_of(out, "state"), "scheduled");
  EXPECT_TRUE(field_of(out, "send at").has_value()) << out;
  auto targets = table_of(out, "DEVICE");
  ASSERT_EQ(targets.size(), 1u) << out;
  EXPECT_EQ(targets[0], (std::vector<std::string>{"phone-1", "-", "-", "scheduled"}));

  out = ok(sender({"message", "revoke", "--app", "news", "--id", *id}));
  EXPECT_EQ(field_of(out, "state"), "cancelled") << out;
  targets = table_of(out, "DEVICE");
  ASSERT_EQ(targets.size(), 1u) << out;
  EXPECT_EQ(targets[0][3], "cancelled");
  // Never stored in the inbox.
  const auto device = ok(sender({"device", "get", "--app", "news", "--device", "phone-1"}));
  EXPECT_EQ(table_of(device, "STREAM").at(0).at(2), "0") << device;
}

TEST_F(Cli, PushWithAnIdempotencyKeySendsOnceAndSaysWhenReplayed) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  const std::vector<std::string> push = {
      "push",           "--app", "news",       "--device", "phone-1",           "--data", "1",
      "--collapse-key", "score", "--priority", "high",     "--idempotency-key", "order-7"};
  const std::string first = ok(sender(push));
  const auto again = sender(push);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, first);
  EXPECT_THAT(again.err, HasSubstr("herald: replayed: "));

  std::vector<std::string> other = push;
  other[6] = "2";  // another body under the same key
  const auto reused = sender(other);
  EXPECT_EQ(reused.exit_code, 1);
  EXPECT_THAT(reused.err, HasSubstr("herald: idempotency_key_reused: "));
}

// ------------------------------------------------------------------------------------- topics

TEST_F(Cli, TopicCommandsSubscribeListShowAndUnsubscribeDevices) {
  for (const char* d : {"phone-1", "phone-2", "phone-3"}) {
    ok(sender({"register", "--app", "news", "--device", d}));
  }
  EXPECT_EQ(ok(sender({"topic", "subscribe", "--app", "news", "--topic", "sports", "--device",
                       "phone-1", "--device", "phone-2", "--history", "5"})),
            "subscribed 2 devices to topic sports\n");

  const auto devices_of = [](const std::string& out) {
    std::vector<std::string> devices;
    for (const auto& row : table_of(out, "TOPIC")) devices.push_back(row.at(1));
    return devices;
  };
  using Devices = std::vector<std::string>;
  EXPECT_EQ(devices_of(ok(sender({"topic", "subscribers", "--app", "news", "--topic", "sports"}))),
            (Devices{"phone-1", "phone-2"}));
  // A page at a time: the first page says where the next starts.
  std::string out =
      ok(sender({"topic", "subscribers", "--app", "news", "--topic", "sports", "--limit", "1"}));
  EXPECT_EQ(devices_of(out), (Devices{"phone-1"}));
  EXPECT_THAT(out, HasSubstr("\nmore: --after phone-1\n"));
  EXPECT_EQ(devices_of(ok(sender({"topic", "subscribers", "--app", "news", "--topic", "sports",
                                  "--after", "phone-1", "--limit", "5"}))),
            (Devices{"phone-2"}));

  out = ok(sender({"topic", "get", "--app", "news", "--topic", "sports"}));
  EXPECT_EQ(field_of(out, "topic"), "sports");
  EXPECT_EQ(field_of(out, "subscribers"), "2");
  EXPECT_TRUE(field_of(out, "created").value_or("").ends_with("Z")) << out;
  const auto topics =
      table_of(ok(sender({"device", "topics", "--app", "news", "--device", "phone-1"})), "TOPIC");
  ASSERT_EQ(topics.size(), 1u);
  EXPECT_EQ(topics[0][0], "sports");
  EXPECT_TRUE(topics[0][1].ends_with("Z"));  // SINCE, a UTC time

  EXPECT_EQ(ok(sender({"topic", "unsubscribe", "--app", "news", "--topic", "sports", "--device",
                       "phone-1"})),
            "unsubscribed phone-1 from topic sports\n");
  EXPECT_EQ(ok(sender({"device", "topics", "--app", "news", "--device", "phone-1"})),
            "device phone-1 has joined no topic\n");
  const json::value answer =
      json::parse(ok(sender({"--json", "topic", "get", "--app", "news", "--topic", "sports"})));
  EXPECT_EQ(answer.at("subscribers"), 1);
}

TEST_F(Cli, TopicCommandsReportWhatTheServerRefuses) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  // One device is not registered: none is subscribed.
  const auto unknown = sender({"topic", "subscribe", "--app", "news", "--topic", "sports",
                               "--device", "phone-1", "--device", "nobody"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("herald: unknown_device: "));
  EXPECT_EQ(ok(sender({"topic", "subscribers", "--app", "news", "--topic", "sports"})),
            "no subscribers of topic sports\n");

  const auto never = sender({"topic", "get", "--app", "news", "--topic", "never"});
  EXPECT_EQ(never.exit_code, 1);
  EXPECT_THAT(never.err, HasSubstr("(HTTP 404)"));
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"topic", "get", "--app", "news", "--topic", "has space"},
        std::vector<std::string>{"topic", "subscribe", "--app", "news", "--topic", "t", "--device",
                                 "phone-1", "--history", "101"}}) {
    const auto bad = sender(args);
    EXPECT_EQ(bad.exit_code, 1) << args[4];
    EXPECT_THAT(bad.err, HasSubstr("herald: bad_request: ")) << args[4];
  }
}

TEST_F(Cli, PushToATopicReachesItsSubscriberAndMessageGetCountsTheDelivery) {
  const std::string token = ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  ok(sender({"register", "--app", "news", "--device", "phone-2"}));
  TestDevice phone(server(), "phone-1", token.substr(0, token.find('\n')));
  ASSERT_TRUE(phone.wait_connected(20s));
  ok(sender({"topic", "subscribe", "--app", "news", "--topic", "sports", "--device", "phone-1"}));

  std::string out = ok(sender(
      {"push", "--app", "news", "--topic", "sports", "--data", R"({"goal":1})", "--spread", "0"}));
  const auto id = field_of(out, "id");
  ASSERT_TRUE(id.has_value()) << out;
  EXPECT_EQ(field_of(out, "state"), "sent");
  EXPECT_EQ(field_of(out, "seq"), "1") << out;
  EXPECT_TRUE(field_of(out, "stream").has_value()) << out;
  EXPECT_TRUE(table_of(out, "DEVICE").empty()) << out;  // no device of its own

  ASSERT_TRUE(phone.inbox().wait_until(
      [&](const std::vector<Message>& got) {
        return std::any_of(got.begin(), got.end(), [&](const Message& m) { return m.id == *id; });
      },
      20s));
  EXPECT_EQ(phone.inbox().messages().front().topic, "sports");

  out = ok(sender({"message", "get", "--app", "news", "--id", *id}));
  EXPECT_EQ(field_of(out, "state"), "sent");
  EXPECT_EQ(field_of(out, "audience"), "topic sports");
  EXPECT_EQ(field_of(out, "seq"), "1");
  EXPECT_EQ(field_of(out, "targeted"), "1") << out;  // phone-2 is registered, not subscribed
  EXPECT_EQ(field_of(out, "delivered"), "1") << out;
  EXPECT_TRUE(field_of(out, "acked").has_value()) << out;  // 0 or 1: the ack is on its way
  EXPECT_FALSE(field_of(out, "totals").has_value()) << out;
  EXPECT_TRUE(table_of(out, "DEVICE").empty()) << out;

  const json::value answer =
      json::parse(ok(sender({"--json", "message", "get", "--app", "news", "--id", *id})));
  EXPECT_EQ(answer.at("audience").at("topic"), "sports");
  EXPECT_EQ(answer.at("stats").at("delivered"), 1);

  out = ok(sender({"message", "revoke", "--app", "news", "--id", *id}));
  EXPECT_EQ(field_of(out, "state"), "revoked") << out;
  EXPECT_EQ(field_of(out, "audience"), "topic sports");
}

TEST_F(Cli, PushToAConditionOrABroadcastShowsItsAudience) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  ok(sender({"topic", "subscribe", "--app", "news", "--topic", "a", "--device", "phone-1"}));
  const std::string condition = "'a' in topics && !('b' in topics)";
  auto id = field_of(ok(sender({"push", "--app", "news", "--condition", condition, "--data", "1"})),
                     "id");
  ASSERT_TRUE(id.has_value());
  std::string out = ok(sender({"message", "get", "--app", "news", "--id", *id}));
  EXPECT_EQ(field_of(out, "audience"), "condition " + condition) << out;

  id = field_of(ok(sender({"push", "--app", "news", "--broadcast", "--data", "2", "--spread", "60",
                           "--priority", "normal"})),
                "id");
  ASSERT_TRUE(id.has_value());
  out = ok(sender({"message", "get", "--app", "news", "--id", *id}));
  EXPECT_EQ(field_of(out, "audience"), "broadcast") << out;
  EXPECT_EQ(field_of(out, "delivered"), "0") << out;  // phone-1 never connected

  // What only the server knows to refuse: a condition that can never hold, a bad topic name, a
  // spread too long, a send time.
  const auto in_an_hour = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch() + 1h)
                              .count();
  for (const std::vector<std::string>& args : {
           std::vector<std::string>{"--condition", "'a' in topics && !('a' in topics)"},
           std::vector<std::string>{"--topic", "has space"},
           std::vector<std::string>{"--broadcast", "--spread", "3601"},
           std::vector<std::string>{"--topic", "a", "--send-at", std::to_string(in_an_hour)},
       }) {
    std::vector<std::string> push = {"push", "--app", "news", "--data", "1"};
    push.insert(push.end(), args.begin(), args.end());
    const auto refused = sender(push);
    EXPECT_EQ(refused.exit_code, 1) << args[0];
    EXPECT_THAT(refused.err, HasSubstr("herald: bad_request: ")) << args[0];
  }
}

TEST_F(Cli, HealthPrintsOkWithoutAKey) {
  EXPECT_EQ(ok(herald({"health", "--server", server_url()})), "ok\n");
}

// ------------------------------------------------------------------------------- admin commands

TEST_F(Cli, AdminAppCreatePrintsAKeyThatSenderCommandsUse) {
  const std::string out =
      ok(admin({"admin", "app", "create", "--app", "shop", "--requests-per-s", "100"}));
  EXPECT_EQ(field_of(out, "id"), "shop");
  EXPECT_EQ(field_of(out, "requests/s"), "100");
  const auto key = field_of(out, "key");
  ASSERT_TRUE(key.has_value()) << out;
  ok(herald({"register", "--server", server_url(), "--key", *key, "--app", "shop", "--device",
             "phone-1"}));

  const auto apps = table_of(ok(admin({"admin", "app", "list"})), "ID");
  std::vector<std::string> ids;
  for (const auto& row : apps) ids.push_back(row.at(0));
  EXPECT_EQ(ids, (std::vector<std::string>{"chat", "news", "shop"}));
  const auto again = admin({"admin", "app", "create", "--app", "shop"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("app_exists"));
}

TEST_F(Cli, AdminAppDisableStopsTheSenderCommandsAndEnableRestartsThem) {
  EXPECT_EQ(field_of(ok(admin({"admin", "app", "disable", "--app", "news"})), "disabled"), "yes");
  const auto refused = sender({"register", "--app", "news", "--device", "phone-1"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("herald: app_disabled: "));
  EXPECT_THAT(refused.err, HasSubstr("(HTTP 403)"));

  EXPECT_EQ(field_of(ok(admin({"admin", "app", "enable", "--app", "news"})), "disabled"), "no");
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
}

TEST_F(Cli, AdminAppSetChangesRateLimitsAndTheWebhook) {
  std::string out = ok(admin({"admin", "app", "set", "--app", "news", "--messages-per-s", "5",
                              "--messages-burst", "2.5", "--webhook", "http://127.0.0.1:9/hook"}));
  EXPECT_EQ(field_of(out, "messages/s"), "5");
  EXPECT_EQ(field_of(out, "messages burst"), "2.5");
  EXPECT_EQ(field_of(out, "requests/s"), "unlimited");
  EXPECT_EQ(field_of(out, "requests burst"), "default");
  EXPECT_EQ(field_of(out, "webhook"), "http://127.0.0.1:9/hook");
  EXPECT_NE(field_of(out, "webhook secret"), "-");

  out = ok(admin({"admin", "app", "get", "--app", "news"}));
  EXPECT_EQ(field_of(out, "messages/s"), "5");
  out = ok(admin({"admin", "app", "set", "--app", "news", "--no-webhook"}));
  EXPECT_EQ(field_of(out, "webhook"), "-");
}

TEST_F(Cli, AdminKeyCommandsRotateAKey) {
  const auto old_keys = table_of(ok(admin({"admin", "key", "list", "--app", "news"})), "ID");
  ASSERT_EQ(old_keys.size(), 1u);
  const std::string old_id = old_keys[0][0];

  const std::string added =
      ok(admin({"admin", "key", "add", "--app", "news", "--label", "rotation"}));
  EXPECT_EQ(field_of(added, "label"), "rotation");
  const auto new_key = field_of(added, "key");
  const auto new_id = field_of(added, "key id");
  ASSERT_TRUE(new_key && new_id) << added;
  EXPECT_EQ(table_of(ok(admin({"admin", "key", "list", "--app", "news"})), "ID").size(), 2u);

  const std::string revoked =
      ok(admin({"admin", "key", "revoke", "--app", "news", "--key-id", old_id}));
  EXPECT_EQ(field_of(revoked, "key id"), old_id);
  EXPECT_NE(field_of(revoked, "revoked"), "-");
  const auto refused = sender({"register", "--app", "news", "--device", "phone-1"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("unauthorized"));
  ok(herald({"register", "--server", server_url(), "--key", *new_key, "--app", "news", "--device",
             "phone-1"}));

  const auto last =
      admin({"admin", "key", "revoke", "--app", "news", "--key-id", *new_id, "--grace", "0"});
  EXPECT_EQ(last.exit_code, 1);
  EXPECT_THAT(last.err, HasSubstr("herald: last_key: "));
  EXPECT_THAT(last.err, HasSubstr("(HTTP 409)"));
}

TEST_F(Cli, AdminDeviceGetShowsTheDeviceAcrossItsApps) {
  ok(sender({"register", "--app", "news", "--device", "phone-1"}));
  ok(herald({"register", "--server", server_url(), "--key", kChatApp.key, "--app", "chat",
             "--device", "phone-1"}));
  ok(sender({"push", "--app", "news", "--device", "phone-1", "--data", "1"}));

  const std::string out = ok(admin({"admin", "device", "get", "--device", "phone-1"}));
  EXPECT_EQ(field_of(out, "device"), "phone-1");
  EXPECT_EQ(field_of(out, "online"), "no");
  const auto apps = table_of(out, "APP");
  ASSERT_EQ(apps.size(), 2u) << out;
  EXPECT_EQ(apps[0][0], "chat");
  EXPECT_EQ(apps[1][0], "news");
  EXPECT_TRUE(apps[0][1].ends_with("Z")) << out;  // REGISTERED, a UTC time
  const auto streams = table_of(out, "STREAM");
  ASSERT_EQ(streams.size(), 1u) << out;
  EXPECT_EQ(streams[0][0], "inbox");
  EXPECT_EQ(streams[0][2], "1");  // HEAD_SEQ

  const std::string json_out =
      ok(admin({"--json", "admin", "device", "get", "--device", "phone-1"}));
  const json::value answer = json::parse(json_out);
  EXPECT_EQ(json_out, json::serialize(answer) + "\n");
  EXPECT_EQ(answer.at("apps").at(1).at("app"), "news");
  EXPECT_EQ(answer.at("streams").at(0).at("head_seq"), 1);

  const auto unknown = admin({"admin", "device", "get", "--device", "nobody"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.out, "");
  EXPECT_THAT(unknown.err, HasSubstr("herald: unknown_device: "));
  EXPECT_THAT(unknown.err, HasSubstr("(HTTP 404)"));
}

TEST_F(Cli, AdminCommandsWithAWrongTokenAreRefused) {
  const auto refused =
      herald({"admin", "app", "list", "--server", server_url(), "--admin-token", "wrong"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("herald: unauthorized: "));
}

// ---------------------------------------------------------------------------------- the answers

TEST_F(Cli, WithJsonAServerErrorGoesToStdoutAsSentAndItsCodeToStderr) {
  const auto run = sender({"--json", "device", "get", "--app", "news", "--device", "nobody"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(json::parse(run.out).at("error").at("code"), "unknown_device");
  EXPECT_THAT(run.err, HasSubstr("herald: unknown_device: "));
}

TEST_F(Cli, AServerThatIsNotThereExitsOne) {
  const auto run = herald({"health", "--server", "http://127.0.0.1:" + std::to_string(free_port()),
                           "--timeout-ms", "5000"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("herald: cannot reach http://127.0.0.1:"));
}

// ------------------------------------------------------------------------------ the credentials

TEST_F(Cli, TheServerAndKeyComeFromTheEnvironment) {
  ok(herald({"register", "--app", "news", "--device", "phone-1"},
            {"HERALD_SERVER=" + server_url(), "HERALD_API_KEY=" + kNewsApp.key}));
}

TEST_F(Cli, TheConfigFileSuppliesServerKeyAndAdminToken) {
  write_config(default_config(), "server = \"" + server_url() + "\"\napi_key = \"" + kNewsApp.key +
                                     "\"\nadmin_token = \"" + admin_token() + "\"\n");
  ok(herald({"register", "--app", "news", "--device", "phone-1"}));
  ok(herald({"admin", "app", "get", "--app", "news"}));
}

TEST_F(Cli, HeraldConfigAndXdgConfigHomeNameTheConfigFile) {
  const std::string text =
      "server = \"" + server_url() + "\"\napi_key = \"" + kNewsApp.key + "\"\n";
  write_config(home_ / "elsewhere.toml", text);
  ok(herald({"register", "--app", "news", "--device", "phone-1"},
            {"HERALD_CONFIG=" + (home_ / "elsewhere.toml").string()}));
  write_config(home_ / "xdg" / "herald" / "cli.toml", text);
  ok(herald({"register", "--app", "news", "--device", "phone-1"},
            {"XDG_CONFIG_HOME=" + (home_ / "xdg").string()}));
}

TEST_F(Cli, TheFlagWinsOverTheEnvironmentWhichWinsOverTheConfigFile) {
  write_config(default_config(),
               "server = \"" + server_url() + "\"\napi_key = \"wrong-file-key-0123456789\"\n");
  const std::vector<std::string> args = {"register", "--app", "news", "--device", "phone-1"};
  const auto from_file = herald(args);
  EXPECT_EQ(from_file.exit_code, 1);
  EXPECT_THAT(from_file.err, HasSubstr("unauthorized"));

  ok(herald(args, {"HERALD_API_KEY=" + kNewsApp.key}));
  std::vector<std::string> with_flag = args;
  with_flag.insert(with_flag.end(), {"--key", kNewsApp.key});
  ok(herald(with_flag, {"HERALD_API_KEY=wrong-env-key-0123456789"}));
}

TEST_F(Cli, AConfigFileWithAnUnknownKeyIsAUsageError) {
  write_config(default_config(), "server = \"http://127.0.0.1:1\"\napikey = \"k\"\n");
  const auto run = herald({"register", "--app", "news", "--device", "phone-1"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr(default_config().string() + ": unknown key 'apikey'"));
}

TEST_F(Cli, AMissingApiKeyIsAUsageErrorThatSaysWhereAKeyComesFrom) {
  const auto run = herald({"register", "--app", "news", "--device", "phone-1"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("--key KEY"));
  EXPECT_THAT(run.err, HasSubstr("HERALD_API_KEY"));
  EXPECT_THAT(run.err, HasSubstr(default_config().string()));
}

// --------------------------------------------------------------------------- usage and the help

TEST_F(Cli, UsageErrorsExitTwoAndSendNothing) {
  // Nothing listens on the server given: had herald sent anything, it would exit 1, not 2.
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(free_port());
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"alias"},
      {"alias", "frob", "--app", "news"},
      {"register", "extra", "--app", "news", "--device", "d"},
      {"register", "--device", "d"},
      {"register", "--app", "news"},
      {"register", "--app", "news", "--device", "d", "--device", "e"},
      {"register", "--app", "news", "--app", "chat", "--device", "d"},
      {"device", "get", "--app", "news", "--device", "d", "--data", "1"},
      {"push", "--app", "news", "--device", "d"},
      {"push", "--app", "news", "--data", "1"},
      {"push", "--app", "news", "--device", "d", "--alias", "u", "--data", "1"},
      {"push", "--app", "news", "--device", "d", "--data", "1", "--data-base64", "AA=="},
      {"push", "--app", "news", "--device", "d", "--data", "{not json"},
      {"push", "--app", "news", "--device", "d", "--data", "1", "--ttl", "soon"},
      {"push", "--app", "news", "--device", "d", "--data", "1", "--priority", "urgent"},
      {"push", "--app", "news", "--device", "d", "--base64", "--data", "AA=="},
      {"push", "--app", "news", "--device", "d", "--data"},
      {"push", "--app", "news", "--topic", "t", "--broadcast", "--data", "1"},
      {"push", "--app", "news", "--alias", "u", "--condition", "'t' in topics", "--data", "1"},
      {"push", "--app", "news", "--broadcast=true", "--data", "1"},
      {"push", "--app", "news", "--device", "d", "--data", "1", "--spread", "5"},
      {"push", "--app", "news", "--topic", "t", "--data", "1", "--spread", "soon"},
      {"topic", "--app", "news"},
      {"topic", "subscribe", "--app", "news", "--topic", "t"},
      {"topic", "subscribe", "--app", "news", "--topic", "t", "--device", "d", "--history", "-1"},
      {"topic", "unsubscribe", "--app", "news", "--topic", "t", "--device", "a", "--device", "b"},
      {"topic", "subscribers", "--app", "news", "--topic", "t", "--limit", "0"},
      {"topic", "subscribers", "--app", "news", "--topic", "t", "--history", "1"},
      {"topic", "get", "--app", "news"},
      {"device", "topics", "--app", "news"},
      {"--bogus", "health"},
      {"--json=yes", "health"},
      {"admin", "app", "set", "--app", "news"},
      {"admin", "app", "set", "--app", "news", "--webhook", "http://x/", "--no-webhook"},
      {"admin", "app", "create", "--app", "x", "--requests-per-s", "-1"},
      {"admin", "key", "revoke", "--app", "news", "--key-id", "k", "--grace", "-5"},
  };
  for (auto args : cases) {
    args.insert(args.begin(), {"--server", nowhere, "--key", "k", "--admin-token", "t"});
    const auto run = herald(args);
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(run.exit_code, 2) << line << "\n" << run.err;
    EXPECT_EQ(run.out, "") << line;
    EXPECT_THAT(run.err, HasSubstr("herald: ")) << line;
    EXPECT_THAT(run.err, HasSubstr("--help' for usage")) << line;
  }
}

TEST_F(Cli, HelpListsEveryCommandAndTheGlobalOptions) {
  const std::string out = ok(herald({"--help"}));
  for (const auto& command : kCommands) {
    EXPECT_TRUE(lists(out, command)) << command;
  }
  for (const char* flag : {"--server URL", "--key KEY", "--admin-token TOKEN", "--config FILE",
                           "--json", "--timeout-ms MS"}) {
    EXPECT_THAT(out, HasSubstr(flag));
  }
  EXPECT_EQ(ok(herald({"-h"})), out);
}

TEST_F(Cli, CommandHelpListsItsOptionsAndItsRoute) {
  const std::string out = ok(herald({"push", "--help"}));
  EXPECT_THAT(out, HasSubstr("usage: herald push --app APP"));
  EXPECT_THAT(out, HasSubstr("Calls POST /v1/apps/{app}/messages with an API key."));
  for (const char* flag :
       {"--device ID", "--alias NAME", "--data JSON", "--data-base64 B64", "--ttl SECONDS",
        "--collapse-key KEY", "--priority high|normal", "--send-at MS", "--idempotency-key KEY"}) {
    EXPECT_THAT(out, HasSubstr("\n  " + std::string(flag))) << flag;
  }
  for (const char* flag :
       {"--topic TOPIC", "--condition EXPR", "--broadcast", "--spread SECONDS"}) {
    EXPECT_THAT(out, HasSubstr("\n  " + std::string(flag))) << flag;
  }
  EXPECT_THAT(ok(herald({"topic", "subscribe", "--help"})),
              HasSubstr("Calls POST /v1/apps/{app}/topics/{topic}/subscribers with an API key."));
  // Help is asked for: nothing else on the line counts, missing flags included.
  EXPECT_THAT(ok(herald({"admin", "key", "revoke", "--help"})), HasSubstr("--grace SECONDS"));
}

TEST_F(Cli, GroupHelpListsTheGroupsCommands) {
  for (const std::string group : {"admin", "topic"}) {
    const std::string out = ok(herald({group, "--help"}));
    for (const auto& command : kCommands) {
      EXPECT_EQ(lists(out, command), command.starts_with(group + " ")) << command;
    }
  }
}

}  // namespace
}  // namespace herald::testing
