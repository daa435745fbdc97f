// Topics: topic subscribe, unsubscribe, subscribers, get.
#include <string>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "cli/command.h"
#include "cli/format.h"
#include "cli/table.h"

namespace herald::cli {

namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

std::string topic_path(const Args& args) {
  return app_path(args) + "/topics/" + segment(args.required("topic"));
}

Call build_subscribe(const Args& args) {
  json::object body = device_list(args);
  if (auto history = args.integer("history")) body["history"] = *history;
  return Call{.verb = bhttp::verb::post,
              .target = topic_path(args) + "/subscribers",
              .body = std::move(body),
              .headers = {}};
}

void render_subscribe(const json::value& body, std::ostream& out) {
  const std::string joined = text(field(body, "joined"));
  out << "subscribed " << joined << (joined == "1" ? " device" : " devices") << " to topic "
      << printable(text(field(body, "topic"))) << '\n';
}

Call build_unsubscribe(const Args& args) {
  return Call{.verb = bhttp::verb::delete_,
              .target = topic_path(args) + "/subscribers/" + segment(one_device(args)),
              .body = {},
              .headers = {}};
}

void render_unsubscribe(const json::value& body, std::ostream& out) {
  out << "unsubscribed " << printable(text(field(body, "device"))) << " from topic "
      << printable(text(field(body, "topic"))) << '\n';
}

// A query parameter's value, percent-encoded but for the characters that never need it.
std::string query_value(std::string_view text) {
  return boost::urls::encode(text, boost::urls::unreserved_chars);
}

Call build_subscribers(const Args& args) {
  std::string query;
  if (auto after = args.get("after")) query += "after=" + query_value(*after);
  if (auto limit = args.integer("limit", 1)) {
    query += (query.empty() ? "" : "&") + std::string("limit=") + std::to_string(*limit);
  }
  return Call{.verb = bhttp::verb::get,
              .target = topic_path(args) + "/subscribers" + (query.empty() ? "" : "?" + query),
              .body = {},
              .headers = {}};
}

// One page of subscribers; when there may be more, the flag that reads the next page.
void render_subscribers(const json::value& body, std::ostream& out) {
  const std::string topic = text(field(body, "topic"));
  const json::array& devices = body.at("devices").as_array();
  if (devices.empty()) {
    out << "no subscribers of topic " << printable(topic) << '\n';
    return;
  }
  Table table;
  table.add_row({"TOPIC", "DEVICE"});
  for (const json::value& d : devices) table.add_row({topic, text(&d)});
  table.write(out);
  if (const auto* next = field(body, "next_after")) {
    out << "\nmore: --after " << printable(text(next)) << '\n';
  }
}

Call build_topic_get(const Args& args) {
  return Call{.verb = bhttp::verb::get, .target = topic_path(args), .body = {}, .headers = {}};
}

void render_topic(const json::value& body, std::ostream& out) {
  Table fields;
  fields.add_row({"topic", text(field(body, "topic"))});
  fields.add_row({"stream", text(field(body, "stream"))});
  fields.add_row({"created", time_text(field(body, "created_at_ms"))});
  fields.add_row({"subscribers", text(field(body, "subscribers"))});
  fields.write(out);
}

}  // namespace

std::vector<Command> topic_commands() {
  return {
      Command{
          .words = {"topic", "subscribe"},
          .synopsis = "--app APP --topic TOPIC --device ID [--device ID ...] [--history N]",
          .summary = "Subscribes registered devices to a topic (at most 1000 a call).",
          .details = "A device gets the messages sent to the topic after it was subscribed; with "
                     "--history N (at most 100) also the last N before. Subscribing a device "
                     "again keeps where it started. An unregistered device is unknown_device, "
                     "and then none is subscribed.",
          .route = "POST /v1/apps/{app}/topics/{topic}/subscribers",
          .flags = {"app", "topic", "device", "history"},
          .credential = Credential::kApiKey,
          .build = build_subscribe,
          .render = render_subscribe,
      },
      Command{
          .words = {"topic", "unsubscribe"},
          .synopsis = "--app APP --topic TOPIC --device ID",
          .summary = "Unsubscribes one device from a topic.",
          .details = "A device that was not subscribed is no error.",
          .route = "DELETE /v1/apps/{app}/topics/{topic}/subscribers/{device}",
          .flags = {"app", "topic", "device"},
          .credential = Credential::kApiKey,
          .build = build_unsubscribe,
          .render = render_unsubscribe,
      },
      Command{
          .words = {"topic", "subscribers"},
          .synopsis = "--app APP --topic TOPIC [--after ID] [--limit N]",
          .summary = "Lists a topic's subscribers, a page at a time, in device id order.",
          .details = "A page holds --limit devices (1 to 1000, default 100); when there may be "
                     "more it ends with the flag that lists the next: more: --after ID.",
          .route = "GET /v1/apps/{app}/topics/{topic}/subscribers?after=ID&limit=N",
          .flags = {"app", "topic", "after", "limit"},
          .credential = Credential::kApiKey,
          .build = build_subscribers,
          .render = render_subscribers,
      },
      Command{
          .words = {"topic", "get"},
          .synopsis = "--app APP --topic TOPIC",
          .summary = "Shows a topic: its stream, when it was created, how many subscribers it has.",
          .details = "A topic exists once a device was subscribed to it or a message sent to "
                     "it (or to a condition naming it); before, it is not_found.",
          .route = "GET /v1/apps/{app}/topics/{topic}",
          .flags = {"app", "topic"},
          .credential = Credential::kApiKey,
          .build = build_topic_get,
          .render = render_topic,
      },
  };
}

}  // namespace herald::cli
