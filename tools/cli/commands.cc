// The registry of commands, and the one command that is no family's: health.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/pchars.hpp>

#include "cli/command.h"
#include "cli/format.h"

namespace herald::cli {

namespace {

std::vector<Command> make_commands() {
  std::vector<Command> all;
  for (auto family : {device_commands, alias_commands, topic_commands, message_commands}) {
    for (auto& c : family()) all.push_back(std::move(c));
  }
  all.push_back(Command{
      .words = {"health"},
      .synopsis = "",
      .summary = "Asks whether the server is serving; prints ok.",
      .details = "Needs no key.",
      .route = "GET /healthz",
      .flags = {},
      .credential = Credential::kNone,
      .build =
          [](const Args&) {
            return Call{.verb = boost::beast::http::verb::get,
                        .target = "/healthz",
                        .body = {},
                        .headers = {}};
          },
      .render = [](const boost::json::value& body,
                   std::ostream& out) { out << text(field(body, "status")) << '\n'; },
  });
  for (auto& c : admin_commands()) all.push_back(std::move(c));
  return all;
}

}  // namespace

std::string Command::name() const {
  std::string text;
  for (const auto w : words) text += (text.empty() ? "" : " ") + std::string(w);
  return text;
}

std::span<const Command> commands() {
  static const std::vector<Command> all = make_commands();
  return all;
}

std::string segment(std::string_view text) {
  return boost::urls::encode(text, boost::urls::pchars);
}

std::string app_path(const Args& args) { return "/v1/apps/" + segment(args.required("app")); }

std::string one_device(const Args& args) {
  if (args.all("device").size() > 1) throw UsageError(args.command() + " takes one --device");
  return args.required("device");
}

boost::json::object device_list(const Args& args) {
  boost::json::array devices;
  for (const auto& d : args.all("device")) devices.emplace_back(d);
  if (devices.empty()) throw UsageError(args.command() + " needs --device ID (one or more)");
  return boost::json::object{{"devices", std::move(devices)}};
}

}  // namespace herald::cli
