#include "http/detail/device_view.h"

#include <string>

#include "logic/message_service.h"

namespace herald::http::detail {

namespace json = boost::json;

boost::system::result<json::object> inbox_position(storage::StreamStore& streams,
                                                   storage::DeviceStore& devices,
                                                   std::string_view device) {
  const std::string inbox = logic::MessageService::inbox_key(device);
  auto head = streams.head(inbox);
  if (!head) return head.error();
  auto acked = devices.acked(device, inbox);
  if (!acked) return acked.error();
  json::object out{{"stream", "inbox"}, {"epoch", head->epoch}, {"head_seq", head->head_seq}};
  // An ack of an earlier epoch says nothing about this one's entries.
  if (*acked && (*acked)->epoch == head->epoch) {
    out["acked_seq"] = (*acked)->seq;
    out["acked_at_ms"] = (*acked)->acked_at_ms;
  }
  return out;
}

bool add_presence(json::object& out, std::string_view device, distribution::Router& router,
                  logic::PresenceLog& presence, std::string_view node, std::int64_t now_ms) {
  const bool online = router.is_online(device);
  out["online"] = online;
  if (online) {
    out["node"] = node;
    out["last_seen_ms"] = now_ms;
    return true;
  }
  // A presence log that cannot be read shows no time; the lookup itself still answers.
  if (auto seen = presence.last_seen(device); seen && *seen) {
    out["last_seen_ms"] = **seen;
    return true;
  }
  return false;
}

}  // namespace herald::http::detail
