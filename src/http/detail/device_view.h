// What both device lookups show of a device beyond its registrations: the sender API's (one app's
// view, sender_api.h) and the operator's (every app, admin_api.h). Layer-private.
#pragma once

#include <cstdint>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include "distribution/router.h"
#include "logic/presence_log.h"
#include "storage/device_store.h"
#include "storage/stream_store.h"

namespace herald::http::detail {

// The device id rule, as error messages state it (DeviceTokenAuthority::valid_device_id).
inline constexpr std::string_view kDeviceIdRule = "1..128 bytes of [A-Za-z0-9._:-]";

// The device's inbox (one stream for the messages of every app on it):
//   {"stream": "inbox", "epoch": E, "head_seq": N[, "acked_seq": A, "acked_at_ms": T]}
// epoch and head_seq are 0 for an inbox never written; acked_* only for an ack in the current
// epoch. Errors: the store's (see logic::storage_error).
[[nodiscard]] boost::system::result<boost::json::object> inbox_position(
    storage::StreamStore& streams, storage::DeviceStore& devices, std::string_view device);

// Adds "online" and, while online, "node" (this node: the router is local) and "last_seen_ms"
// (now); else "last_seen_ms" from the presence log, if it has a time. Returns whether the device
// was ever seen: online now, or a last-seen time (within the log's retention).
bool add_presence(boost::json::object& out, std::string_view device, distribution::Router& router,
                  logic::PresenceLog& presence, std::string_view node, std::int64_t now_ms);

}  // namespace herald::http::detail
