// TestDevice: one device of a test, connected to a real heraldd through the real client library,
// recording what it receives (Inbox, RecallLog) and its connection states (StateLog).
#pragma once

#include <chrono>
#include <string>

#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"

namespace herald::testing {

// Client options for `device` on `server`: loopback, and quick reconnects so tests do not wait.
inline ClientOptions device_options(const HeraldServer& server, const std::string& device,
                                    const std::string& token) {
  ClientOptions o;
  o.endpoints = {{"127.0.0.1", server.device_port()}};
  o.device_id = device;
  o.token = token;
  o.backoff_initial = std::chrono::milliseconds(20);
  o.backoff_max = std::chrono::milliseconds(500);
  return o;
}

class TestDevice {
 public:
  // Starts connecting at once; messages of `app` go to inbox().
  TestDevice(const HeraldServer& server, const std::string& device, const std::string& token,
             const std::string& app = kNewsApp.id)
      : TestDevice(device_options(server, device, token), app) {}
  // As above, with options of the test's own (TLS, racing...).
  explicit TestDevice(const ClientOptions& options, const std::string& app = kNewsApp.id)
      : client_(loop_, options, make_memory_cursor_store()) {
    client_.on_message(app, inbox_.handler());
    client_.on_recall(app, recalls_.handler());
    client_.on_state(states_.handler());
    client_.start();
  }
  ~TestDevice() { client_.stop(); }
  TestDevice(const TestDevice&) = delete;
  TestDevice& operator=(const TestDevice&) = delete;

  bool wait_connected(std::chrono::milliseconds timeout) { return states_.wait_connected(timeout); }
  Inbox& inbox() { return inbox_; }
  RecallLog& recalls() { return recalls_; }
  Client& client() { return client_; }

 private:
  EventLoop loop_;
  Inbox inbox_;
  RecallLog recalls_;
  StateLog states_;
  Client client_;
};

}  // namespace herald::testing
