// The Herald C++ client library: one long-lived connection per device, shared by every app on it.
//
//   herald::EventLoop loop;                       // I/O thread(s), shared by many clients
//   herald::ClientOptions o;
//   o.endpoints = {{"127.0.0.1", 7700}};
//   o.device_id = "phone-1";
//   o.token = "...";                              // from POST /v1/apps/{app}/devices
//   herald::Client c(loop, o, herald::make_file_cursor_store("cursors.dat"));
//   c.on_message("news", [](const herald::Message& m) { ... });
//   c.start();
//
// Delivery contract: per stream, handlers see strictly increasing sequence numbers with no gap
// within an epoch, each message once. The client pulls from its cursor on every (re)connect and
// on every Notify; after the handlers of a batch ran it saves the cursor through the CursorStore
// and acks the server. A message reaches a handler again only if the process died after the
// handler ran and before the cursor was saved; a CursorStore that commits together with the
// application's own effects (see herald-device --out) closes that window too.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace herald {

struct Endpoint {
  std::string host;  // an IP address literal or a name
  std::uint16_t port = 0;
};

struct Message {
  std::string app;
  std::uint64_t stream = 0;  // 0 = the device's inbox
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::string id;            // the message id the sender API returned
  std::string data;          // JSON text, or bytes when `binary`
  bool binary = false;
  std::int64_t sent_at_ms = 0;
  std::int64_t expires_at_ms = 0;
};

// Where a client keeps how far it got in each stream. Called only from the client's event loop.
class CursorStore {
 public:
  struct Cursor {
    std::uint64_t epoch = 0;
    std::uint64_t seq = 0;
  };
  virtual ~CursorStore() = default;
  // The saved cursor of `stream`, {0, 0} if none.
  virtual Cursor load(std::uint64_t stream) = 0;
  // Called after the handlers of a batch ran. Must be durable when it returns; throwing stops the
  // client (it cannot promise delivery any more).
  virtual void save(std::uint64_t stream, Cursor cursor) = 0;
};

// Keeps cursors in one small file, replaced atomically (write, fsync, rename) on every save.
std::shared_ptr<CursorStore> make_file_cursor_store(std::filesystem::path path);
// Keeps cursors in memory only: a restarted client starts from the beginning of its streams.
std::shared_ptr<CursorStore> make_memory_cursor_store();

// The I/O threads that run clients. Many clients may share one loop.
class EventLoop {
 public:
  explicit EventLoop(int threads = 1);
  ~EventLoop();  // stops the threads and joins them; stop every client first
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

struct ClientOptions {
  std::vector<Endpoint> endpoints;       // tried in order, round-robin on failure
  std::string device_id;
  std::string token;
  std::uint32_t heartbeat_s = 60;        // announced to the server
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds backoff_initial{100};  // reconnect backoff: exponential with jitter
  std::chrono::milliseconds backoff_max{30000};
  std::uint32_t pull_limit = 100;        // entries asked for per Pull
  std::string client_name = "herald-cpp/0.1";
};

enum class ConnectionState { kConnecting, kConnected, kDisconnected, kStopped };

struct StateChange {
  ConnectionState state = ConnectionState::kConnecting;
  std::uint32_t error_code = 0;  // the server's herald::protocol::ErrorCode, if it sent one
  std::string reason;            // human-readable: the server's message, or the local error
};

class Client {
 public:
  using MessageHandler = std::function<void(const Message&)>;
  using StateHandler = std::function<void(const StateChange&)>;

  Client(EventLoop& loop, ClientOptions options, std::shared_ptr<CursorStore> cursors);
  ~Client();  // stop()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Handlers are set before start() and run on the event loop, one at a time per client.
  void on_message(std::string app, MessageHandler handler);
  // For messages of apps without their own handler; without one, such messages are skipped
  // (the cursor still moves: the device has no such app).
  void on_other_message(MessageHandler handler);
  void on_state(StateHandler handler);

  // Connects, and reconnects with exponential backoff and jitter until stop().
  void start();
  // Closes the connection and waits until no handler runs any more. Idempotent.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace herald
