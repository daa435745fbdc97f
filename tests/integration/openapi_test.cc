// The contract test of the HTTP API: docs/api/openapi.yaml, read with yaml-cpp, against a real
// heraldd driven over HTTP. For every operation (path + method) the document lists:
//
//   - well-formed requests with the right credentials are answered with a status the operation
//     documents, never the router's 404 not_found or a 405 (the route exists), and a 2xx body
//     matches its response schema (JsonSchemaValidator); no or a wrong credential is 401, another
//     app's key 404, a sender call over the app's rate limit 429, one of a disabled app 403;
//   - for a JSON request body, bodies its schema rejects are derived from the well-formed ones
//     (SchemaMutator: a missing required property, a wrong type, an undeclared property, a value
//     outside enum, bounds, length or pattern; not an object, not JSON): each is answered 400
//     with {"error": {"code", "message"}} and changes nothing the API shows (re-read each time);
//   - path, query and header parameters outside their schema are refused with 4xx, never 5xx.
//
// Documented features the server does not have are tested like the rest but skip (GTEST_SKIP,
// naming what is missing) while the server shows they are missing: a route it does not know (the
// router's not_found), a field it refuses by name. Each case starts checking by itself when its
// feature lands. kFeatures lists them; take a feature out once it has landed, so that losing it
// again fails rather than skips.
//
// Every test boots its own heraldd with the resources the routes need (OpenApiContract::SetUp).
#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "herald_server.h"
#include "http/http_client.h"
#include "json_schema.h"
#include "openapi_document.h"
#include "schema_mutator.h"

namespace herald::testing {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;
using Operation = OpenApiDocument::Operation;

// ------------------------------------------------------------------------------ the document

const OpenApiDocument& document() {
  static const OpenApiDocument doc(std::filesystem::path(HERALD_SOURCE_DIR) / "docs" / "api" /
                                   "openapi.yaml");
  return doc;
}

const Operation& operation(std::string_view operation_id) {
  const Operation* op = document().find(operation_id);
  if (op == nullptr) throw std::runtime_error("no operation " + std::string(operation_id));
  return *op;
}

// --------------------------------------------------------------- features still being built

// A documented feature the server may not have yet, and how its absence shows.
struct Feature {
  std::string_view id;
  std::string_view what;
  std::string_view missing_code;  // the error code answered while it is missing
  std::string_view missing_text;  // ... with this in the message ("" = any message)
};

// None at the moment: every documented operation is served. (An entry here turns the cases of
// its examples into skips that name it, until the server has it.)
constexpr std::array<Feature, 0> kFeatures{};

const Feature& feature(std::string_view id) {
  for (const auto& f : kFeatures) {
    if (f.id == id) return f;
  }
  throw std::runtime_error("no feature " + std::string(id));
}

// ---------------------------------------------------------------------- the world of a test

constexpr std::string_view kApp = "openapi";
constexpr std::string_view kDevice = "phone-1";
constexpr std::string_view kOtherDevice = "phone-2";
constexpr std::string_view kAlias = "user-1";
constexpr std::string_view kTopic = "sports";  // kDevice joined it
// The message the world sends to kDevice (the idempotency tests send it again).
constexpr std::string_view kMessage = R"({"to": {"device": "phone-1"}, "data": {"n": 1}})";

// Well-formed requests, in the order a case sends them. Path parameters come from the world
// (OpenApiContract::path_values); "$IN_AN_HOUR_MS" in a body becomes that time.
struct Example {
  std::string_view operation_id;
  std::optional<std::string_view> body = std::nullopt;  // JSON
  std::string_view query = "";
  int status = 0;                 // the status expected; 0 = any documented 2xx
  std::string_view feature = "";  // a kFeatures id, or "" for what must work now
};

const std::vector<Example> kExamples = {
    {.operation_id = "health"},
    {.operation_id = "readiness"},
    {.operation_id = "metrics"},
    {.operation_id = "listEndpoints"},
    {.operation_id = "listEndpoints", .query = "network=carrier%3A310-260"},
    {.operation_id = "getNodeLoad"},
    {.operation_id = "createApp", .body = R"({"id": "openapi-2"})", .status = 201},
    {.operation_id = "createApp",
     .body = R"({"id": "openapi-3",
                 "rate_limits": {"requests_per_s": 100, "requests_burst": 200,
                                 "messages_per_s": 1000, "messages_burst": 2000},
                 "webhook": {"url": "http://127.0.0.1:9/hooks/herald"}})",
     .status = 201},
    {.operation_id = "listApps"},
    {.operation_id = "getApp"},
    {.operation_id = "updateApp", .body = R"({"disabled": false,
                 "rate_limits": {"requests_per_s": 1000, "requests_burst": 1000,
                                 "messages_per_s": 5000, "messages_burst": 5000},
                 "webhook": {"url": "http://127.0.0.1:9/hooks/herald"}})"},
    {.operation_id = "updateApp", .body = R"({"webhook": null})"},
    {.operation_id = "updateApp", .body = R"({"disabled": true})"},
    {.operation_id = "createKey", .body = R"({"label": "rotation"})", .status = 201},
    {.operation_id = "createKey", .status = 201},
    {.operation_id = "listKeys"},
    {.operation_id = "revokeKey", .query = "grace_s=60"},
    {.operation_id = "revokeKey"},
    {.operation_id = "adminGetDevice"},
    {.operation_id = "getDrain"},
    // The node drains and, holding no device, exits at once: the only example, sent last (see
    // IsServedAsDocumented).
    {.operation_id = "startDrain",
     .body = R"({"deadline_s": 60, "rate_per_s": 1000})",
     .status = 202},
    {.operation_id = "registerDevice", .body = R"({"device": "phone-3"})", .status = 201},
    {.operation_id = "registerDevice", .body = R"({"device": "phone-3"})", .status = 200},
    {.operation_id = "getDevice"},
    {.operation_id = "unregisterDevice"},
    {.operation_id = "getAlias"},
    {.operation_id = "setAlias", .body = R"({"devices": ["phone-1", "phone-2"]})"},
    {.operation_id = "addAliasDevice", .body = R"({"device": "phone-2"})"},
    {.operation_id = "removeAliasDevice"},
    {.operation_id = "deleteAlias"},
    {.operation_id = "getDeviceTopics"},
    {.operation_id = "getTopic"},
    {.operation_id = "addTopicSubscribers",
     .body = R"({"devices": ["phone-1", "phone-2"], "history": 10})"},
    {.operation_id = "addTopicSubscribers", .body = R"({"devices": ["phone-2"]})"},
    {.operation_id = "listTopicSubscribers"},
    {.operation_id = "listTopicSubscribers", .query = "limit=1"},
    {.operation_id = "listTopicSubscribers", .query = "after=phone-0&limit=1000"},
    {.operation_id = "removeTopicSubscriber"},
    {.operation_id = "sendMessage", .body = R"({"to": {"device": "phone-1"}, "data": {"a": 1}})"},
    {.operation_id = "sendMessage",
     .body = R"({"to": {"devices": ["phone-1", "phone-2"]}, "data": [1, 2], "ttl_s": 3600})"},
    {.operation_id = "sendMessage",
     .body = R"({"to": {"alias": "user-1"}, "data": "text", "encoding": "json"})"},
    {.operation_id = "sendMessage",
     .body = R"({"to": {"device": "phone-1"}, "data": "aGVsbG8=", "encoding": "base64"})"},
    {.operation_id = "sendMessage",
     .body = R"({"to": {"device": "phone-1"}, "data": {}, "collapse_key": "score"})"},
    {.operation_id = "sendMessage",
     .body = R"({"to": {"device": "phone-1"}, "data": {}, "priority": "high"})"},
    {.operation_id = "sendMessage",
     .body = R"({"to": {"device": "phone-1"}, "data": {}, "priority": "normal"})"},
    {.operation_id = "sendMessage",
     .body = R"({"to": {"device": "phone-1"}, "data": {}, "send_at_ms": $IN_AN_HOUR_MS})",
     .status = 202},
    {.operation_id = "sendMessage",
     .body = R"({"to": {"device": "phone-1"}, "data": {}, "ttl_s": 0})"},
    {.operation_id = "sendMessage", .body = R"({"to": {"topic": "sports"}, "data": {}})"},
    {.operation_id = "sendMessage",
     .body = R"x({"to": {"condition": "'a' in topics && !('b' in topics)"}, "data": {}})x"},
    {.operation_id = "sendMessage",
     .body = R"({"to": {"broadcast": true}, "data": {}, "spread_s": 60})"},
    {.operation_id = "getMessage"},
    {.operation_id = "revokeMessage"},
};

std::string body_text(const Example& example) {
  std::string text(example.body.value_or(""));
  const std::string placeholder = "$IN_AN_HOUR_MS";
  if (const auto at = text.find(placeholder); at != std::string::npos) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    text.replace(at, placeholder.size(), std::to_string(now_ms + 3'600'000));
  }
  return text;
}

std::vector<const Example*> examples_of(std::string_view operation_id,
                                        std::optional<std::string_view> of_feature = {}) {
  std::vector<const Example*> out;
  for (const auto& e : kExamples) {
    if (e.operation_id == operation_id && (!of_feature || e.feature == *of_feature)) {
      out.push_back(&e);
    }
  }
  return out;
}

enum class Credential { kNone, kAdminToken, kAppKey, kOtherAppKey, kWrong };

// What a body test re-reads to see that a refused request changed nothing.
std::vector<std::pair<std::string, Credential>> observed_by(std::string_view operation_id) {
  const std::string app(kApp);
  const std::string sender = "/v1/apps/" + app;
  if (operation_id == "createApp") return {{"/v1/admin/apps", Credential::kAdminToken}};
  if (operation_id == "startDrain") return {{"/v1/admin/drain", Credential::kAdminToken}};
  // Nothing: devices' Hellos teach the heartbeat hints, never a GET. Health stands for "still
  // serving" (the list itself carries the time it was issued, so no two answers are alike).
  if (operation_id == "listEndpoints") return {{"/healthz", Credential::kNone}};
  if (operation_id == "updateApp") return {{"/v1/admin/apps/" + app, Credential::kAdminToken}};
  if (operation_id == "createKey" || operation_id == "revokeKey") {
    return {{"/v1/admin/apps/" + app + "/keys", Credential::kAdminToken}};
  }
  if (operation_id == "registerDevice") {
    return {{sender + "/devices/phone-3", Credential::kAppKey}};
  }
  if (operation_id == "setAlias" || operation_id == "addAliasDevice") {
    return {{sender + "/aliases/" + std::string(kAlias), Credential::kAppKey}};
  }
  if (operation_id == "addTopicSubscribers" || operation_id == "listTopicSubscribers") {
    return {{sender + "/topics/" + std::string(kTopic) + "/subscribers", Credential::kAppKey},
            {sender + "/devices/" + std::string(kOtherDevice) + "/topics", Credential::kAppKey}};
  }
  if (operation_id == "sendMessage") {
    // The devices' inbox heads: a stored message moves one.
    return {{sender + "/devices/" + std::string(kDevice), Credential::kAppKey},
            {sender + "/devices/" + std::string(kOtherDevice), Credential::kAppKey}};
  }
  return {};
}

// ----------------------------------------------------------------------------- HTTP answers

struct Answer {
  int status = 0;  // 0: no answer came (the transport failed; `body` says how)
  std::string body;
  bool is_json = false;
  json::value json;
  http::Response raw;

  [[nodiscard]] std::string header(std::string_view name) const {
    const auto it = raw.find(name);
    return it == raw.end() ? "" : std::string(it->value());
  }
  [[nodiscard]] std::string error_field(std::string_view field) const {
    if (!json.is_object()) return "";
    const auto* error = json.as_object().if_contains("error");
    if (error == nullptr || !error->is_object()) return "";
    const auto* value = error->as_object().if_contains(field);
    return value != nullptr && value->is_string() ? std::string(value->as_string()) : "";
  }
  [[nodiscard]] std::string error_code() const { return error_field("code"); }
  [[nodiscard]] std::string describe() const {
    return std::to_string(status) + " " + (body.size() > 300 ? body.substr(0, 300) + "..." : body);
  }
};

std::string percent_encoded(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::string shortened(std::string text) {
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += "\n  " + line;
  return out;
}

// The body is the one shape every error has: {"error": {"code": "...", "message": "..."}}.
void expect_error_shape(const Answer& answer) {
  const json::value schema = json::parse(R"({
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "string", "minLength": 1},
                                            "message": {"type": "string"}}}}})");
  EXPECT_TRUE(answer.is_json) << "an error body that is not JSON: " << answer.describe();
  const auto errors = document().schemas().errors(schema, answer.json);
  EXPECT_TRUE(errors.empty()) << answer.describe() << joined(errors);
}

// ------------------------------------------------------------------------------ the fixture

// A heraldd with what the routes need: the app kApp with a key and a spare key, the devices
// kDevice and kOtherDevice registered, the alias kAlias bound to kDevice, kDevice joined to the
// topic kTopic and a message sent to kDevice. The server's own configured apps (kNewsApp) stand for
// "another app".
class OpenApiContract : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<HeraldServer>();
    client_ = std::make_unique<http::HttpClient>("127.0.0.1", server_->http_port(), 10s);
    std::ifstream token_file(server_->data_dir() / "admin_token");
    std::getline(token_file, admin_token_);
    ASSERT_FALSE(admin_token_.empty()) << "no admin token in " << server_->data_dir();

    const std::string app(kApp);
    const Answer created =
        call("post", "/v1/admin/apps", R"({"id": ")" + app + R"("})", Credential::kAdminToken);
    ASSERT_EQ(created.status, 201) << created.describe();
    app_key_ = created.json.at("key").at("key").as_string();
    for (const auto device : {kDevice, kOtherDevice}) {
      const Answer registered =
          call("post", "/v1/apps/" + app + "/devices",
               R"({"device": ")" + std::string(device) + R"("})", Credential::kAppKey);
      ASSERT_EQ(registered.status, 201) << registered.describe();
    }
    const Answer alias = call("put", "/v1/apps/" + app + "/aliases/" + std::string(kAlias),
                              R"({"devices": ["phone-1"]})", Credential::kAppKey);
    ASSERT_EQ(alias.status, 200) << alias.describe();
    const Answer joined =
        call("post", "/v1/apps/" + app + "/topics/" + std::string(kTopic) + "/subscribers",
             R"({"devices": ["phone-1"]})", Credential::kAppKey);
    ASSERT_EQ(joined.status, 200) << joined.describe();
    const Answer spare = call("post", "/v1/admin/apps/" + app + "/keys", R"({"label": "spare"})",
                              Credential::kAdminToken);
    ASSERT_EQ(spare.status, 201) << spare.describe();
    spare_key_id_ = spare.json.at("id").as_string();
    const Answer sent =
        call("post", "/v1/apps/" + app + "/messages", std::string(kMessage), Credential::kAppKey);
    ASSERT_EQ(sent.status, 200) << sent.describe();
    message_id_ = sent.json.at("id").as_string();
  }

  // One request. `method` as the document spells it ("get"); a body is sent as JSON.
  Answer call(std::string_view method, const std::string& target,
              const std::optional<std::string>& body, Credential credential,
              http::HttpClient::Headers headers = {}) {
    std::string bearer;
    switch (credential) {
      case Credential::kNone:
        break;
      case Credential::kAdminToken:
        bearer = admin_token_;
        break;
      case Credential::kAppKey:
        bearer = app_key_;
        break;
      case Credential::kOtherAppKey:
        bearer = kNewsApp.key;
        break;
      case Credential::kWrong:
        bearer = "hk_not-a-key-of-anything";
        break;
    }
    if (!bearer.empty()) headers.emplace_back("Authorization", "Bearer " + bearer);
    std::string upper(method);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto result =
        client_->request(bhttp::string_to_verb(upper), target, body.value_or(""), headers);
    Answer answer;
    if (!result) {
      answer.body = "no answer: " + result.error().message();
      return answer;
    }
    answer.status = static_cast<int>(result->result_int());
    answer.body = result->body();
    boost::system::error_code ec;
    answer.json = json::parse(answer.body, ec);
    answer.is_json = !ec;
    answer.raw = std::move(*result);
    return answer;
  }

  [[nodiscard]] static Credential credential_of(const Operation& op) {
    if (op.security.empty()) return Credential::kNone;
    return op.security.front() == "adminToken" ? Credential::kAdminToken : Credential::kAppKey;
  }

  // The world's value of each path parameter the document uses.
  [[nodiscard]] std::map<std::string, std::string> path_values() const {
    return {{"app", std::string(kApp)},     {"device", std::string(kDevice)},
            {"alias", std::string(kAlias)}, {"topic", std::string(kTopic)},
            {"key_id", spare_key_id_},      {"id", message_id_}};
  }

  // `op`'s path with its parameters filled in (from `values`, else the world's), percent-encoded.
  [[nodiscard]] std::string target_of(const Operation& op,
                                      const std::map<std::string, std::string>& values = {},
                                      std::string_view query = "") const {
    const auto world = path_values();
    std::string target;
    std::string_view rest = op.path;
    while (!rest.empty()) {
      const auto open = rest.find('{');
      const auto close = rest.find('}', open);
      if (open == std::string_view::npos || close == std::string_view::npos) {
        target += rest;
        break;
      }
      target += rest.substr(0, open);
      const std::string name(rest.substr(open + 1, close - open - 1));
      if (const auto it = values.find(name); it != values.end()) {
        target += percent_encoded(it->second);
      } else if (const auto w = world.find(name); w != world.end()) {
        target += percent_encoded(w->second);
      } else {
        ADD_FAILURE() << "no value for the path parameter {" << name << "}: add it to path_values";
      }
      rest.remove_prefix(close + 1);
    }
    if (!query.empty()) target += "?" + std::string(query);
    return target;
  }

  Answer send(const Operation& op, const Example& example, Credential credential) {
    std::optional<std::string> body;
    if (example.body) body = body_text(example);
    return call(op.method, target_of(op, {}, example.query), body, credential);
  }

  // What the API shows of the state `operation_id` would change (observed_by).
  std::vector<std::string> snapshot(std::string_view operation_id) {
    std::vector<std::string> out;
    for (const auto& [target, credential] : observed_by(operation_id)) {
      out.push_back(target + " -> " + call("get", target, std::nullopt, credential).describe());
    }
    return out;
  }

  // A refusal of `op`: the error body has the documented shape, and what the API shows of the
  // state `op` would change is still `before` (which then follows it, so that each request
  // that changed something is reported once).
  void expect_refused_unchanged(const Operation& op, const Answer& answer,
                                std::vector<std::string>& before) {
    expect_error_shape(answer);
    expect_documented(op, answer);
    const auto after = snapshot(op.operation_id);
    EXPECT_EQ(after, before) << "a refused request changed something";
    before = after;
  }

  // The head of `device`'s inbox, from the device lookup.
  std::int64_t inbox_head(std::string_view device) {
    const Answer a =
        call("get", "/v1/apps/" + std::string(kApp) + "/devices/" + std::string(device),
             std::nullopt, Credential::kAppKey);
    if (a.status != 200) {
      ADD_FAILURE() << "device lookup: " << a.describe();
      return -1;
    }
    return a.json.at("streams").at(0).at("head_seq").to_number<std::int64_t>();
  }

  // The answer's status is one `op` documents; its body, when the document gives a schema for
  // that status, is JSON matching it; the headers it documents are there.
  static void expect_documented(const Operation& op, const Answer& answer) {
    ASSERT_NE(answer.status, 0) << answer.body;
    const auto response = op.responses.find(std::to_string(answer.status));
    ASSERT_TRUE(response != op.responses.end())
        << op.title() << " does not document the status it answered: " << answer.describe();
    for (const auto& header : response->second.headers) {
      EXPECT_NE(answer.raw.find(header), answer.raw.end())
          << "no " << header << " header in " << answer.describe();
    }
    if (response->second.schema.is_null()) return;
    EXPECT_TRUE(answer.header("Content-Type").starts_with("application/json"))
        << "Content-Type: " << answer.header("Content-Type");
    ASSERT_TRUE(answer.is_json) << "not JSON: " << answer.describe();
    const auto errors = document().schemas().errors(response->second.schema, answer.json);
    EXPECT_TRUE(errors.empty()) << "the body breaks the documented schema of " << op.title() << " "
                                << answer.status << ": " << answer.describe() << joined(errors);
  }

  // The request reached a handler of the route: the router neither missed it nor the method.
  static void expect_route_exists(const Operation& op, const Answer& answer) {
    EXPECT_FALSE(answer.status == 404 && answer.error_code() == "not_found")
        << op.title() << " has no route in the server: " << answer.describe();
    EXPECT_NE(answer.status, 405) << op.title() << " is not allowed: " << answer.describe();
  }

  // Why `answer` shows `example`'s feature is missing, or nothing.
  static std::optional<std::string> missing_feature(const Example& example, const Answer& answer) {
    if (example.feature.empty()) return std::nullopt;
    const Feature& f = feature(example.feature);
    const bool route = f.missing_code == "not_found";
    if (answer.error_code() != f.missing_code || (route && answer.status != 404)) {
      return std::nullopt;
    }
    if (answer.error_field("message").find(f.missing_text) == std::string::npos) {
      return std::nullopt;
    }
    return std::string(f.what) + " is not implemented yet: the server answers " + answer.describe();
  }

  std::unique_ptr<HeraldServer> server_;
  std::unique_ptr<http::HttpClient> client_;
  std::string admin_token_;
  std::string app_key_;
  std::string spare_key_id_;
  std::string message_id_;
};

// --------------------------------------------------------------------- cases, by operation

// The well-formed requests of one operation that share a feature ("" = what must work now).
struct OperationCase {
  std::string operation_id;
  std::string feature;
  std::string name;  // the test's name: the operationId, and the feature when it has several
};

void PrintTo(const OperationCase& c, std::ostream* out) { *out << c.name; }

// Every operation of the document, one case per feature among its examples (an operation without
// examples gets one case, which fails saying so). Empty when the document cannot be read: the
// document tests below say why.
std::vector<OperationCase> operation_cases() {
  std::vector<OperationCase> cases;
  try {
    for (const auto& op : document().operations()) {
      std::set<std::string> features;
      for (const auto* example : examples_of(op.operation_id)) {
        features.emplace(example->feature);
      }
      if (features.empty()) features.emplace();
      for (const auto& f : features) {
        const bool named = features.size() > 1 && !f.empty();
        cases.push_back({op.operation_id, f, named ? op.operation_id + "_" + f : op.operation_id});
      }
    }
  } catch (const std::exception&) {
    cases.clear();
  }
  return cases;
}

std::vector<std::string> body_operation_cases() {
  std::vector<std::string> ids;
  try {
    for (const auto& op : document().operations()) {
      if (op.has_body()) ids.push_back(op.operation_id);
    }
  } catch (const std::exception&) {
    ids.clear();
  }
  return ids;
}

class DocumentedOperation : public OpenApiContract,
                            public ::testing::WithParamInterface<OperationCase> {};

TEST_P(DocumentedOperation, IsServedAsDocumented) {
  const OperationCase& c = GetParam();
  const Operation& op = operation(c.operation_id);
  const auto examples = examples_of(c.operation_id, c.feature);
  ASSERT_FALSE(examples.empty()) << "no well-formed example request for " << op.title()
                                 << ": add one to kExamples";
  // The world's values are what the document says such values look like (ids the server made).
  for (const auto& p : op.parameters) {
    if (p.in != "path") continue;
    const auto errors =
        document().schemas().errors(p.schema, json::value(path_values().at(p.name)));
    EXPECT_TRUE(errors.empty()) << "{" << p.name << "}" << joined(errors);
  }

  // Refused credentials first: a well-formed example may end the server (startDrain).
  if (!op.security.empty()) {
    for (const Credential wrong : {Credential::kNone, Credential::kWrong}) {
      SCOPED_TRACE(wrong == Credential::kNone ? "without a credential" : "with a wrong credential");
      const Answer answer = send(op, *examples.front(), wrong);
      EXPECT_EQ(answer.status, 401) << answer.describe();
      EXPECT_EQ(answer.error_code(), "unauthorized");
      expect_documented(op, answer);
    }
  }
  for (const Example* example : examples) {
    SCOPED_TRACE(op.title() + (example->query.empty() ? "" : "?" + std::string(example->query)) +
                 " " + body_text(*example));
    const Answer answer = send(op, *example, credential_of(op));
    if (const auto missing = missing_feature(*example, answer)) GTEST_SKIP() << *missing;
    expect_route_exists(op, answer);
    expect_documented(op, answer);
    if (example->status != 0) {
      EXPECT_EQ(answer.status, example->status) << answer.describe();
    } else {
      EXPECT_EQ(answer.status / 100, 2) << answer.describe();
    }
  }

  if (op.security.empty() || credential_of(op) != Credential::kAppKey) return;
  const Example& example = *examples.front();
  {
    SCOPED_TRACE("with another app's key");
    const Answer answer = send(op, example, Credential::kOtherAppKey);
    EXPECT_EQ(answer.status, 404) << "a key opens its own app only: " << answer.describe();
    expect_documented(op, answer);
  }
  const std::string admin_app = "/v1/admin/apps/" + std::string(kApp);
  {
    SCOPED_TRACE("over the app's rate limit");
    // One request in the bucket, refilled in 1000 s: the second request at the latest is over.
    const Answer limited = call(
        "patch", admin_app, R"({"rate_limits": {"requests_per_s": 0.001, "requests_burst": 1}})",
        Credential::kAdminToken);
    ASSERT_EQ(limited.status, 200) << limited.describe();
    Answer answer;
    for (int attempt = 0; attempt < 3 && answer.status != 429; ++attempt) {
      answer = send(op, example, Credential::kAppKey);
    }
    EXPECT_EQ(answer.status, 429) << answer.describe();
    EXPECT_EQ(answer.error_code(), "rate_limited");
    expect_documented(op, answer);
  }
  {
    SCOPED_TRACE("for a disabled app");
    const Answer disabled =
        call("patch", admin_app, R"({"disabled": true})", Credential::kAdminToken);
    ASSERT_EQ(disabled.status, 200) << disabled.describe();
    const Answer answer = send(op, example, Credential::kAppKey);
    EXPECT_EQ(answer.status, 403) << answer.describe();
    EXPECT_EQ(answer.error_code(), "app_disabled");
    expect_documented(op, answer);
  }
}

INSTANTIATE_TEST_SUITE_P(OpenApi, DocumentedOperation, ::testing::ValuesIn(operation_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

// ------------------------------------------------------------------ bodies the schema rejects

class DocumentedRequestBody : public OpenApiContract,
                              public ::testing::WithParamInterface<std::string> {};

TEST_P(DocumentedRequestBody, RefusesEveryBodyItsSchemaRejectsAndChangesNothing) {
  const Operation& op = operation(GetParam());
  const auto& schemas = document().schemas();
  const SchemaMutator mutator(schemas);

  struct Bad {
    std::string what;
    std::string body;
    bool over_size = false;
  };
  std::vector<Bad> bad = {{"not JSON at all", "this is not JSON"},
                          {"truncated JSON", R"({"to": {"device": )"}};
  if (op.body_required) bad.push_back({"no body", ""});
  std::set<std::string> seen;
  std::size_t bases = 0;
  for (const Example* example : examples_of(op.operation_id, "")) {
    if (!example->body) continue;
    const json::value base = json::parse(body_text(*example));
    const auto errors = schemas.errors(op.body_schema, base);
    ASSERT_TRUE(errors.empty()) << "the example " << body_text(*example) << " breaks the document"
                                << joined(errors);
    ++bases;
    for (auto& m : mutator.mutations(op.body_schema, base)) {
      std::string body = json::serialize(m.value);
      if (!seen.insert(body).second) continue;
      if (schemas.valid(op.body_schema, m.value)) {
        ADD_FAILURE() << "SchemaMutator made a valid body (" << m.what << "): " << body;
        continue;
      }
      bad.push_back({std::move(m.what), std::move(body), m.over_size});
    }
  }
  ASSERT_GT(bases, 0u) << "no example body for " << op.title() << " in kExamples";
  auto before = snapshot(op.operation_id);
  ASSERT_FALSE(before.empty()) << "nothing to re-read for " << op.title()
                               << ": add it to observed_by";

  RecordProperty("refused_bodies", static_cast<int>(bad.size()));
  const std::string target = target_of(op);
  for (const auto& b : bad) {
    SCOPED_TRACE(b.what + ": " + shortened(b.body));
    const Answer answer = call(op.method, target, b.body, credential_of(op));
    const bool size_limit = b.over_size && answer.status == 413;
    EXPECT_TRUE(answer.status == 400 || size_limit) << answer.describe();
    expect_refused_unchanged(op, answer, before);
  }
}

INSTANTIATE_TEST_SUITE_P(OpenApi, DocumentedRequestBody,
                         ::testing::ValuesIn(body_operation_cases()),
                         [](const auto& param_info) { return param_info.param; });

// ------------------------------------------------------------------------------ parameters

TEST_F(OpenApiContract, PathParametersOutsideTheirPatternAreRefusedWith4xx) {
  const SchemaMutator mutator(document().schemas());
  for (const auto& op : document().operations()) {
    const auto examples = examples_of(op.operation_id);
    ASSERT_FALSE(examples.empty()) << op.title();
    std::optional<std::string> body;
    if (examples.front()->body) body = body_text(*examples.front());
    for (const auto& p : op.parameters) {
      if (p.in != "path") continue;
      const json::value valid(path_values().at(p.name));
      for (const auto& m : mutator.mutations(p.schema, valid, "{" + p.name + "}")) {
        if (!m.value.is_string()) continue;  // a path segment is text
        const std::string target = target_of(op, {{p.name, std::string(m.value.as_string())}});
        SCOPED_TRACE(op.title() + ": " + shortened(target) + " (" + m.what + ")");
        const Answer answer = call(op.method, target, body, credential_of(op));
        EXPECT_EQ(answer.status / 100, 4) << answer.describe();
        expect_error_shape(answer);
        expect_documented(op, answer);
      }
    }
  }
}

TEST_F(OpenApiContract, QueryParametersOutsideTheirSchemaAreRefusedWith400AndChangeNothing) {
  const auto& schemas = document().schemas();
  const SchemaMutator mutator(schemas);
  std::size_t checked = 0;
  for (const auto& op : document().operations()) {
    for (const auto& p : op.parameters) {
      if (p.in != "query") continue;
      const auto valid = mutator.example(p.schema);
      ASSERT_TRUE(valid) << "no example value for ?" << p.name;
      auto before = snapshot(op.operation_id);
      ASSERT_FALSE(before.empty()) << "nothing to re-read for " << op.title();
      for (const auto& m : mutator.mutations(p.schema, *valid, "?" + p.name)) {
        // What the query says, and the JSON value it stands for (text that is no JSON: a string).
        const std::string text =
            m.value.is_string() ? std::string(m.value.as_string()) : json::serialize(m.value);
        boost::system::error_code ec;
        json::value meant = json::parse(text, ec);
        if (ec) meant = json::string(text);
        if (schemas.valid(p.schema, meant)) continue;  // "12345" reads as the number 12345
        // A query value is text: for a string parameter "null" is the string "null".
        if (schemas.valid(p.schema, json::string(text))) continue;
        const std::string target = target_of(op, {}, p.name + "=" + percent_encoded(text));
        SCOPED_TRACE(op.title() + " " + target + " (" + m.what + ")");
        const Answer answer = call(op.method, target, std::nullopt, credential_of(op));
        EXPECT_EQ(answer.status, 400) << answer.describe();
        expect_refused_unchanged(op, answer, before);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0u) << "the document has no query parameter with constraints any more";
}

TEST_F(OpenApiContract, HeaderParametersOutsideTheirSchemaAreRefusedWith400AndChangeNothing) {
  const auto& schemas = document().schemas();
  const SchemaMutator mutator(schemas);
  std::size_t checked = 0;
  for (const auto& op : document().operations()) {
    for (const auto& p : op.parameters) {
      if (p.in != "header") continue;
      const auto examples = examples_of(op.operation_id, "");
      ASSERT_FALSE(examples.empty()) << op.title();
      std::optional<std::string> body;
      if (examples.front()->body) body = body_text(*examples.front());
      const auto valid = mutator.example(p.schema);
      ASSERT_TRUE(valid) << "no example value for the header " << p.name;
      auto before = snapshot(op.operation_id);
      ASSERT_FALSE(before.empty()) << "nothing to re-read for " << op.title();
      for (const auto& m : mutator.mutations(p.schema, *valid, p.name)) {
        if (!m.value.is_string()) continue;  // a header is text
        const std::string value(m.value.as_string());
        // Only what HTTP can carry as it is: no control characters, no blanks at either end.
        const bool sendable =
            std::none_of(
                value.begin(), value.end(),
                [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }) &&
            (value.empty() || (value.front() != ' ' && value.back() != ' '));
        if (!sendable) continue;
        SCOPED_TRACE(op.title() + " with " + p.name + ": \"" + shortened(value) + "\" (" + m.what +
                     ")");
        const Answer answer =
            call(op.method, target_of(op), body, credential_of(op), {{p.name, value}});
        EXPECT_EQ(answer.status, 400) << answer.describe();
        expect_refused_unchanged(op, answer, before);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0u) << "the document has no header parameter with constraints any more";
}

// ---------------------------------------------------------------------------- idempotency

TEST_F(OpenApiContract, ARetriedSendWithTheSameIdempotencyKeyStoresOneMessageAndReplaysTheAnswer) {
  const Operation& op = operation("sendMessage");
  const std::int64_t head = inbox_head(kDevice);
  const http::HttpClient::Headers key = {{"Idempotency-Key", "order-42"}};
  const Answer first =
      call(op.method, target_of(op), std::string(kMessage), Credential::kAppKey, key);
  EXPECT_EQ(first.status, 200) << first.describe();
  expect_documented(op, first);
  const Answer again =
      call(op.method, target_of(op), std::string(kMessage), Credential::kAppKey, key);
  EXPECT_EQ(again.status, first.status) << again.describe();
  expect_documented(op, again);
  EXPECT_EQ(again.header("Idempotent-Replayed"), "true");
  ASSERT_TRUE(first.is_json && again.is_json);
  EXPECT_EQ(again.json.at("id"), first.json.at("id")) << "a second message was created";
  EXPECT_EQ(inbox_head(kDevice), head + 1);
}

TEST_F(OpenApiContract, AnIdempotencyKeyReusedWithAnotherBodyIsRefusedWith409AndStoresNothing) {
  const Operation& op = operation("sendMessage");
  const std::int64_t head = inbox_head(kDevice);
  const http::HttpClient::Headers key = {{"Idempotency-Key", "order-43"}};
  const Answer first =
      call(op.method, target_of(op), std::string(kMessage), Credential::kAppKey, key);
  EXPECT_EQ(first.status, 200) << first.describe();
  const Answer other =
      call(op.method, target_of(op), R"({"to": {"device": "phone-1"}, "data": {"n": 2}})",
           Credential::kAppKey, key);
  EXPECT_EQ(other.status, 409) << other.describe();
  EXPECT_EQ(other.error_code(), "idempotency_key_reused");
  expect_documented(op, other);
  EXPECT_EQ(inbox_head(kDevice), head + 1);
}

// ------------------------------------------------------------------------- scheduled sends

TEST_F(OpenApiContract, AScheduledMessageIsShownAndCancelledAsDocumented) {
  const Operation& send_op = operation("sendMessage");
  const Operation& get_op = operation("getMessage");
  const Operation& revoke_op = operation("revokeMessage");
  const Example scheduled{.operation_id = "sendMessage",
                          .body = R"({"to": {"devices": ["phone-1", "phone-2"]}, "data": {},
                                      "send_at_ms": $IN_AN_HOUR_MS})"};
  const Answer accepted = send(send_op, scheduled, Credential::kAppKey);
  ASSERT_EQ(accepted.status, 202) << accepted.describe();
  expect_documented(send_op, accepted);
  EXPECT_EQ(accepted.json.at("state"), "scheduled");
  const std::string id(accepted.json.at("id").as_string());

  const Answer got =
      call("get", target_of(get_op, {{"id", id}}), std::nullopt, Credential::kAppKey);
  ASSERT_EQ(got.status, 200) << got.describe();
  expect_documented(get_op, got);
  EXPECT_EQ(got.json.at("state"), "scheduled");
  EXPECT_EQ(got.json.at("send_at_ms"), accepted.json.at("send_at_ms"));

  const Answer cancelled =
      call("delete", target_of(revoke_op, {{"id", id}}), std::nullopt, Credential::kAppKey);
  ASSERT_EQ(cancelled.status, 200) << cancelled.describe();
  expect_documented(revoke_op, cancelled);
  EXPECT_EQ(cancelled.json.at("state"), "cancelled");
  for (const auto& t : cancelled.json.at("targets").as_array()) {
    EXPECT_EQ(t.at("state"), "cancelled");
  }
}

TEST_F(OpenApiContract, ASendTimeBeyondTheHorizonIsRefusedWithADocumentedError) {
  const Operation& op = operation("sendMessage");
  const Example far{.operation_id = "sendMessage",
                    .body = R"({"to": {"device": "phone-1"}, "data": {},
                                "send_at_ms": 99999999999999})"};
  const Answer answer = send(op, far, Credential::kAppKey);
  EXPECT_EQ(answer.status, 400) << answer.describe();
  EXPECT_EQ(answer.error_code(), "bad_send_at");
  expect_documented(op, answer);
}

// ------------------------------------------------------------ the document itself (no server)

TEST(OpenApiDocument, UsesOnlySchemaKeywordsTheValidatorChecks) {
  std::vector<std::string> unsupported;
  auto walk = [&unsupported](const json::value& schema, const std::string& at) {
    for (auto& u : JsonSchemaValidator::unsupported_keywords(schema, at)) {
      unsupported.push_back(std::move(u));
    }
  };
  const auto& components = document().root().at("components").as_object();
  for (const auto& [name, schema] : components.at("schemas").as_object()) {
    walk(schema, "#/components/schemas/" + std::string(name));
  }
  for (const auto& op : document().operations()) {
    walk(op.body_schema, op.operation_id + "/requestBody");
    for (const auto& p : op.parameters) walk(p.schema, op.operation_id + "/" + p.name);
    for (const auto& [status, response] : op.responses) {
      walk(response.schema, op.operation_id + "/" + status);
    }
  }
  EXPECT_TRUE(unsupported.empty()) << "teach JsonSchemaValidator these:" << joined(unsupported);
}

TEST(OpenApiDocument, EveryOperationHasExamplesThatMatchItAndUseEveryPropertyOfItsBody) {
  const auto& schemas = document().schemas();
  for (const auto& example : kExamples) {
    EXPECT_NE(document().find(example.operation_id), nullptr)
        << "kExamples names an operation the document does not have: " << example.operation_id;
  }
  for (const auto& op : document().operations()) {
    SCOPED_TRACE(op.title());
    const auto examples = examples_of(op.operation_id);
    EXPECT_FALSE(examples.empty()) << "no example request in kExamples";
    if (!op.has_body()) continue;
    std::set<std::string> used;
    for (const Example* example : examples) {
      if (!example->body) {
        EXPECT_FALSE(op.body_required) << "an example without the required body";
        continue;
      }
      const json::value body = json::parse(body_text(*example));
      const auto errors = schemas.errors(op.body_schema, body);
      EXPECT_TRUE(errors.empty()) << body_text(*example) << joined(errors);
      for (const auto& kv : body.as_object()) used.emplace(kv.key());
    }
    const auto& resolved = schemas.resolve(op.body_schema).as_object();
    for (const auto& kv : resolved.at("properties").as_object()) {
      EXPECT_TRUE(used.contains(std::string(kv.key())))
          << "no example sends the property '" << kv.key() << "'";
    }
  }
}

TEST(OpenApiDocument, ListsTheRoutesTheServerIsKnownToServe) {
  // A guard against the document losing operations (or the loader missing them): every route the
  // sender and admin APIs implement is in it.
  for (const char* id : {"health",
                         "readiness",
                         "metrics",
                         "listEndpoints",
                         "getNodeLoad",
                         "createApp",
                         "listApps",
                         "getApp",
                         "updateApp",
                         "createKey",
                         "listKeys",
                         "revokeKey",
                         "adminGetDevice",
                         "getDrain",
                         "startDrain",
                         "registerDevice",
                         "getDevice",
                         "unregisterDevice",
                         "getAlias",
                         "setAlias",
                         "deleteAlias",
                         "addAliasDevice",
                         "removeAliasDevice",
                         "sendMessage",
                         "getDeviceTopics",
                         "getTopic",
                         "addTopicSubscribers",
                         "listTopicSubscribers",
                         "removeTopicSubscriber"}) {
    EXPECT_NE(document().find(id), nullptr) << id;
  }
}

}  // namespace
}  // namespace herald::testing
