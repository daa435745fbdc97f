// SenderApi over the real stack below it: MessageService, the RocksDB store in a temporary
// directory and the local router. No sockets: handle() runs on a private io_context.
#include "http/sender_api.h"

#include <exception>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/run_to_completion.h"
#include "distribution/local_router.h"
#include "logic/message_id.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

constexpr std::int64_t kNowMs = 1'800'000'000'000;

logic::MessageLimits test_limits() {
  logic::MessageLimits limits;
  limits.max_payload_bytes = 64;
  limits.max_targets = 3;
  limits.default_ttl_s = 600;
  limits.max_ttl_s = 3600;
  return limits;
}

logic::SchedulerLimits scheduler_limits() {
  logic::SchedulerLimits limits;
  limits.max_pending_per_app = 3;
  return limits;
}

storage::RocksDbOptions storage_options(const std::string& path) {
  storage::RocksDbOptions options;
  options.path = path;
  options.durability = storage::Durability::kFast;  // the tests do not crash the machine
  return options;
}

class SenderApiTest : public ::testing::Test {
 protected:
  SenderApiTest()
      : storage_(storage::RocksDbStorage::open(storage_options(dir_.db_path())).value()),
        apps_({{"shop", {"shop-key"}}, {"news", {"news-key", "news-key-2"}}}),
        tokens_(std::string(32, 's'), 0),
        tracker_(storage_->streams(), storage_->records(), storage_->devices(), router_,
                 [] { return kNowMs; }),
        topics_(storage_->streams(), storage_->records(), storage_->devices(), apps_, router_,
                [] { return kNowMs; }),
        service_(test_limits(), apps_, storage_->streams(), storage_->devices(), router_, ids_,
                 tracker_, topics_, [] { return kNowMs; }),
        presence_(storage_->streams(), storage_->records(), [] { return kNowMs; }),
        aliases_(io_.get_executor(), storage_->streams(), storage_->records(), storage_->devices(),
                 [] { return kNowMs; }),
        scheduler_(logic::MessageScheduler::create(
            io_.get_executor(), scheduler_limits(), service_, tracker_, storage_->streams(),
            storage_->records(), ids_, [] { return kNowMs; })),
        api_({service_, apps_, tokens_, storage_->devices(), storage_->streams(),
              storage_->records(), aliases_, router_, limiter_, presence_, tracker_, *scheduler_,
              ids_, topics_, "node-1", [] { return kNowMs; }}) {}

  Response call(Request request) { return run_to_completion(io_, api_.handle(std::move(request))); }

  static Request make(bhttp::verb verb, std::string target, std::string body,
                      std::optional<std::string> key) {
    Request request{verb, target, 11};
    if (key) request.set(bhttp::field::authorization, "Bearer " + *key);
    request.body() = std::move(body);
    request.prepare_payload();
    return request;
  }

  Response post(std::string target, std::string body,
                std::optional<std::string> key = std::string("shop-key")) {
    return call(make(bhttp::verb::post, std::move(target), std::move(body), std::move(key)));
  }

  Response send(std::string body) { return post("/v1/apps/shop/messages", std::move(body)); }

  void register_device(const std::string& device, const std::string& app = "shop") {
    ASSERT_TRUE(storage_->devices().register_device(app, device, kNowMs).has_value());
  }

  storage::StreamHead head(const std::string& device) {
    return storage_->streams().head(logic::MessageService::inbox_key(device)).value();
  }

  storage::Entry only_entry(const std::string& device) {
    storage::ReadRequest read;
    const std::string key = logic::MessageService::inbox_key(device);
    read.stream = key;
    read.now_ms = kNowMs;
    auto result = storage_->streams().read(read).value();
    EXPECT_EQ(result.entries.size(), 1u);
    return result.entries.empty() ? storage::Entry{} : result.entries.front();
  }

  static json::value body_of(const Response& res) { return json::parse(res.body()); }

  static std::string error_code_of(const Response& res) {
    return std::string(body_of(res).at("error").at("code").as_string());
  }

  // Sends `body` (expected to fail with `status` and `code`) and checks nothing was stored.
  void expect_rejected(const std::string& body, bhttp::status status, const std::string& code) {
    const auto before_a = head("phone-a");
    const auto before_b = head("phone-b");
    const Response res = send(body);
    EXPECT_EQ(res.result(), status) << body << " -> " << res.body();
    EXPECT_EQ(error_code_of(res), code) << body;
    EXPECT_EQ(res[bhttp::field::content_type], "application/json");
    EXPECT_EQ(head("phone-a").head_seq, before_a.head_seq) << body;
    EXPECT_EQ(head("phone-b").head_seq, before_b.head_seq) << body;
  }

  void SetUp() override {
    register_device("phone-a");
    register_device("phone-b");
    register_device("phone-n", "news");
  }

  asio::io_context io_;
  storage::testing::TempDir dir_;
  std::unique_ptr<storage::RocksDbStorage> storage_;
  logic::AppRegistry apps_;
  logic::DeviceTokenAuthority tokens_;
  distribution::LocalRouter router_;
  logic::MessageIdGenerator ids_;
  logic::MessageTracker tracker_;
  logic::TopicService topics_;
  logic::MessageService service_;
  logic::RateLimiter limiter_{[] { return kNowMs; }};
  logic::PresenceLog presence_;
  logic::AliasService aliases_;
  std::shared_ptr<logic::MessageScheduler> scheduler_;
  SenderApi api_;
};

// --- routes ---

TEST_F(SenderApiTest, HealthzAnswersOk) {
  const Response res = call(make(bhttp::verb::get, "/healthz", "", std::nullopt));
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(body_of(res), json::parse(R"({"status":"ok"})"));
}

TEST_F(SenderApiTest, UnknownRouteIs404) {
  for (const char* target : {"/", "/v1", "/v1/apps/shop", "/v2/apps/shop/messages", "/healthz/"}) {
    const Response res = call(make(bhttp::verb::get, target, "", std::string("shop-key")));
    EXPECT_EQ(res.result(), bhttp::status::not_found) << target;
    EXPECT_EQ(error_code_of(res), "not_found") << target;
  }
}

TEST_F(SenderApiTest, WrongMethodIs405WithAllow) {
  Response res = call(make(bhttp::verb::get, "/v1/apps/shop/messages", "", std::nullopt));
  EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(res[bhttp::field::allow], "POST");
  EXPECT_EQ(error_code_of(res), "method_not_allowed");
  res = call(make(bhttp::verb::post, "/healthz", "", std::nullopt));
  EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(res[bhttp::field::allow], "GET");
}

// --- authentication ---

TEST_F(SenderApiTest, MissingKeyIs401WithChallenge) {
  const Response res = post("/v1/apps/shop/messages", "{}", std::nullopt);
  EXPECT_EQ(res.result(), bhttp::status::unauthorized);
  EXPECT_EQ(error_code_of(res), "unauthorized");
  EXPECT_EQ(res[bhttp::field::www_authenticate], "Bearer");
}

TEST_F(SenderApiTest, WrongKeyIs401) {
  const Response res = post("/v1/apps/shop/messages", R"({"to":{"device":"phone-a"},"data":1})",
                            std::string("nope"));
  EXPECT_EQ(res.result(), bhttp::status::unauthorized);
  EXPECT_EQ(error_code_of(res), "unauthorized");
  EXPECT_EQ(head("phone-a").head_seq, 0u);
}

TEST_F(SenderApiTest, UnknownAppWithoutAValidKeyLooksLikeAWrongKey) {
  // Existing and missing apps answer alike: the caller learns nothing about which apps exist.
  const Response missing = post("/v1/apps/nosuch/messages", "{}", std::string("nope"));
  const Response existing = post("/v1/apps/shop/messages", "{}", std::string("nope"));
  EXPECT_EQ(missing.result(), bhttp::status::unauthorized);
  EXPECT_EQ(missing.body(), existing.body());
}

TEST_F(SenderApiTest, KeyOfAnotherAppIs404ForExistingAndMissingAppsAlike) {
  const Response missing = post("/v1/apps/nosuch/messages", "{}", std::string("news-key"));
  const Response foreign = post("/v1/apps/shop/messages", "{}", std::string("news-key-2"));
  EXPECT_EQ(missing.result(), bhttp::status::not_found);
  EXPECT_EQ(error_code_of(missing), "unknown_app");
  EXPECT_EQ(foreign.result(), bhttp::status::not_found);
  EXPECT_EQ(error_code_of(foreign), "unknown_app");
}

TEST_F(SenderApiTest, BearerSchemeIsCaseInsensitive) {
  Request request =
      make(bhttp::verb::post, "/v1/apps/shop/devices", R"({"device":"d1"})", std::nullopt);
  request.set(bhttp::field::authorization, "bearer shop-key");
  EXPECT_EQ(call(std::move(request)).result(), bhttp::status::created);
}

// --- devices ---

TEST_F(SenderApiTest, RegistersADeviceAndMintsItsToken) {
  Response res = post("/v1/apps/shop/devices", R"({"device":"new-phone"})");
  ASSERT_EQ(res.result(), bhttp::status::created) << res.body();
  const json::value body = body_of(res);
  EXPECT_EQ(body.at("device"), "new-phone");
  const std::string token(body.at("token").as_string());
  EXPECT_TRUE(tokens_.verify("new-phone", token, kNowMs / 1000));
  EXPECT_TRUE(storage_->devices().is_registered("shop", "new-phone").value());
  EXPECT_FALSE(storage_->devices().is_registered("news", "new-phone").value());

  res = post("/v1/apps/shop/devices", R"({"device":"new-phone"})");
  EXPECT_EQ(res.result(), bhttp::status::ok) << res.body();
  EXPECT_TRUE(tokens_.verify("new-phone", std::string(body_of(res).at("token").as_string()),
                             kNowMs / 1000));
}

TEST_F(SenderApiTest, RegisterRejectsBadBodies) {
  for (const char* body : {"", "nope", "[]", "{}", R"({"device":7})", R"({"device":""})",
                           R"({"device":"has space"})", R"({"device":"a","extra":1})"}) {
    const Response res = post("/v1/apps/shop/devices", body);
    EXPECT_EQ(res.result(), bhttp::status::bad_request) << body;
    EXPECT_EQ(error_code_of(res), "bad_request") << body;
  }
  EXPECT_FALSE(storage_->devices().is_registered("shop", "a").value());
}

// --- messages: success ---

TEST_F(SenderApiTest, SendsJsonDataToOneDevice) {
  const Response res = send(R"({"to":{"device":"phone-a"},"data":{"title":"hi","n":[1,2]}})");
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  const json::value body = body_of(res);
  const std::string id(body.at("id").as_string());
  EXPECT_EQ(id.size(), 16u);
  const json::array& targets = body.at("targets").as_array();
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].at("device"), "phone-a");
  EXPECT_EQ(targets[0].at("seq").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(targets[0].at("epoch").to_number<std::uint64_t>(), head("phone-a").epoch);
  EXPECT_EQ(targets[0].at("online"), false);

  const storage::Entry entry = only_entry("phone-a");
  EXPECT_EQ(entry.kind, storage::DataKind::kJson);
  EXPECT_EQ(json::parse(entry.data), json::parse(R"({"title":"hi","n":[1,2]})"));
  EXPECT_EQ(entry.message_id, id);
  EXPECT_EQ(entry.app, "shop");
  EXPECT_EQ(entry.expires_at_ms, kNowMs + 600 * 1000);  // the default TTL
}

TEST_F(SenderApiTest, SendsToSeveralDevicesWithOneSeqEach) {
  ASSERT_EQ(send(R"({"to":{"device":"phone-a"},"data":0})").result(), bhttp::status::ok);
  const Response res = send(R"({"to":{"devices":["phone-a","phone-b"]},"data":"x"})");
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  const json::value body = body_of(res);
  const json::array& targets = body.at("targets").as_array();
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].at("device"), "phone-a");
  EXPECT_EQ(targets[0].at("seq").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(targets[1].at("device"), "phone-b");
  EXPECT_EQ(targets[1].at("seq").to_number<std::uint64_t>(), 1u);
}

TEST_F(SenderApiTest, StoresBase64DataAsBinary) {
  // "AAH/" is the bytes 00 01 ff.
  const Response res = send(R"({"to":{"device":"phone-a"},"data":"AAH/","encoding":"base64"})");
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  const storage::Entry entry = only_entry("phone-a");
  EXPECT_EQ(entry.kind, storage::DataKind::kBinary);
  EXPECT_EQ(entry.data, std::string("\x00\x01\xff", 3));
}

TEST_F(SenderApiTest, HonoursTheTtl) {
  ASSERT_EQ(send(R"({"to":{"device":"phone-a"},"data":1,"ttl_s":3600})").result(),
            bhttp::status::ok);
  EXPECT_EQ(only_entry("phone-a").expires_at_ms, kNowMs + 3600 * 1000);
}

TEST_F(SenderApiTest, PayloadAtTheLimitIsAccepted) {
  // 64 bytes of JSON: a string of 62 characters plus its quotes.
  const std::string body =
      R"({"to":{"device":"phone-a"},"data":")" + std::string(62, 'x') + R"("})";
  EXPECT_EQ(send(body).result(), bhttp::status::ok);
}

// --- messages: errors store nothing ---

TEST_F(SenderApiTest, UnknownDeviceIs404AndStoresNothing) {
  expect_rejected(R"({"to":{"device":"ghost"},"data":1})", bhttp::status::not_found,
                  "unknown_device");
  // A device of another app is unknown to this one, even in a batch with known ones.
  expect_rejected(R"({"to":{"devices":["phone-a","phone-n"]},"data":1})", bhttp::status::not_found,
                  "unknown_device");
}

TEST_F(SenderApiTest, BadJsonIs400AndStoresNothing) {
  for (const char* body :
       {"", "{", "not json", R"({"to":{"device":"phone-a"},"data":1,})", "[1,2]", "\"string\""}) {
    expect_rejected(body, bhttp::status::bad_request, "bad_request");
  }
}

// Found by request_body_fuzz: a number beyond a double's range parsed as an infinity and was
// stored as the JSON data "Infinity", which no device can parse.
TEST_F(SenderApiTest, DataWithANumberBeyondADoubleIs400AndStoresNothing) {
  for (const char* body : {R"({"to":{"device":"phone-a"},"data":1e400})",
                           R"({"to":{"device":"phone-a"},"data":{"x":[-1e400]}})"}) {
    expect_rejected(body, bhttp::status::bad_request, "bad_request");
  }
}

TEST_F(SenderApiTest, MissingOrMalformedTargetsAre400AndStoreNothing) {
  for (const char* body : {
           R"({"data":1})",
           R"({"to":"phone-a","data":1})",
           R"({"to":{},"data":1})",
           R"({"to":{"device":"phone-a","devices":["phone-b"]},"data":1})",
           R"({"to":{"device":5},"data":1})",
           R"({"to":{"devices":[]},"data":1})",
           R"({"to":{"devices":"phone-a"},"data":1})",
           R"({"to":{"devices":["phone-a",7]},"data":1})",
           R"({"to":{"devices":["phone-a","bad id"]},"data":1})",
           R"({"to":{"device":"phone-a","topic":"x"},"data":1})",
       }) {
    expect_rejected(body, bhttp::status::bad_request, "bad_request");
  }
}

TEST_F(SenderApiTest, MissingDataOrUnknownFieldsAre400AndStoreNothing) {
  for (const char* body : {
           R"({"to":{"device":"phone-a"}})",
           R"({"to":{"device":"phone-a"},"data":1,"ttl":60})",
           R"({"to":{"device":"phone-a"},"data":1,"encoding":"hex"})",
           R"({"to":{"device":"phone-a"},"data":1,"encoding":7})",
           R"({"to":{"device":"phone-a"},"data":1,"collapse_key":""})",
           R"({"to":{"device":"phone-a"},"data":1,"collapse_key":7})",
           R"({"to":{"device":"phone-a"},"data":1,"priority":"urgent"})",
           R"({"to":{"device":"phone-a","alias":"u"},"data":1})",
           R"({"to":{"alias":"bad alias"},"data":1})",
       }) {
    expect_rejected(body, bhttp::status::bad_request, "bad_request");
  }
}

TEST_F(SenderApiTest, BadTtlIs400AndStoresNothing) {
  for (const char* ttl : {"-1", "3601", "1.5", "\"60\"", "null", "18446744073709551615", "1e3"}) {
    const std::string body =
        R"({"to":{"device":"phone-a"},"data":1,"ttl_s":)" + std::string(ttl) + "}";
    expect_rejected(body, bhttp::status::bad_request, "bad_ttl");
  }
}

TEST_F(SenderApiTest, BadBase64Is400AndStoresNothing) {
  for (const char* data : {R"("not base64!")", R"("A")" /* carries no whole byte */, R"("AA=H")",
                           "12", R"({"a":1})"}) {
    const std::string body =
        R"({"to":{"device":"phone-a"},"encoding":"base64","data":)" + std::string(data) + "}";
    expect_rejected(body, bhttp::status::bad_request, "bad_request");
  }
}

TEST_F(SenderApiTest, TooManyTargetsIs400AndStoresNothing) {
  expect_rejected(R"({"to":{"devices":["phone-a","phone-b","phone-a","phone-b"]},"data":1})",
                  bhttp::status::bad_request, "too_many_targets");
}

TEST_F(SenderApiTest, PayloadTooLargeIs413AndStoresNothing) {
  const std::string json_body =
      R"({"to":{"device":"phone-a"},"data":")" + std::string(63, 'x') + R"("})";
  expect_rejected(json_body, bhttp::status::payload_too_large, "payload_too_large");
  // 66 decoded bytes: the limit applies to what is stored, not to the base64 text.
  const std::string base64_body =
      R"({"to":{"device":"phone-a"},"encoding":"base64","data":")" + std::string(88, 'A') + R"("})";
  expect_rejected(base64_body, bhttp::status::payload_too_large, "payload_too_large");
}

// --- scheduled sends ---

std::string scheduled_body(std::int64_t send_at_ms, std::string to = R"({"device":"phone-a"})") {
  return R"({"to":)" + to + R"(,"data":{"n":1},"send_at_ms":)" + std::to_string(send_at_ms) + "}";
}

TEST_F(SenderApiTest, ASendTimeAheadSchedulesTheMessageAndAnswers202) {
  const std::int64_t due = kNowMs + 60'000;
  const Response res = send(scheduled_body(due, R"({"devices":["phone-a","phone-b"]})"));
  ASSERT_EQ(res.result(), bhttp::status::accepted) << res.body();
  const auto body = body_of(res);
  EXPECT_EQ(body.at("state"), "scheduled");
  EXPECT_EQ(body.at("send_at_ms"), due);
  EXPECT_EQ(body.at("targets"), json::parse(R"([{"device":"phone-a"},{"device":"phone-b"}])"));
  EXPECT_EQ(head("phone-a").head_seq, 0u);  // kept until then, in no inbox
  EXPECT_EQ(scheduler_->pending("shop"), 1u);

  const std::string id(body.at("id").as_string());
  const Response got =
      call(make(bhttp::verb::get, "/v1/apps/shop/messages/" + id, "", std::string("shop-key")));
  ASSERT_EQ(got.result(), bhttp::status::ok) << got.body();
  const auto status = body_of(got);
  EXPECT_EQ(status.at("state"), "scheduled");
  EXPECT_EQ(status.at("send_at_ms"), due);
  EXPECT_EQ(status.at("created_at_ms"), kNowMs);
  EXPECT_EQ(status.at("totals"), json::parse(R"({"scheduled":2})"));
  for (const auto& t : status.at("targets").as_array()) EXPECT_EQ(t.at("state"), "scheduled");
}

TEST_F(SenderApiTest, DeletingAScheduledMessageCancelsIt) {
  const auto body = body_of(send(scheduled_body(kNowMs + 60'000)));
  const std::string target = "/v1/apps/shop/messages/" + std::string(body.at("id").as_string());
  for (int attempt = 0; attempt < 2; ++attempt) {  // a second DELETE answers the same
    const Response res = call(make(bhttp::verb::delete_, target, "", std::string("shop-key")));
    ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
    const auto cancelled = body_of(res);
    EXPECT_EQ(cancelled.at("state"), "cancelled");
    EXPECT_EQ(cancelled.at("cancelled_at_ms"), kNowMs);
    EXPECT_EQ(cancelled.at("targets").at(0).at("state"), "cancelled");
  }
  EXPECT_EQ(body_of(call(make(bhttp::verb::get, target, "", std::string("shop-key")))).at("state"),
            "cancelled");
  EXPECT_EQ(scheduler_->pending(), 0u);
  EXPECT_EQ(storage_->records().scan("sched/", {}, 10, kNowMs).value().size(), 0u);
}

TEST_F(SenderApiTest, ASendTimeInThePastOrWithinASecondSendsAtOnce) {
  std::uint64_t seq = 0;
  for (const std::int64_t at : {std::int64_t{0}, kNowMs - 5'000, kNowMs, kNowMs + 1'000}) {
    const Response res = send(scheduled_body(at));
    ASSERT_EQ(res.result(), bhttp::status::ok) << at << ": " << res.body();
    EXPECT_EQ(body_of(res).at("state"), "sent");
    EXPECT_EQ(head("phone-a").head_seq, ++seq);
  }
  EXPECT_EQ(scheduler_->pending(), 0u);
}

TEST_F(SenderApiTest, ABadSendTimeIs400AndStoresNothing) {
  const std::string to = R"({"to":{"device":"phone-a"},"data":1,"send_at_ms":)";
  for (const char* bad : {R"("soon")", "-1", "1.5", "null", "true", "[1]"}) {
    expect_rejected(to + bad + "}", bhttp::status::bad_request, "bad_request");
  }
  const std::int64_t horizon = scheduler_->limits().max_horizon_ms;
  expect_rejected(scheduled_body(kNowMs + horizon + 1), bhttp::status::bad_request, "bad_send_at");
  expect_rejected(to + "18446744073709551615}", bhttp::status::bad_request, "bad_send_at");
  const Response res = send(scheduled_body(kNowMs + horizon + 1));
  EXPECT_NE(body_of(res).at("error").at("message").as_string().find("28 days"), std::string::npos)
      << res.body();
  EXPECT_EQ(scheduler_->pending(), 0u);
  EXPECT_EQ(storage_->records().scan("sched/", {}, 10, kNowMs).value().size(), 0u);
  // The horizon itself is fine.
  EXPECT_EQ(send(scheduled_body(kNowMs + horizon)).result(), bhttp::status::accepted);
}

TEST_F(SenderApiTest, AScheduledSendIsValidatedLikeAnImmediateOne) {
  const std::string at = std::to_string(kNowMs + 60'000);
  expect_rejected(scheduled_body(kNowMs + 60'000, R"({"device":"phone-x"})"),
                  bhttp::status::not_found, "unknown_device");
  expect_rejected(scheduled_body(kNowMs + 60'000, R"({"device":"phone-n"})"),
                  bhttp::status::not_found, "unknown_device");  // another app's
  expect_rejected(R"({"to":{"device":"phone-a"},"data":")" + std::string(80, 'x') +
                      R"(","send_at_ms":)" + at + "}",
                  bhttp::status::payload_too_large, "payload_too_large");
  expect_rejected(R"({"to":{"device":"phone-a"},"data":1,"ttl_s":99999,"send_at_ms":)" + at + "}",
                  bhttp::status::bad_request, "bad_ttl");
  EXPECT_EQ(scheduler_->pending(), 0u);
}

TEST_F(SenderApiTest, TooManyScheduledMessagesIs429WithRetryAfterAndStoresNothing) {
  for (int i = 0; i < 3; ++i) {  // scheduler_limits(): 3 per app
    ASSERT_EQ(send(scheduled_body(kNowMs + 60'000)).result(), bhttp::status::accepted);
  }
  const Response res = send(scheduled_body(kNowMs + 60'000));
  EXPECT_EQ(res.result(), bhttp::status::too_many_requests) << res.body();
  EXPECT_EQ(error_code_of(res), "too_many_scheduled");
  EXPECT_FALSE(res[bhttp::field::retry_after].empty());
  EXPECT_EQ(scheduler_->pending(), 3u);
  EXPECT_EQ(storage_->records().scan("sched/", {}, 10, kNowMs).value().size(), 3u);
  // An immediate send is not limited by it.
  EXPECT_EQ(send(R"({"to":{"device":"phone-a"},"data":1})").result(), bhttp::status::ok);
}

TEST_F(SenderApiTest, AnIdempotencyKeyReplaysAScheduledSendWith202AndSchedulesItOnce) {
  Request first = make(bhttp::verb::post, "/v1/apps/shop/messages", scheduled_body(kNowMs + 60'000),
                       std::string("shop-key"));
  first.set("Idempotency-Key", "order-9");
  Request retry = first;
  const Response a = call(std::move(first));
  ASSERT_EQ(a.result(), bhttp::status::accepted) << a.body();
  const Response b = call(std::move(retry));
  ASSERT_EQ(b.result(), bhttp::status::accepted) << b.body();
  EXPECT_EQ(b["Idempotent-Replayed"], "true");
  EXPECT_EQ(body_of(a), body_of(b));
  EXPECT_EQ(scheduler_->pending(), 1u);
}

// --- message options, status, revoke ---

TEST_F(SenderApiTest, TtlZeroDropsOfflineTargetsAndStoresNothingForThem) {
  const Response res = send(R"({"to":{"devices":["phone-a","phone-b"]},"data":1,"ttl_s":0})");
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  const auto body = body_of(res);
  for (const auto& t : body.at("targets").as_array()) EXPECT_TRUE(t.at("dropped").as_bool());
  EXPECT_EQ(head("phone-a").head_seq, 0u);
  EXPECT_EQ(head("phone-b").head_seq, 0u);
}

TEST_F(SenderApiTest, ACollapseKeyReplacesTheUndeliveredMessageWithTheSameKey) {
  const auto first =
      body_of(send(R"({"to":{"device":"phone-a"},"data":1,"collapse_key":"score"})"));
  const auto other = body_of(send(R"({"to":{"device":"phone-a"},"data":2,"collapse_key":"news"})"));
  const auto second =
      body_of(send(R"({"to":{"device":"phone-a"},"data":3,"collapse_key":"score"})"));
  storage::ReadRequest read;
  const std::string key = logic::MessageService::inbox_key("phone-a");
  read.stream = key;
  read.now_ms = kNowMs;
  const auto entries = storage_->streams().read(read).value().entries;
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].kind, storage::DataKind::kTombstone);  // replaced by the third
  EXPECT_EQ(entries[1].data, "2");
  EXPECT_EQ(entries[2].data, "3");
  const auto status = body_of(call(
      make(bhttp::verb::get, "/v1/apps/shop/messages/" + std::string(first.at("id").as_string()),
           "", std::string("shop-key"))));
  EXPECT_EQ(status.at("targets").at(0).at("state").as_string(), "replaced");
  (void)other;
  (void)second;
}

TEST_F(SenderApiTest, ARetryWithTheSameIdempotencyKeyStoresNothingAndGetsTheSameAnswer) {
  Request first = make(bhttp::verb::post, "/v1/apps/shop/messages",
                       R"({"to":{"device":"phone-a"},"data":{"n":1}})", std::string("shop-key"));
  first.set("Idempotency-Key", "order-42");
  Request retry = first;
  const Response a = call(std::move(first));
  ASSERT_EQ(a.result(), bhttp::status::ok) << a.body();
  const Response b = call(std::move(retry));
  ASSERT_EQ(b.result(), bhttp::status::ok) << b.body();
  EXPECT_EQ(b["Idempotent-Replayed"], "true");
  EXPECT_EQ(body_of(a), body_of(b));
  EXPECT_EQ(head("phone-a").head_seq, 1u);  // one message, not two
}

TEST_F(SenderApiTest, TheSameIdempotencyKeyWithAnotherBodyIs409AndStoresNothing) {
  Request first = make(bhttp::verb::post, "/v1/apps/shop/messages",
                       R"({"to":{"device":"phone-a"},"data":1})", std::string("shop-key"));
  first.set("Idempotency-Key", "k");
  ASSERT_EQ(call(std::move(first)).result(), bhttp::status::ok);
  Request other = make(bhttp::verb::post, "/v1/apps/shop/messages",
                       R"({"to":{"device":"phone-a"},"data":2})", std::string("shop-key"));
  other.set("Idempotency-Key", "k");
  const Response res = call(std::move(other));
  EXPECT_EQ(res.result(), bhttp::status::conflict);
  EXPECT_EQ(error_code_of(res), "idempotency_key_reused");
  EXPECT_EQ(head("phone-a").head_seq, 1u);
}

TEST_F(SenderApiTest, MessageStatusNamesEachTargetsStage) {
  const auto sent = body_of(send(R"({"to":{"devices":["phone-a","phone-b"]},"data":1})"));
  const std::string id(sent.at("id").as_string());
  const auto status = body_of(
      call(make(bhttp::verb::get, "/v1/apps/shop/messages/" + id, "", std::string("shop-key"))));
  EXPECT_EQ(status.at("id").as_string(), id);
  EXPECT_EQ(status.at("state").as_string(), "sent");
  ASSERT_EQ(status.at("targets").as_array().size(), 2u);
  for (const auto& t : status.at("targets").as_array()) {
    EXPECT_EQ(t.at("state").as_string(), "stored");
    EXPECT_EQ(t.at("stored_at_ms").as_int64(), kNowMs);
    EXPECT_EQ(t.at("seq").as_int64(), 1);
  }
  EXPECT_EQ(status.at("totals").at("stored").as_int64(), 2);
  // Another app's key, or an id that does not exist: 404 alike.
  const auto foreign =
      call(make(bhttp::verb::get, "/v1/apps/news/messages/" + id, "", std::string("news-key")));
  EXPECT_EQ(foreign.result(), bhttp::status::not_found);
  EXPECT_EQ(error_code_of(foreign), "unknown_message");
}

TEST_F(SenderApiTest, RevokingAnUndeliveredMessageTombstonesItWithoutARecall) {
  const auto sent = body_of(send(R"({"to":{"device":"phone-a"},"data":1})"));
  const std::string id(sent.at("id").as_string());
  const Response res =
      call(make(bhttp::verb::delete_, "/v1/apps/shop/messages/" + id, "", std::string("shop-key")));
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  EXPECT_EQ(body_of(res).at("targets").at(0).at("state").as_string(), "revoked");
  storage::ReadRequest read;
  const std::string key = logic::MessageService::inbox_key("phone-a");
  read.stream = key;
  read.now_ms = kNowMs;
  const auto entries = storage_->streams().read(read).value().entries;
  ASSERT_EQ(entries.size(), 1u);  // offline and never pulled: no recall needed
  EXPECT_EQ(entries[0].kind, storage::DataKind::kTombstone);
}

TEST_F(SenderApiTest, RevokingADeliveredMessageAppendsARecall) {
  const auto sent = body_of(send(R"({"to":{"device":"phone-a"},"data":1})"));
  const std::string id(sent.at("id").as_string());
  ASSERT_EQ(service_.pull("phone-a", 0, 0, 0, 10).value().entries.size(), 1u);  // delivered
  const Response res =
      call(make(bhttp::verb::delete_, "/v1/apps/shop/messages/" + id, "", std::string("shop-key")));
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  EXPECT_EQ(body_of(res).at("targets").at(0).at("state").as_string(), "recalled");
  const auto entries = service_.pull("phone-a", 0, 0, 0, 10).value().entries;
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].kind, storage::DataKind::kTombstone);
  EXPECT_EQ(entries[1].kind, storage::DataKind::kRecall);
  EXPECT_EQ(entries[1].data, id);
}

TEST_F(SenderApiTest, AnUnregisteredDevicesPendingMessagesAreNotDelivered) {
  ASSERT_EQ(send(R"({"to":{"device":"phone-a"},"data":1})").result(), bhttp::status::ok);
  const Response res = call(
      make(bhttp::verb::delete_, "/v1/apps/shop/devices/phone-a", "", std::string("shop-key")));
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  const auto entries = service_.pull("phone-a", 0, 0, 0, 10).value().entries;
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].kind, storage::DataKind::kTombstone);
  EXPECT_TRUE(entries[0].data.empty());
}

TEST_F(SenderApiTest, AnAliasFansOutToItsDevices) {
  Request set = make(bhttp::verb::put, "/v1/apps/shop/aliases/user-7",
                     R"({"devices":["phone-a","phone-b"]})", std::string("shop-key"));
  ASSERT_EQ(call(std::move(set)).result(), bhttp::status::ok);
  const auto sent = body_of(send(R"({"to":{"alias":"user-7"},"data":1})"));
  EXPECT_EQ(sent.at("targets").as_array().size(), 2u);
  EXPECT_EQ(head("phone-a").head_seq, 1u);
  EXPECT_EQ(head("phone-b").head_seq, 1u);
  // An alias of devices another app registered is refused: unknown device.
  Request foreign = make(bhttp::verb::put, "/v1/apps/shop/aliases/u2", R"({"devices":["phone-n"]})",
                         std::string("shop-key"));
  EXPECT_EQ(call(std::move(foreign)).result(), bhttp::status::not_found);
  const auto missing = send(R"({"to":{"alias":"nobody"},"data":1})");
  EXPECT_EQ(missing.result(), bhttp::status::not_found);
  EXPECT_EQ(error_code_of(missing), "unknown_alias");
}

TEST_F(SenderApiTest, OverTheRateLimitIs429WithRetryAfterAndStoresNothing) {
  limiter_.set_limits("shop", {{}, {2, 2}});  // two messages, then wait
  ASSERT_EQ(send(R"({"to":{"devices":["phone-a","phone-b"]},"data":1})").result(),
            bhttp::status::ok);
  const Response res = send(R"({"to":{"device":"phone-a"},"data":2})");
  EXPECT_EQ(res.result(), bhttp::status::too_many_requests);
  EXPECT_EQ(error_code_of(res), "rate_limited");
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_EQ(head("phone-a").head_seq, 1u);
}

TEST_F(SenderApiTest, AnIdempotentRetryIsReplayedEvenWhenTheRateIsSpent) {
  limiter_.set_limits("shop", {{}, {1, 1}});  // one message, then wait
  Request first = make(bhttp::verb::post, "/v1/apps/shop/messages",
                       R"({"to":{"device":"phone-a"},"data":1})", std::string("shop-key"));
  first.set("Idempotency-Key", "retry-me");
  Request retry = first;
  ASSERT_EQ(call(std::move(first)).result(), bhttp::status::ok);
  // The retry costs nothing: the message was counted when it was accepted.
  const Response replayed = call(std::move(retry));
  ASSERT_EQ(replayed.result(), bhttp::status::ok) << replayed.body();
  EXPECT_EQ(replayed["Idempotent-Replayed"], "true");
  // A new message is over the limit.
  EXPECT_EQ(send(R"({"to":{"device":"phone-a"},"data":2})").result(),
            bhttp::status::too_many_requests);
  EXPECT_EQ(head("phone-a").head_seq, 1u);
}

// What a crash between storing a message and keeping its answer leaves: the idempotency record,
// written with the message (fingerprint and message id), without the answer added afterwards.
// tests/integration/crash_point_test.cc makes the same state with a real kill -9.
void forget_kept_answers(storage::RocksDbStorage& storage) {
  auto kept = storage.records().scan("idem/", "", 100, kNowMs).value();
  ASSERT_FALSE(kept.empty());
  storage::AppendBatch batch;
  batch.now_ms = kNowMs;
  for (auto& record : kept) {
    auto value = json::parse(record.value).as_object();
    ASSERT_TRUE(value.contains("id")) << record.value;
    ASSERT_TRUE(value.erase("answer") == 1 && value.erase("status") == 1) << record.value;
    batch.put_records.push_back({record.key, json::serialize(value), record.expires_at_ms});
  }
  ASSERT_FALSE(storage::testing::write_and_wait(storage.streams(), std::move(batch)).ec);
}

TEST_F(SenderApiTest, ARetryWhoseFirstAnswerWasNeverKeptGetsItRebuiltFromTheMessage) {
  Request first =
      make(bhttp::verb::post, "/v1/apps/shop/messages",
           R"({"to":{"devices":["phone-a","phone-b"]},"data":1})", std::string("shop-key"));
  first.set("Idempotency-Key", "crashed-before-answering");
  Request retry = first;
  const Response answered = call(std::move(first));
  ASSERT_EQ(answered.result(), bhttp::status::ok) << answered.body();
  forget_kept_answers(*storage_);
  if (HasFatalFailure()) return;

  const Response replayed = call(std::move(retry));
  ASSERT_EQ(replayed.result(), bhttp::status::ok) << replayed.body();
  EXPECT_EQ(replayed["Idempotent-Replayed"], "true");
  const auto was = body_of(answered);
  const auto now = body_of(replayed);
  EXPECT_EQ(now.at("id"), was.at("id"));
  EXPECT_EQ(now.at("state"), "sent");
  ASSERT_EQ(now.at("targets").as_array().size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& before = was.at("targets").at(i).as_object();
    const auto& after = now.at("targets").at(i).as_object();
    EXPECT_EQ(after.at("device"), before.at("device"));
    EXPECT_EQ(after.at("epoch"), before.at("epoch"));
    EXPECT_EQ(after.at("seq"), before.at("seq"));
  }
  EXPECT_EQ(head("phone-a").head_seq, 1u) << "a retry stores nothing";
}

TEST_F(SenderApiTest, ARetryOfAScheduledSendWhoseAnswerWasNeverKeptIsAnsweredScheduled) {
  const std::int64_t send_at_ms = kNowMs + 3'600'000;
  Request first = make(
      bhttp::verb::post, "/v1/apps/shop/messages",
      R"({"to":{"device":"phone-a"},"data":1,"send_at_ms":)" + std::to_string(send_at_ms) + "}",
      std::string("shop-key"));
  first.set("Idempotency-Key", "scheduled-then-crashed");
  Request retry = first;
  const Response answered = call(std::move(first));
  ASSERT_EQ(answered.result(), bhttp::status::accepted) << answered.body();
  forget_kept_answers(*storage_);
  if (HasFatalFailure()) return;

  const Response replayed = call(std::move(retry));
  ASSERT_EQ(replayed.result(), bhttp::status::accepted) << replayed.body();
  EXPECT_EQ(replayed["Idempotent-Replayed"], "true");
  const auto now = body_of(replayed);
  EXPECT_EQ(now.at("id"), body_of(answered).at("id"));
  EXPECT_EQ(now.at("state"), "scheduled");
  EXPECT_EQ(now.at("send_at_ms").as_int64(), send_at_ms);
  EXPECT_EQ(now.at("targets").at(0).at("device"), "phone-a");
}

TEST_F(SenderApiTest, DeviceLookupShowsTheInboxPositionAndHidesOtherAppsDevices) {
  ASSERT_EQ(send(R"({"to":{"device":"phone-a"},"data":1})").result(), bhttp::status::ok);
  const auto res =
      call(make(bhttp::verb::get, "/v1/apps/shop/devices/phone-a", "", std::string("shop-key")));
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  const auto body = body_of(res);
  EXPECT_FALSE(body.at("online").as_bool());
  EXPECT_EQ(body.at("registered_at_ms").as_int64(), kNowMs);
  EXPECT_EQ(body.at("streams").at(0).at("head_seq").as_int64(), 1);
  EXPECT_EQ(
      call(make(bhttp::verb::get, "/v1/apps/shop/devices/phone-n", "", std::string("shop-key")))
          .result(),
      bhttp::status::not_found);
}

}  // namespace
}  // namespace herald::http
