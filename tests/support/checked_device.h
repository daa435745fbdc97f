// CheckedDevice: one device on the real client library and a file cursor store (as a phone keeps
// them), handing every message and gap to a DeliveryChecker; and checked_message_body, a message
// the checker can recognise. Shared by the crash-point tests and herald-crashloop
// (docs/crash-testing.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include <boost/json.hpp>

#include "delivery_checker.h"
#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "test_device.h"

namespace herald::testing {

// A unicast message for `device` carrying `key` as {"k": key} (payload_key() reads it back);
// high priority, so that its Notify is not deferred. With `send_at_ms`, scheduled.
inline std::string checked_message_body(const std::string& device, const std::string& key,
                                        std::int64_t send_at_ms = 0) {
  boost::json::object body{{"to", boost::json::object{{"devices", boost::json::array{device}}}},
                           {"data", boost::json::object{{"k", key}}},
                           {"priority", "high"}};
  if (send_at_ms != 0) body["send_at_ms"] = send_at_ms;
  return boost::json::serialize(body);
}

class CheckedDevice {
 public:
  // Starts connecting at once; its cursors live in `dir`/<id>.cursors, so a device made again
  // with the same `dir` resumes where this one stopped.
  CheckedDevice(EventLoop& loop, const HeraldServer& server, const std::string& id,
                const std::string& token, const std::filesystem::path& dir,
                DeliveryChecker& checker)
      : client_(loop, device_options(server, id, token),
                make_file_cursor_store(dir / (id + ".cursors"))) {
    client_.on_message(kNewsApp.id, checker.message_handler(id, payload_key));
    client_.on_gap(checker.gap_handler(id));
    client_.on_state(states_.handler());
    client_.start();
  }
  ~CheckedDevice() { client_.stop(); }
  CheckedDevice(const CheckedDevice&) = delete;
  CheckedDevice& operator=(const CheckedDevice&) = delete;

  bool wait_connected(std::chrono::milliseconds timeout) { return states_.wait_connected(timeout); }
  // How many times it connected so far.
  std::size_t connections() { return states_.count(ConnectionState::kConnected); }

 private:
  StateLog states_;
  Client client_;
};

}  // namespace herald::testing
