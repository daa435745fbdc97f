// AdminApi: the operators' HTTP API under /v1/admin/ — apps, their API keys, their settings, and
// the whole of a device. A plain function from request to response like SenderApi; mount both
// with ApiRouter (or call it in a test).
//
//   POST   /v1/admin/apps                      create an app and its first key     201 / 409
//   GET    /v1/admin/apps                      every app
//   GET    /v1/admin/apps/{app}                one app
//   PATCH  /v1/admin/apps/{app}                disabled, rate_limits, webhook      / 409
//                                              webhook_configured (the file sets it)
//   POST   /v1/admin/apps/{app}/keys           add a key (rotation step 1)         201 / 400
//                                              too_many_keys (16 working: revoke one)
//   GET    /v1/admin/apps/{app}/keys           the keys, without secrets
//   DELETE /v1/admin/apps/{app}/keys/{id}      revoke, ?grace_s=N (rotation step 2) / 409 last_key
//   GET    /v1/admin/devices/{device}          a device across every app               / 400 /
//                                              404 unknown_device
//   POST   /v1/admin/drain                     start draining the node (body optional:  202 / 400 /
//                                              deadline_s, rate_per_s)                   409
//                                              already_draining
//   GET    /v1/admin/drain                     the drain's state
//
// The device lookup shows what the sender API's lookup shows one app (online, node, last seen,
// the inbox's head and acked position), plus every app the device is registered for with the
// time of each registration. A device is unknown (404) when Herald has nothing on it: no
// registration, not online, no last-seen time, an inbox never written. One unregistered from
// every app but still known answers 200 with no apps. Aliases are not shown: they are stored per
// app and alias with no index by device, so finding a device's would mean reading every alias.
//
// docs/api/openapi.yaml is the contract (bodies, fields, errors). Every request carries
// "Authorization: Bearer <admin token>"; anything else is 401, for every path under /v1/admin/,
// existing or not. The token is compared in constant time against its SHA-256.
//
// A drain (docs/operations.md, "Draining a node") stops the node taking device connections, asks
// its devices at a bounded rate to reconnect elsewhere, and ends the process once they left or
// its deadline passed. The HTTP APIs keep serving until then.
//
// Thread-safe: handle() may run on any number of event loops at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "distribution/router.h"
#include "http/message.h"
#include "logic/app_service.h"
#include "logic/presence_log.h"
#include "storage/device_store.h"
#include "storage/stream_store.h"

namespace herald::http {

// A drain as the admin API shows it.
struct DrainState {
  bool draining = false;
  std::int64_t connections = 0;       // device connections still open
  std::uint64_t reconnects_sent = 0;  // Reconnect{DRAIN} frames sent
  std::uint32_t rate_per_s = 0;       // in force, or what a drain would use now
  std::uint32_t deadline_s = 0;       // in force, or what a drain would use now
  std::int64_t started_at_ms = 0;     // Unix ms; with draining only
  std::int64_t deadline_at_ms = 0;    // Unix ms, when the node exits anyway; with draining only
};

// What a drain may override; unset = the configured value.
struct DrainRequest {
  std::optional<std::uint32_t> deadline_s;
  std::optional<std::uint32_t> rate_per_s;
};

// The node's drain, implemented by the server (it owns the process's lifetime). Thread-safe.
class DrainControl {
 public:
  virtual ~DrainControl() = default;
  [[nodiscard]] virtual DrainState drain_state() const = 0;
  // Starts a drain; false (and nothing changes) when one is under way already.
  virtual bool start_drain(const DrainRequest& request) = 0;
};

// Bounds of DrainRequest's fields (and of the matching configuration settings).
inline constexpr std::uint32_t kMaxDrainDeadlineS = 86'400;
inline constexpr std::uint32_t kMaxDrainRatePerS = 1'000'000;

// What the admin API works with. References: every collaborator outlives the AdminApi.
struct AdminApiDeps {
  logic::AppService& apps;
  const logic::AppRegistry& registry;
  storage::DeviceStore& devices;
  storage::StreamStore& streams;
  distribution::Router& router;
  logic::PresenceLog& presence;
  std::string node;         // this node's name, reported by device lookups
  std::string admin_token;  // empty: the admin API is off (every call 401, saying so)
  logic::Clock clock;
  DrainControl* drain = nullptr;  // null: the drain routes answer 404
};

class AdminApi {
 public:
  explicit AdminApi(AdminApiDeps deps);

  // Answers a request whose path starts with /v1/admin/. Never throws for any request content.
  boost::asio::awaitable<Response> handle(Request request);

  // Whether `request` carries the admin token (Authorization: Bearer); the other operators'
  // endpoints (GET /metrics) ask too.
  [[nodiscard]] bool authorized(const Request& request) const;

 private:
  // GET /v1/admin/devices/{device}.
  Response get_device(const std::string& device);
  // POST and GET /v1/admin/drain.
  Response drain(const Request& request);

  AdminApiDeps d_;
  std::string token_sha256_;  // empty: no token configured
};

}  // namespace herald::http
