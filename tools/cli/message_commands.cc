// Messages: push, message get, message revoke.
#include <array>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include "cli/command.h"
#include "cli/format.h"
#include "cli/table.h"

namespace herald::cli {

namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

// The flags that name whom a message is for; push takes exactly one of them (--device may
// repeat). The last three name a shared audience: the message is stored once, in a stream that
// each of its devices reads.
constexpr std::array<std::string_view, 5> kTargetFlags = {"device", "alias", "topic", "condition",
                                                          "broadcast"};

// Whether push names a shared audience: a topic, a condition or every device of the app.
bool to_shared_audience(const Args& args) {
  return args.has("topic") || args.has("condition") || args.has("broadcast");
}

// {"device": ID}, {"devices": [ID, ...]}, {"alias": NAME}, {"topic": NAME}, {"condition": EXPR}
// or {"broadcast": true}. The server checks the names and the condition's syntax.
json::object parse_target(const Args& args) {
  std::string given;
  for (const std::string_view flag : kTargetFlags) {
    if (!args.has(flag)) continue;
    if (!given.empty()) {
      throw UsageError("push takes one target, not both " + given + " and --" + std::string(flag));
    }
    given = "--" + std::string(flag);
  }
  if (given.empty()) {
    throw UsageError(
        "push needs a target: --device ID (one or more), --alias NAME, --topic TOPIC, "
        "--condition EXPR or --broadcast");
  }
  if (args.has("broadcast")) return json::object{{"broadcast", true}};
  for (const std::string_view flag : {"alias", "topic", "condition"}) {
    if (auto name = args.get(flag)) return json::object{{flag, *name}};
  }
  const auto devices = args.all("device");
  if (devices.size() == 1) return json::object{{"device", devices.front()}};
  return device_list(args);
}

Call build_push(const Args& args) {
  json::object body;
  body["to"] = parse_target(args);
  if (auto spread = args.integer("spread")) {
    if (!to_shared_audience(args)) {
      throw UsageError(
          "--spread is for --topic, --condition and --broadcast: a message to devices or an "
          "alias notifies them at once");
    }
    body["spread_s"] = *spread;
  }
  const auto data = args.get("data");
  const auto base64 = args.get("data-base64");
  if (data && base64) throw UsageError("push takes --data or --data-base64, not both");
  if (data) {
    boost::system::error_code ec;
    json::value value = json::parse(*data, ec);
    if (ec) {
      throw UsageError("--data is not valid JSON (" + ec.message() +
                       "); to send text, quote it: --data '\"hello\"'");
    }
    body["data"] = std::move(value);
  } else if (base64) {
    // The server checks the base64; the CLI sends it as it is.
    body["data"] = *base64;
    body["encoding"] = "base64";
  } else {
    throw UsageError("push needs --data JSON or --data-base64 B64");
  }
  if (auto ttl = args.integer("ttl")) body["ttl_s"] = *ttl;
  if (auto key = args.get("collapse-key")) body["collapse_key"] = *key;
  if (auto priority = args.get("priority")) {
    if (*priority != "high" && *priority != "normal") {
      throw UsageError("--priority must be high or normal, not '" + *priority + "'");
    }
    body["priority"] = *priority;
  }
  if (auto at = args.integer("send-at")) body["send_at_ms"] = *at;
  Call call{.verb = bhttp::verb::post,
            .target = app_path(args) + "/messages",
            .body = std::move(body),
            .headers = {}};
  if (auto key = args.get("idempotency-key")) call.headers.emplace_back("Idempotency-Key", *key);
  return call;
}

// Whether any element of `rows` has the member `key`.
bool any_has(const json::array& rows, std::string_view key) {
  for (const json::value& r : rows) {
    if (field(r, key) != nullptr) return true;
  }
  return false;
}

// A topic, condition or broadcast message's place in the one stream its devices read: the
// stream's id (in push's answer only), epoch and sequence number.
void add_stream_fields(const json::value& stream, Table& fields) {
  if (const auto* id = field(stream, "stream")) fields.add_row({"stream", text(id)});
  fields.add_row({"epoch", text(field(stream, "epoch"))});
  fields.add_row({"seq", text(field(stream, "seq"))});
}

void render_push(const json::value& body, std::ostream& out) {
  Table fields;
  fields.add_row({"id", text(field(body, "id"))});
  if (const auto* state = field(body, "state")) fields.add_row({"state", text(state)});
  if (const auto* at = field(body, "send_at_ms")) fields.add_row({"send at", time_text(at)});
  if (const auto* stream = field(body, "stream")) add_stream_fields(*stream, fields);
  fields.write(out);

  const json::array& targets = body.at("targets").as_array();
  // A shared message has no device of its own: its audience reads the stream.
  if (targets.empty()) return;
  // "dropped" only appears for ttl 0 and an offline device: a column only when it does.
  const bool dropped = any_has(targets, "dropped");
  Table table;
  std::vector<std::string> header = {"DEVICE", "EPOCH", "SEQ", "ONLINE"};
  if (dropped) header.emplace_back("DROPPED");
  table.add_row(std::move(header));
  for (const json::value& t : targets) {
    std::vector<std::string> row = {text(field(t, "device")), text(field(t, "epoch")),
                                    text(field(t, "seq")), text(field(t, "online"))};
    if (dropped) row.push_back(text(field(t, "dropped")));
    table.add_row(std::move(row));
  }
  out << '\n';
  table.write(out);
}

std::string message_path(const Args& args) {
  return app_path(args) + "/messages/" + segment(args.required("id"));
}

Call build_get(const Args& args) {
  return Call{.verb = bhttp::verb::get, .target = message_path(args), .body = {}, .headers = {}};
}

Call build_revoke(const Args& args) {
  return Call{
      .verb = bhttp::verb::delete_, .target = message_path(args), .body = {}, .headers = {}};
}

// "topic news", "condition 'a' in topics && 'b' in topics" or "broadcast".
std::string audience_text(const json::value& audience) {
  if (const auto* topic = field(audience, "topic")) return "topic " + text(topic);
  if (const auto* condition = field(audience, "condition")) return "condition " + text(condition);
  if (const auto* all = field(audience, "broadcast"); all != nullptr && all->is_bool()) {
    return all->get_bool() ? "broadcast" : "-";
  }
  return text(&audience);
}

// A shared message's audience, its place in the stream and its delivery counted. targeted is
// "-" until the server counted the audience (just after the send); expired appears once the
// message expired (targeted less acked).
void add_audience_fields(const json::value& body, const json::value& audience, Table& fields) {
  fields.add_row({"audience", audience_text(audience)});
  if (const auto* stream = field(body, "stream")) add_stream_fields(*stream, fields);
  const json::value* stats = field(body, "stats");
  if (stats == nullptr) return;
  for (const std::string_view key : {"targeted", "delivered", "acked"}) {
    fields.add_row({std::string(key), text(field(*stats, key))});
  }
  if (const auto* expired = field(*stats, "expired")) fields.add_row({"expired", text(expired)});
}

// A MessageStatus: the message, then each target with the time of each stage since the message
// was created (+12ms), then the totals per state. A message that never reached an inbox
// (scheduled, cancelled) has no stage columns but the cancel's. A topic, condition or broadcast
// message has no targets: its audience and counts instead.
void render_status(const json::value& body, std::ostream& out) {
  const json::value* created = field(body, "created_at_ms");
  const std::string state = text(field(body, "state"));
  const bool in_inbox = state != "scheduled" && state != "cancelled";
  Table fields;
  fields.add_row({"id", text(field(body, "id"))});
  fields.add_row({"state", state});
  fields.add_row({"created", time_text(created)});
  if (const auto* v = field(body, "send_at_ms")) fields.add_row({"send at", time_text(v)});
  if (const auto* v = field(body, "cancelled_at_ms")) fields.add_row({"cancelled", time_text(v)});
  if (const auto* v = field(body, "expires_at_ms")) fields.add_row({"expires", time_text(v)});
  const json::value* audience = field(body, "audience");
  if (audience != nullptr) add_audience_fields(body, *audience, fields);
  // A shared message's totals are empty (it has no targets): its counts say it all.
  if (const json::value* totals = field(body, "totals");
      totals && totals->is_object() && !(audience != nullptr && totals->get_object().empty())) {
    std::string line;
    for (const auto& kv : totals->get_object()) {
      line += (line.empty() ? "" : ", ") + std::string(kv.key()) + " " + text(&kv.value());
    }
    fields.add_row({"totals", line.empty() ? "-" : line});
  }
  fields.write(out);

  const json::value* targets = field(body, "targets");
  if (targets == nullptr || !targets->is_array() || targets->get_array().empty()) return;
  const json::array& rows = targets->get_array();
  struct Stage {
    std::string_view header;
    std::string_view key;
    bool always;  // a column even when no target has the field
  };
  static constexpr std::array kStages = {
      Stage{"STORED", "stored_at_ms", true},        Stage{"NOTIFIED", "notified_at_ms", true},
      Stage{"DELIVERED", "delivered_at_ms", true},  Stage{"ACKED", "acked_at_ms", true},
      Stage{"EXPIRED", "expired_at_ms", false},     Stage{"REVOKED", "revoked_at_ms", false},
      Stage{"CANCELLED", "cancelled_at_ms", false},
  };
  std::vector<const Stage*> stages;
  for (const Stage& s : kStages) {
    if ((s.always && in_inbox) || any_has(rows, s.key)) stages.push_back(&s);
  }
  // Why a target got nothing: a column only when one did not.
  const bool dropped = any_has(rows, "dropped_reason");
  Table table;
  std::vector<std::string> header = {"DEVICE", "EPOCH", "SEQ", "STATE"};
  for (const Stage* s : stages) header.emplace_back(s->header);
  if (dropped) header.emplace_back("DROPPED");
  table.add_row(std::move(header));
  for (const json::value& t : rows) {
    std::vector<std::string> row = {text(field(t, "device")), text(field(t, "epoch")),
                                    text(field(t, "seq")), text(field(t, "state"))};
    for (const Stage* s : stages) {
      const json::value* at = field(t, s->key);
      row.push_back(created != nullptr && created->is_int64()
                        ? offset_text(at, created->get_int64())
                        : time_text(at));
    }
    if (dropped) row.push_back(text(field(t, "dropped_reason")));
    table.add_row(std::move(row));
  }
  out << '\n';
  table.write(out);
}

}  // namespace

std::vector<Command> message_commands() {
  return {
      Command{
          .words = {"push"},
          .synopsis = "--app APP (--device ID ... | --alias NAME | --topic TOPIC | "
                      "--condition EXPR | --broadcast) (--data JSON | --data-base64 B64) "
                      "[--ttl SECONDS] [--spread SECONDS] [--collapse-key KEY] "
                      "[--priority high|normal] [--send-at MS] [--idempotency-key KEY]",
          .summary = "Sends a message to a device, to several, to an alias's devices, to a "
                     "topic's, to those whose topics satisfy a condition, or to all; prints its "
                     "id and each device's sequence number (a shared message's, in its stream).",
          .details =
              "The answer comes once the message is stored. --data is any JSON value: quote "
              "text as JSON ('\"hello\"'). One --device sends {\"device\": ID}, several send "
              "{\"devices\": [...]} (at most 1000). A message to a --topic, a --condition "
              "(\"'a' in topics && !('b' in topics)\") or a --broadcast (every device registered "
              "for the app) is stored once, in one stream its devices read; 'message get' counts "
              "its delivery. --spread SECONDS (at most 3600) paces such a message's notifies "
              "over that time, so its devices do not all pull at once. With --send-at (Unix ms) "
              "more than 1 s ahead, at most 28 days, a message to devices or an alias is "
              "scheduled (state scheduled): kept by the server, across restarts, and sent then; "
              "'message revoke' cancels it until then. Retrying with the same "
              "--idempotency-key within 24 h sends nothing twice and prints the first answer "
              "again.",
          .route = "POST /v1/apps/{app}/messages",
          .flags = {"app", "device", "alias", "topic", "condition", "broadcast", "data",
                    "data-base64", "ttl", "spread", "collapse-key", "priority", "send-at",
                    "idempotency-key"},
          .credential = Credential::kApiKey,
          .build = build_push,
          .render = render_push,
      },
      Command{
          .words = {"message", "get"},
          .synopsis = "--app APP --id ID",
          .summary = "Shows a message's state for each device, with the time of each stage; "
                     "for a topic, condition or broadcast message, its audience and counts.",
          .details = "Stage times are since the message was created: +12ms. A shared message "
                     "counts the devices it was for (targeted, - until counted just after the "
                     "send), pull answers that carried it (delivered), devices that acked it, "
                     "and once it expired, those that never did (expired).",
          .route = "GET /v1/apps/{app}/messages/{id}",
          .flags = {"app", "id"},
          .credential = Credential::kApiKey,
          .build = build_get,
          .render = render_status,
      },
      Command{
          .words = {"message", "revoke"},
          .synopsis = "--app APP --id ID",
          .summary = "Revokes a message where not yet delivered, recalls it where it may have "
                     "been.",
          .details = "A scheduled message not yet sent is cancelled (state cancelled): it is "
                     "never sent. Prints what happened for each device (cancelled, revoked or "
                     "recalled).",
          .route = "DELETE /v1/apps/{app}/messages/{id}",
          .flags = {"app", "id"},
          .credential = Credential::kApiKey,
          .build = build_revoke,
          .render = render_status,
      },
  };
}

}  // namespace herald::cli
