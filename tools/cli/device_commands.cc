// Devices: register, device get, device rm, device topics.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "cli/command.h"
#include "cli/format.h"
#include "cli/table.h"

namespace herald::cli {

namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

Call build_register(const Args& args) {
  return Call{.verb = bhttp::verb::post,
              .target = app_path(args) + "/devices",
              .body = json::object{{"device", one_device(args)}},
              .headers = {}};
}

// Only the token: TOKEN=$(herald register ...) is the common use.
void render_register(const json::value& body, std::ostream& out) {
  out << printable(body.at("token").as_string()) << '\n';
}

Call build_get(const Args& args) {
  return Call{.verb = bhttp::verb::get,
              .target = app_path(args) + "/devices/" + segment(one_device(args)),
              .body = {},
              .headers = {}};
}

void render_get(const json::value& body, std::ostream& out) {
  Table fields;
  fields.add_row({"device", text(field(body, "device"))});
  fields.add_row({"registered", time_text(field(body, "registered_at_ms"))});
  fields.add_row({"online", text(field(body, "online"))});
  fields.add_row({"node", text(field(body, "node"))});
  fields.add_row({"last seen", time_text(field(body, "last_seen_ms"))});
  fields.write(out);
  const json::value* streams = field(body, "streams");
  if (streams == nullptr || !streams->is_array() || streams->get_array().empty()) return;
  Table table;
  table.add_row({"STREAM", "EPOCH", "HEAD_SEQ", "ACKED_SEQ", "ACKED_AT"});
  for (const json::value& s : streams->get_array()) {
    table.add_row({text(field(s, "stream")), text(field(s, "epoch")), text(field(s, "head_seq")),
                   text(field(s, "acked_seq")), time_text(field(s, "acked_at_ms"))});
  }
  out << '\n';
  table.write(out);
}

Call build_rm(const Args& args) {
  return Call{.verb = bhttp::verb::delete_,
              .target = app_path(args) + "/devices/" + segment(one_device(args)),
              .body = {},
              .headers = {}};
}

void render_rm(const json::value& body, std::ostream& out) {
  out << "unregistered " << printable(body.at("device").as_string()) << '\n';
}

Call build_topics(const Args& args) {
  return Call{.verb = bhttp::verb::get,
              .target = app_path(args) + "/devices/" + segment(one_device(args)) + "/topics",
              .body = {},
              .headers = {}};
}

// The topics the device joined, with when (the app's broadcast, which every device reads, is
// none of them).
void render_topics(const json::value& body, std::ostream& out) {
  const json::array& topics = body.at("topics").as_array();
  if (topics.empty()) {
    out << "device " << printable(text(field(body, "device"))) << " has joined no topic\n";
    return;
  }
  Table table;
  table.add_row({"TOPIC", "SINCE"});
  for (const json::value& t : topics) {
    table.add_row({text(field(t, "topic")), time_text(field(t, "since_ms"))});
  }
  table.write(out);
}

}  // namespace

std::vector<Command> device_commands() {
  return {
      Command{
          .words = {"register"},
          .synopsis = "--app APP --device ID",
          .summary = "Registers a device for the app and prints its token.",
          .details = "Registering a device again is allowed: it prints a fresh token (the old "
                     "ones keep working until they expire).",
          .route = "POST /v1/apps/{app}/devices",
          .flags = {"app", "device"},
          .credential = Credential::kApiKey,
          .build = build_register,
          .render = render_register,
      },
      Command{
          .words = {"device", "get"},
          .synopsis = "--app APP --device ID",
          .summary = "Shows a device: online or not, its node, when last seen, its inbox.",
          .details = "HEAD_SEQ is the last message stored for the device, ACKED_SEQ the last it "
                     "acknowledged.",
          .route = "GET /v1/apps/{app}/devices/{device}",
          .flags = {"app", "device"},
          .credential = Credential::kApiKey,
          .build = build_get,
          .render = render_get,
      },
      Command{
          .words = {"device", "rm"},
          .synopsis = "--app APP --device ID",
          .summary = "Unregisters a device from the app.",
          .details = "The app's messages still in the device's inbox are no longer delivered.",
          .route = "DELETE /v1/apps/{app}/devices/{device}",
          .flags = {"app", "device"},
          .credential = Credential::kApiKey,
          .build = build_rm,
          .render = render_rm,
      },
      Command{
          .words = {"device", "topics"},
          .synopsis = "--app APP --device ID",
          .summary = "Lists the topics a device joined, with when.",
          .details = "The app's broadcast, which every registered device reads, is not listed.",
          .route = "GET /v1/apps/{app}/devices/{device}/topics",
          .flags = {"app", "device"},
          .credential = Credential::kApiKey,
          .build = build_topics,
          .render = render_topics,
      },
  };
}

}  // namespace herald::cli
