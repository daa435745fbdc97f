// Command: one `herald` command, which is one call of the HTTP API (docs/api/openapi.yaml). A
// command turns its flags into a request (build), and the server's 2xx answer into text for
// people (render); everything in between — settings, the secret, the HTTP exchange, errors,
// --json — is the same for every command and lives in cli/run.h.
//
// The commands, in the order help lists them, come from commands(); each family is defined in its
// own file (device_commands.cc, alias_commands.cc, topic_commands.cc, message_commands.cc,
// admin_commands.cc).
#pragma once

#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/verb.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "cli/args.h"

namespace herald::cli {

// The secret a command's request carries as "Authorization: Bearer <secret>".
enum class Credential {
  kNone,        // /healthz
  kApiKey,      // /v1/apps/{app}/...: one of the app's API keys
  kAdminToken,  // /v1/admin/...: heraldd's admin token
};

// One HTTP request, as the contract spells it.
struct Call {
  boost::beast::http::verb verb = boost::beast::http::verb::get;
  std::string target;                                        // path and query, percent-encoded
  std::optional<boost::json::value> body;                    // sent as JSON when present
  std::vector<std::pair<std::string, std::string>> headers;  // besides Authorization
};

struct Command {
  std::vector<std::string_view> words;  // {"admin", "app", "create"}
  std::string_view synopsis;            // what follows the words: "--app APP --device ID"
  std::string_view summary;             // one line, for `herald --help`
  std::string_view details;             // more, for `herald COMMAND --help`; may be empty
  std::string_view route;               // "POST /v1/apps/{app}/devices"
  std::vector<std::string_view> flags;  // the flags it takes besides the global ones
  Credential credential = Credential::kApiKey;
  // The request for `args` (already checked to hold only `flags`). Throws UsageError for a
  // missing or contradictory flag.
  Call (*build)(const Args& args) = nullptr;
  // Writes a 2xx answer for people. May throw std::exception when `body` lacks what it needs
  // (the caller then says the answer was unexpected).
  void (*render)(const boost::json::value& body, std::ostream& out) = nullptr;

  // The words joined by spaces: "admin app create".
  [[nodiscard]] std::string name() const;
};

// Every command, in the order help lists them.
[[nodiscard]] std::span<const Command> commands();

// The families, each in its own file.
std::vector<Command> device_commands();
std::vector<Command> alias_commands();
std::vector<Command> topic_commands();
std::vector<Command> message_commands();
std::vector<Command> admin_commands();

// "/v1/apps/" + the encoded app id, and so on: a path segment percent-encoded so that no id can
// change which route a request takes ("a/b" stays one segment).
[[nodiscard]] std::string segment(std::string_view text);
// "/v1/apps/{app}" for the --app flag (required).
[[nodiscard]] std::string app_path(const Args& args);
// The --device flag of a command about one device: required, and only once.
[[nodiscard]] std::string one_device(const Args& args);
// The --device flags of a command about several devices, in order: {"devices": [ID, ...]}.
// Throws UsageError when there is none.
[[nodiscard]] boost::json::object device_list(const Args& args);

}  // namespace herald::cli
