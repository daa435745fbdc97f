#include "cli/run.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "cli/command.h"
#include "cli/format.h"
#include "cli/help.h"
#include "cli/table.h"
#include "http/http_client.h"
#include "tls/tls_context.h"

namespace herald::cli {

namespace {

namespace json = boost::json;
using http::HttpClient;
using http::Response;

constexpr std::int64_t kDefaultTimeoutMs = 10'000;

bool starts_with(const Command& c, const std::vector<std::string>& words) {
  return c.words.size() >= words.size() && std::equal(words.begin(), words.end(), c.words.begin());
}

const Command* find_exact(const std::vector<std::string>& words) {
  for (const Command& c : commands()) {
    if (c.words.size() == words.size() && starts_with(c, words)) return &c;
  }
  return nullptr;
}

// The words that may follow `words` ("get, set, rm" after "alias"); empty when none.
std::string next_words(const std::vector<std::string>& words) {
  std::vector<std::string_view> next;
  for (const Command& c : commands()) {
    if (c.words.size() > words.size() && starts_with(c, words) &&
        std::find(next.begin(), next.end(), c.words[words.size()]) == next.end()) {
      next.push_back(c.words[words.size()]);
    }
  }
  std::string text;
  for (const auto w : next) text += (text.empty() ? "" : ", ") + std::string(w);
  return text;
}

std::string join(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
  return text;
}

// The command the words name; throws UsageError for a group ("alias") or an unknown command,
// saying what could follow the longest part that made sense.
const Command& find_command(const Args& args) {
  const std::vector<std::string>& words = args.words();
  if (const Command* c = find_exact(words)) return *c;
  if (const std::string next = next_words(words); !next.empty()) {
    throw UsageError("'" + args.command() + "' needs one of: " + next);
  }
  std::vector<std::string> prefix = words;
  while (prefix.size() > 1) {
    prefix.pop_back();
    if (find_exact(prefix) != nullptr) {
      throw UsageError("unexpected argument '" + words[prefix.size()] + "' after '" + join(prefix) +
                       "'");
    }
    if (const std::string next = next_words(prefix); !next.empty()) {
      throw UsageError("unknown command '" + args.command() + "': '" + join(prefix) +
                       "' takes one of: " + next);
    }
  }
  throw UsageError("unknown command '" + words.front() + "'");
}

// Refuses a flag the command does not take: it would be ignored, and the user expects it not to.
void check_flags(const Command& command, const Args& args) {
  for (const auto& name : args.given()) {
    const FlagSpec* flag = find_flag(name);
    if (flag != nullptr && flag->global) continue;
    if (std::find(command.flags.begin(), command.flags.end(), name) == command.flags.end()) {
      throw UsageError(command.name() + " takes no --" + name);
    }
  }
}

std::string secret_for(const Command& command, const Settings& s) {
  const std::string file =
      s.config_path.empty() ? std::string("a config file (--config FILE)") : s.config_path.string();
  switch (command.credential) {
    case Credential::kNone:
      return {};
    case Credential::kApiKey:
      if (s.api_key) return *s.api_key;
      throw UsageError(command.name() +
                       " needs the app's API key: pass --key KEY, set HERALD_API_KEY, or set "
                       "api_key in " +
                       file);
    case Credential::kAdminToken:
      if (s.admin_token) return *s.admin_token;
      throw UsageError(command.name() +
                       " needs the admin token: pass --admin-token TOKEN, set HERALD_ADMIN_TOKEN, "
                       "or set admin_token in " +
                       file + " (heraldd keeps a generated one in <data_dir>/admin_token)");
  }
  return {};
}

// "herald: unknown_device: no such device (HTTP 404)", from the error body when it is one.
void report_failure(const Response& res, std::ostream& err) {
  boost::system::error_code ec;
  const json::value body = json::parse(res.body(), ec);
  const json::value* error = ec ? nullptr : field(body, "error");
  const json::value* code = error != nullptr ? field(*error, "code") : nullptr;
  const json::value* message = error != nullptr ? field(*error, "message") : nullptr;
  err << "herald: ";
  if (code != nullptr && code->is_string() && message != nullptr && message->is_string()) {
    err << printable(code->get_string()) << ": " << printable(message->get_string());
  } else {
    err << printable(res.body().empty() ? std::string(res.reason()) : res.body());
  }
  err << " (HTTP " << res.result_int();
  if (const auto retry = res.find(boost::beast::http::field::retry_after); retry != res.end()) {
    err << "; retry after " << printable(retry->value()) << " s";
  }
  err << ")\n";
}

}  // namespace

int run(std::span<const std::string_view> arg_list, const Getenv& getenv, std::ostream& out,
        std::ostream& err) {
  std::string help_hint = "herald --help";
  try {
    const Args args = Args::parse(arg_list);
    if (args.words().empty()) {
      if (args.help()) {
        write_help(out);
        return kExitOk;
      }
      throw UsageError("no command given");
    }
    if (args.help()) {
      if (const Command* c = find_exact(args.words())) {
        write_command_help(*c, out);
      } else if (!next_words(args.words()).empty()) {
        write_group_help(args.words(), out);
      } else {
        find_command(args);  // throws, saying what is wrong
      }
      return kExitOk;
    }
    if (!next_words(args.words()).empty()) help_hint = "herald " + args.command() + " --help";
    const Command& command = find_command(args);
    help_hint = "herald " + command.name() + " --help";
    check_flags(command, args);
    const Call call = command.build(args);
    const Settings settings = resolve_settings(args, getenv);
    const std::string secret = secret_for(command, settings);
    const std::int64_t timeout_ms = args.integer("timeout-ms", 1).value_or(kDefaultTimeoutMs);

    HttpClient::Headers headers = call.headers;
    if (!secret.empty()) headers.emplace_back("Authorization", "Bearer " + secret);
    HttpClient::TlsSettings https;
    if (settings.https) {
      // Throws std::runtime_error naming the CA file when it cannot be read.
      https.context = tls::make_client_context(
          {settings.ca_file.value_or(std::string()), settings.tls_server_name, true});
      https.server_name = settings.tls_server_name;
    }
    HttpClient client(settings.host, settings.port, std::chrono::milliseconds(timeout_ms),
                      std::move(https));
    auto res = client.request(call.verb, call.target,
                              call.body ? json::serialize(*call.body) : std::string(), headers);
    if (!res) {
      err << "herald: cannot reach " << settings.server << ": " << res.error().message();
      // The request went out: the server may have acted on it (a push may be stored).
      if (res.error() == boost::beast::error::timeout) {
        err << " after " << timeout_ms
            << " ms; the server may or may not have processed the request";
      }
      err << "\n";
      return kExitFailed;
    }
    const bool json_output = args.has("json");
    if (json_output) out << res->body() << '\n';
    if (const auto replayed = res->find("Idempotent-Replayed");
        replayed != res->end() && replayed->value() == "true") {
      err << "herald: replayed: the first answer to this Idempotency-Key; nothing was sent again\n";
    }
    if (res->result_int() / 100 != 2) {
      report_failure(*res, err);
      return kExitFailed;
    }
    if (json_output) return kExitOk;

    boost::system::error_code ec;
    const json::value body = json::parse(res->body(), ec);
    if (ec || !body.is_object()) {
      err << "herald: the server answered something that is not a JSON object: "
          << printable(res->body()) << "\n";
      return kExitFailed;
    }
    try {
      command.render(body, out);
    } catch (const std::exception&) {
      // at() and as_*() throw on an answer without what the command prints.
      err << "herald: unexpected answer from the server: " << printable(res->body()) << "\n";
      return kExitFailed;
    }
    return kExitOk;
  } catch (const UsageError& e) {
    err << "herald: " << e.what() << "\n(run '" << help_hint << "' for usage)\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    err << "herald: " << e.what() << "\n";
    return kExitFailed;
  }
}

}  // namespace herald::cli
