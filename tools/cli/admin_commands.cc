// The admin API: admin app create, list, get, set, disable, enable; admin key add, list, revoke;
// admin device get.
#include <array>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "cli/command.h"
#include "cli/format.h"
#include "cli/table.h"

namespace herald::cli {

namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

constexpr std::array<std::string_view, 4> kRateFlags = {"requests-per-s", "requests-burst",
                                                        "messages-per-s", "messages-burst"};

std::string admin_app_path(const Args& args) {
  return "/v1/admin/apps/" + segment(args.required("app"));
}

// A rate as JSON, whole numbers as integers (100, not 100.0), as the server answers them.
json::value rate_json(double v) {
  if (v == static_cast<double>(static_cast<std::int64_t>(v)) && v < 9e15) {
    return static_cast<std::int64_t>(v);
  }
  return v;
}

// {"requests_per_s": N, ...} from the rate flags given; nullopt when none is.
std::optional<json::object> rate_limits(const Args& args) {
  std::optional<json::object> limits;
  for (const std::string_view flag : kRateFlags) {
    if (auto v = args.rate(flag)) {
      std::string key(flag);
      for (char& c : key) c = c == '-' ? '_' : c;
      if (!limits) limits.emplace();
      (*limits)[key] = rate_json(*v);
    }
  }
  return limits;
}

std::optional<json::value> webhook(const Args& args) {
  const auto url = args.get("webhook");
  if (url && args.has("no-webhook")) {
    throw UsageError(args.command() + " takes --webhook or --no-webhook, not both");
  }
  if (url) return json::object{{"url", *url}};
  if (args.has("no-webhook")) return json::value(nullptr);
  return std::nullopt;
}

// A rate limit; an absent rate is unlimited, an absent burst one second's worth of the rate.
std::string rate_text(const json::value& app, std::string_view key) {
  const json::value* limits = field(app, "rate_limits");
  const json::value* v = limits != nullptr ? field(*limits, key) : nullptr;
  if (v != nullptr) return text(v);
  return key.ends_with("_burst") ? "default" : "unlimited";
}

void add_app_fields(const json::value& app, Table& fields) {
  const json::value* hook = field(app, "webhook");
  fields.add_row({"id", text(field(app, "id"))});
  fields.add_row({"disabled", text(field(app, "disabled"))});
  fields.add_row({"created", time_text(field(app, "created_at_ms"))});
  fields.add_row({"keys", text(field(app, "keys"))});
  fields.add_row({"requests/s", rate_text(app, "requests_per_s")});
  fields.add_row({"requests burst", rate_text(app, "requests_burst")});
  fields.add_row({"messages/s", rate_text(app, "messages_per_s")});
  fields.add_row({"messages burst", rate_text(app, "messages_burst")});
  fields.add_row({"webhook", hook != nullptr ? text(field(*hook, "url")) : "-"});
  fields.add_row({"webhook secret", hook != nullptr ? text(field(*hook, "secret")) : "-"});
}

void add_key_fields(const json::value& key, Table& fields) {
  fields.add_row({"key id", text(field(key, "id"))});
  fields.add_row({"label", text(field(key, "label"))});
  fields.add_row({"prefix", text(field(key, "prefix"))});
  fields.add_row({"created", time_text(field(key, "created_at_ms"))});
  fields.add_row({"revoked", time_text(field(key, "revoked_at_ms"))});
  if (const auto* v = field(key, "last_used_ms")) fields.add_row({"last used", time_text(v)});
  // The secret: only in the answer that created the key.
  if (const auto* v = field(key, "key")) fields.add_row({"key", text(v)});
}

void render_app(const json::value& body, std::ostream& out) {
  Table fields;
  add_app_fields(body, fields);
  fields.write(out);
}

// ---------------------------------------------------------------------------------------- apps

Call build_app_create(const Args& args) {
  json::object body{{"id", args.required("app")}};
  if (auto limits = rate_limits(args)) body["rate_limits"] = std::move(*limits);
  if (auto url = args.get("webhook")) body["webhook"] = json::object{{"url", *url}};
  return Call{.verb = bhttp::verb::post,
              .target = "/v1/admin/apps",
              .body = std::move(body),
              .headers = {}};
}

void render_app_create(const json::value& body, std::ostream& out) {
  Table fields;
  add_app_fields(body.at("app"), fields);
  fields.write(out);
  Table key;
  add_key_fields(body.at("key"), key);
  out << '\n';
  key.write(out);
}

Call build_app_list(const Args&) {
  return Call{.verb = bhttp::verb::get, .target = "/v1/admin/apps", .body = {}, .headers = {}};
}

void render_app_list(const json::value& body, std::ostream& out) {
  const json::array& apps = body.at("apps").as_array();
  if (apps.empty()) {
    out << "no apps\n";
    return;
  }
  Table table;
  table.add_row({"ID", "DISABLED", "KEYS", "REQUESTS/S", "MESSAGES/S", "WEBHOOK", "CREATED"});
  for (const json::value& app : apps) {
    const json::value* hook = field(app, "webhook");
    table.add_row({text(field(app, "id")), text(field(app, "disabled")), text(field(app, "keys")),
                   rate_text(app, "requests_per_s"), rate_text(app, "messages_per_s"),
                   hook != nullptr ? text(field(*hook, "url")) : "-",
                   time_text(field(app, "created_at_ms"))});
  }
  table.write(out);
}

Call build_app_get(const Args& args) {
  return Call{.verb = bhttp::verb::get, .target = admin_app_path(args), .body = {}, .headers = {}};
}

Call build_app_set(const Args& args) {
  json::object body;
  if (auto limits = rate_limits(args)) body["rate_limits"] = std::move(*limits);
  if (auto hook = webhook(args)) body["webhook"] = std::move(*hook);
  if (body.empty()) {
    throw UsageError(
        "admin app set needs a rate flag (--requests-per-s N, ...), --webhook URL or "
        "--no-webhook");
  }
  return Call{.verb = bhttp::verb::patch,
              .target = admin_app_path(args),
              .body = std::move(body),
              .headers = {}};
}

Call build_app_disable(const Args& args) {
  return Call{.verb = bhttp::verb::patch,
              .target = admin_app_path(args),
              .body = json::object{{"disabled", true}},
              .headers = {}};
}

Call build_app_enable(const Args& args) {
  return Call{.verb = bhttp::verb::patch,
              .target = admin_app_path(args),
              .body = json::object{{"disabled", false}},
              .headers = {}};
}

// ---------------------------------------------------------------------------------------- keys

Call build_key_add(const Args& args) {
  Call call{.verb = bhttp::verb::post,
            .target = admin_app_path(args) + "/keys",
            .body = {},
            .headers = {}};
  // The body is optional; without a label none is sent.
  if (auto label = args.get("label")) call.body = json::object{{"label", *label}};
  return call;
}

void render_key(const json::value& body, std::ostream& out) {
  Table fields;
  add_key_fields(body, fields);
  fields.write(out);
}

Call build_key_list(const Args& args) {
  return Call{.verb = bhttp::verb::get,
              .target = admin_app_path(args) + "/keys",
              .body = {},
              .headers = {}};
}

void render_key_list(const json::value& body, std::ostream& out) {
  Table table;
  table.add_row({"ID", "LABEL", "PREFIX", "CREATED", "REVOKED", "LAST_USED"});
  for (const json::value& k : body.at("keys").as_array()) {
    table.add_row({text(field(k, "id")), text(field(k, "label")), text(field(k, "prefix")),
                   time_text(field(k, "created_at_ms")), time_text(field(k, "revoked_at_ms")),
                   time_text(field(k, "last_used_ms"))});
  }
  table.write(out);
}

Call build_key_revoke(const Args& args) {
  std::string target = admin_app_path(args) + "/keys/" + segment(args.required("key-id"));
  if (auto grace = args.integer("grace")) target += "?grace_s=" + std::to_string(*grace);
  return Call{.verb = bhttp::verb::delete_, .target = std::move(target), .body = {}, .headers = {}};
}

// ------------------------------------------------------------------------------------- devices

Call build_device_get(const Args& args) {
  return Call{.verb = bhttp::verb::get,
              .target = "/v1/admin/devices/" + segment(one_device(args)),
              .body = {},
              .headers = {}};
}

// The device's fields, then its apps and its streams as tables (each left out when empty).
void render_device(const json::value& body, std::ostream& out) {
  Table fields;
  fields.add_row({"device", text(field(body, "device"))});
  fields.add_row({"online", text(field(body, "online"))});
  fields.add_row({"node", text(field(body, "node"))});
  fields.add_row({"last seen", time_text(field(body, "last_seen_ms"))});
  const json::value* apps = field(body, "apps");
  const bool has_apps = apps != nullptr && apps->is_array() && !apps->get_array().empty();
  if (!has_apps) fields.add_row({"apps", "-"});
  fields.write(out);
  if (has_apps) {
    Table table;
    table.add_row({"APP", "REGISTERED"});
    for (const json::value& a : apps->get_array()) {
      table.add_row({text(field(a, "app")), time_text(field(a, "registered_at_ms"))});
    }
    out << '\n';
    table.write(out);
  }
  const json::value* streams = field(body, "streams");
  if (streams == nullptr || !streams->is_array() || streams->get_array().empty()) return;
  Table table;
  table.add_row({"STREAM", "EPOCH", "HEAD_SEQ", "ACKED_SEQ", "ACKED_AT"});
  for (const json::value& st : streams->get_array()) {
    table.add_row({text(field(st, "stream")), text(field(st, "epoch")), text(field(st, "head_seq")),
                   text(field(st, "acked_seq")), time_text(field(st, "acked_at_ms"))});
  }
  out << '\n';
  table.write(out);
}

}  // namespace

std::vector<Command> admin_commands() {
  const std::vector<std::string_view> app_and_rates = {
      "app", "requests-per-s", "requests-burst", "messages-per-s", "messages-burst", "webhook"};
  std::vector<std::string_view> set_flags = app_and_rates;
  set_flags.emplace_back("no-webhook");
  return {
      Command{
          .words = {"admin", "app", "create"},
          .synopsis = "--app APP [--requests-per-s N] [--requests-burst N] "
                      "[--messages-per-s N] [--messages-burst N] [--webhook URL]",
          .summary = "Creates an app and its first API key; prints both.",
          .details = "The key's secret is shown only here: Herald keeps only its hash. App ids "
                     "are 1 to 64 of [a-z0-9._-]. Rates are per second, 0 for unlimited; a "
                     "burst defaults to one second's worth.",
          .route = "POST /v1/admin/apps",
          .flags = app_and_rates,
          .credential = Credential::kAdminToken,
          .build = build_app_create,
          .render = render_app_create,
      },
      Command{
          .words = {"admin", "app", "list"},
          .synopsis = "",
          .summary = "Lists every app.",
          .details = "",
          .route = "GET /v1/admin/apps",
          .flags = {},
          .credential = Credential::kAdminToken,
          .build = build_app_list,
          .render = render_app_list,
      },
      Command{
          .words = {"admin", "app", "get"},
          .synopsis = "--app APP",
          .summary = "Shows an app: disabled or not, its working keys, rate limits, webhook.",
          .details = "",
          .route = "GET /v1/admin/apps/{app}",
          .flags = {"app"},
          .credential = Credential::kAdminToken,
          .build = build_app_get,
          .render = render_app,
      },
      Command{
          .words = {"admin", "app", "set"},
          .synopsis = "--app APP [--requests-per-s N] [--requests-burst N] "
                      "[--messages-per-s N] [--messages-burst N] [--webhook URL | --no-webhook]",
          .summary = "Sets an app's rate limits or its webhook.",
          .details = "The rate flags given replace all four limits: one left out becomes "
                     "unlimited (or, for a burst, its default). Rates are per second, 0 for "
                     "unlimited. Setting a webhook generates the app's webhook secret if it has "
                     "none; it takes effect at once, and upstream messages not yet delivered go "
                     "to the new URL. --no-webhook stops delivery and keeps them for the next "
                     "webhook.",
          .route = "PATCH /v1/admin/apps/{app}",
          .flags = set_flags,
          .credential = Credential::kAdminToken,
          .build = build_app_set,
          .render = render_app,
      },
      Command{
          .words = {"admin", "app", "disable"},
          .synopsis = "--app APP",
          .summary = "Disables an app: its sender calls answer app_disabled.",
          .details = "Its devices stay connected and keep what was already stored.",
          .route = "PATCH /v1/admin/apps/{app} {\"disabled\": true}",
          .flags = {"app"},
          .credential = Credential::kAdminToken,
          .build = build_app_disable,
          .render = render_app,
      },
      Command{
          .words = {"admin", "app", "enable"},
          .synopsis = "--app APP",
          .summary = "Enables a disabled app again.",
          .details = "",
          .route = "PATCH /v1/admin/apps/{app} {\"disabled\": false}",
          .flags = {"app"},
          .credential = Credential::kAdminToken,
          .build = build_app_enable,
          .render = render_app,
      },
      Command{
          .words = {"admin", "key", "add"},
          .synopsis = "--app APP [--label TEXT]",
          .summary = "Adds an API key to an app (rotation, step 1); prints its secret.",
          .details = "The secret is shown only here. The old keys keep working until revoked. "
                     "An app has at most 16 working keys (too_many_keys beyond): revoke one to "
                     "free its slot.",
          .route = "POST /v1/admin/apps/{app}/keys",
          .flags = {"app", "label"},
          .credential = Credential::kAdminToken,
          .build = build_key_add,
          .render = render_key,
      },
      Command{
          .words = {"admin", "key", "list"},
          .synopsis = "--app APP",
          .summary = "Lists an app's keys, without their secrets.",
          .details = "",
          .route = "GET /v1/admin/apps/{app}/keys",
          .flags = {"app"},
          .credential = Credential::kAdminToken,
          .build = build_key_list,
          .render = render_key_list,
      },
      Command{
          .words = {"admin", "key", "revoke"},
          .synopsis = "--app APP --key-id ID [--grace SECONDS]",
          .summary = "Revokes a key (rotation, step 2), now or after a grace period.",
          .details = "--grace is at most 2592000 (30 days). The app's last working key cannot "
                     "be revoked (last_key).",
          .route = "DELETE /v1/admin/apps/{app}/keys/{key_id}?grace_s=N",
          .flags = {"app", "key-id", "grace"},
          .credential = Credential::kAdminToken,
          .build = build_key_revoke,
          .render = render_key,
      },
      Command{
          .words = {"admin", "device", "get"},
          .synopsis = "--device ID",
          .summary = "Shows a device across apps: online or not, its node, its apps, its inbox.",
          .details = "Every app the device is registered for, with when; HEAD_SEQ is the last "
                     "message stored in its inbox (all apps), ACKED_SEQ the last it acknowledged. "
                     "A device Herald knows nothing of is unknown_device.",
          .route = "GET /v1/admin/devices/{device}",
          .flags = {"device"},
          .credential = Credential::kAdminToken,
          .build = build_device_get,
          .render = render_device,
      },
  };
}

}  // namespace herald::cli
