// Aliases: alias get, set, rm, bind, unbind.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "cli/command.h"
#include "cli/format.h"
#include "cli/table.h"

namespace herald::cli {

namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

std::string alias_path(const Args& args) {
  return app_path(args) + "/aliases/" + segment(args.required("alias"));
}

// The alias and its devices, one row each.
void render_alias(const json::value& body, std::ostream& out) {
  const std::string alias = text(field(body, "alias"));
  const json::array& devices = body.at("devices").as_array();
  if (devices.empty()) {
    out << "alias " << printable(alias) << " has no devices\n";
    return;
  }
  Table table;
  table.add_row({"ALIAS", "DEVICE"});
  for (const json::value& d : devices) table.add_row({alias, text(&d)});
  table.write(out);
}

Call build_get(const Args& args) {
  return Call{.verb = bhttp::verb::get, .target = alias_path(args), .body = {}, .headers = {}};
}

Call build_set(const Args& args) {
  return Call{.verb = bhttp::verb::put,
              .target = alias_path(args),
              .body = device_list(args),
              .headers = {}};
}

Call build_rm(const Args& args) {
  return Call{.verb = bhttp::verb::delete_, .target = alias_path(args), .body = {}, .headers = {}};
}

void render_rm(const json::value& body, std::ostream& out) {
  out << "deleted alias " << printable(text(field(body, "alias"))) << '\n';
}

Call build_bind(const Args& args) {
  return Call{.verb = bhttp::verb::post,
              .target = alias_path(args) + "/devices",
              .body = json::object{{"device", one_device(args)}},
              .headers = {}};
}

Call build_unbind(const Args& args) {
  return Call{.verb = bhttp::verb::delete_,
              .target = alias_path(args) + "/devices/" + segment(one_device(args)),
              .body = {},
              .headers = {}};
}

}  // namespace

std::vector<Command> alias_commands() {
  return {
      Command{
          .words = {"alias", "get"},
          .synopsis = "--app APP --alias NAME",
          .summary = "Lists the devices bound to an alias.",
          .details = "",
          .route = "GET /v1/apps/{app}/aliases/{alias}",
          .flags = {"app", "alias"},
          .credential = Credential::kApiKey,
          .build = build_get,
          .render = render_alias,
      },
      Command{
          .words = {"alias", "set"},
          .synopsis = "--app APP --alias NAME --device ID [--device ID ...]",
          .summary = "Binds an alias to exactly these devices (at most 100).",
          .details = "Creates the alias, or replaces the devices it had.",
          .route = "PUT /v1/apps/{app}/aliases/{alias}",
          .flags = {"app", "alias", "device"},
          .credential = Credential::kApiKey,
          .build = build_set,
          .render = render_alias,
      },
      Command{
          .words = {"alias", "rm"},
          .synopsis = "--app APP --alias NAME",
          .summary = "Deletes an alias (its devices stay registered).",
          .details = "",
          .route = "DELETE /v1/apps/{app}/aliases/{alias}",
          .flags = {"app", "alias"},
          .credential = Credential::kApiKey,
          .build = build_rm,
          .render = render_rm,
      },
      Command{
          .words = {"alias", "bind"},
          .synopsis = "--app APP --alias NAME --device ID",
          .summary = "Binds one more device to an alias (creating the alias if needed).",
          .details = "",
          .route = "POST /v1/apps/{app}/aliases/{alias}/devices",
          .flags = {"app", "alias", "device"},
          .credential = Credential::kApiKey,
          .build = build_bind,
          .render = render_alias,
      },
      Command{
          .words = {"alias", "unbind"},
          .synopsis = "--app APP --alias NAME --device ID",
          .summary = "Unbinds one device from an alias.",
          .details = "",
          .route = "DELETE /v1/apps/{app}/aliases/{alias}/devices/{device}",
          .flags = {"app", "alias", "device"},
          .credential = Credential::kApiKey,
          .build = build_unbind,
          .render = render_alias,
      },
  };
}

}  // namespace herald::cli
