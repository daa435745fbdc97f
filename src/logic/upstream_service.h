// UpstreamService: the logic layer's side of upstream messages, a device sending a message to its
// app's backend. It validates a message, stores it durably in the app's upstream stream (at most
// once per device and upstream id) and wakes whoever delivers that stream (the app's
// distribution::WebhookDispatcher). Access sessions call it for every Upstream frame and answer
// the device with UpstreamAck once it completes.
//
//   stream "u/<app>": one entry per stored message, in the order they were stored
//     Entry.app         <app>
//     Entry.message_id  "<device>:<upstream id>"  (decimal id; unique per app; the webhook's id)
//     Entry.kind, data  as the device sent them (JSON, validated, or binary)
//     Entry.sent_at_ms  when Herald stored it ("received_at_ms" for the backend)
//     Entry.expires_at_ms  sent_at_ms + the app's upstream TTL
//   record "upstream/<app>/<device>/<id>": the dedupe key, written in the same atomic batch as
//     the entry, expiring with it; a resend of the same (device, id) finds it and stores nothing.
//
// The bound: an app's pending messages are those stored and not yet delivered, its stream's head
// minus the dispatcher's delivered cursor, plus appends still in flight in this process. At
// app.max_pending a new message is refused with kBusy and nothing changes; the device retries
// later. Expired messages the dispatcher has not yet stepped over still count.
//
// Which apps accept upstream messages follows their settings at run time (set_app, called by
// WebhookSupervisor): an app accepts while it has a webhook and is enabled. An app that stops
// accepting keeps what it stored; its new messages are refused (kUnknownApp) until it accepts
// again. Apps are never forgotten (an app is never deleted, only disabled), so the table grows
// with the number of apps that ever had a webhook and nothing else.
//
// Owns nothing it is given: the stores outlive it. Thread-safe: every member may be called from
// any event loop thread concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include "logic/logic_error.h"
#include "logic/message_service.h"
#include "storage/device_store.h"
#include "storage/stream_store.h"

namespace herald::logic {

// An app's upstream settings (the configuration's per-app settings, or their defaults).
struct UpstreamAppSettings {
  std::string app;
  std::size_t max_pending = 100'000;  // stored and not yet delivered; beyond it: kBusy
  std::int64_t ttl_s = 7 * 24 * 3600;
};

struct UpstreamMessage {
  std::string device;    // the authenticated device that sent it
  std::uint64_t id = 0;  // the device's id for it: not 0, unique per device
  std::string app;
  std::string data;
  storage::DataKind kind = storage::DataKind::kJson;  // kJson or kBinary
};

struct UpstreamStored {
  std::uint64_t epoch = 0;  // where it was stored; 0 with `duplicate`
  std::uint64_t seq = 0;
  bool duplicate = false;  // an earlier send of the same (device, id) is stored; nothing written
};

struct UpstreamMetrics {
  std::atomic<std::uint64_t> stored_total{0};
  std::atomic<std::uint64_t> duplicates_total{0};
  std::atomic<std::uint64_t> busy_total{0};  // refused at the bound or by a full writer queue
};

using UpstreamSignature = void(boost::system::error_code, UpstreamStored);

class UpstreamService {
 public:
  // Told that an entry of `app` was stored durably. Called on the completing thread; must not
  // block (WebhookDispatcher::wake posts).
  using StoredListener = std::function<void(const std::string& app)>;

  // `apps` accept upstream messages from the start; set_app adds others.
  UpstreamService(std::vector<UpstreamAppSettings> apps, std::size_t max_payload_bytes,
                  storage::StreamStore& streams, storage::DeviceStore& devices, Clock clock,
                  StoredListener on_stored);

  // Adds `settings.app` or changes its settings (for messages stored from now on), and whether it
  // accepts new messages. One that stops accepting keeps what it stored; stores already started
  // complete. Any thread.
  void set_app(const UpstreamAppSettings& settings, bool accepting);

  // Validates `message`, then stores it durably unless the same (device, id) is stored already.
  // Completes on the handler's associated executor, never inside this call. Validation is done
  // and the append started before this returns, so messages a caller hands over in order are
  // stored in that order. Errors, after each of which nothing was stored:
  //   kUnknownApp       the app accepts no upstream messages (unknown, no webhook, disabled)
  //   kUnknownDevice    the device is not registered for the app
  //   kBadRequest       id 0, a kind other than JSON or binary, JSON data that is not valid JSON
  //   kPayloadTooLarge  data above max_payload_bytes
  //   kBusy             the app's bound is reached, or the store's writer queue is full: retry
  //                     later with backoff
  //   kStorageFailed    the store failed; the message may or may not be stored (a retry with the
  //                     same id is safe: it is stored once)
  template <class Token>
  auto async_store(UpstreamMessage message, Token&& token) {
    return boost::asio::async_initiate<Token, UpstreamSignature>(
        [this](auto handler, UpstreamMessage m) { do_store(std::move(m), std::move(handler)); },
        token, std::move(message));
  }

  // Messages of `app` stored and not yet delivered (see the bound above), excluding appends in
  // flight; also while it does not accept new ones. kUnknownApp for an app never set.
  [[nodiscard]] boost::system::result<std::uint64_t> pending(std::string_view app);

  [[nodiscard]] bool accepts(std::string_view app) const;
  [[nodiscard]] const UpstreamMetrics& metrics() const { return metrics_; }

  // The storage key of an app's upstream stream: "u/<app>".
  [[nodiscard]] static std::string stream_key(std::string_view app);
  // The dedupe record key of one message: "upstream/<app>/<device>/<id>".
  [[nodiscard]] static std::string dedupe_key(std::string_view app, std::string_view device,
                                              std::uint64_t id);

 private:
  // One per app for the life of the service: in_flight must count across accepting changes.
  struct AppState {
    AppState(std::string app_id, std::string stream_key)
        : app(std::move(app_id)), stream(std::move(stream_key)) {}
    const std::string app;
    const std::string stream;
    std::atomic<std::size_t> max_pending{0};
    std::atomic<std::int64_t> ttl_s{0};
    std::atomic<bool> accepting{false};
    std::atomic<std::size_t> in_flight{0};  // appends started and not yet completed
  };

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  void do_store(UpstreamMessage message,
                boost::asio::any_completion_handler<UpstreamSignature> handler);
  [[nodiscard]] std::shared_ptr<AppState> find(std::string_view app) const;
  // Everything but the bound and the append; kOk when `message` may be stored in `app`.
  [[nodiscard]] boost::system::error_code validate(const AppState* app,
                                                   const UpstreamMessage& message);
  [[nodiscard]] boost::system::result<std::uint64_t> pending_of(const AppState& app);

  std::size_t max_payload_bytes_;
  storage::StreamStore& streams_;
  storage::DeviceStore& devices_;
  Clock clock_;
  StoredListener on_stored_;
  mutable std::shared_mutex apps_mu_;  // guards the map; an AppState's fields are atomics
  std::unordered_map<std::string, std::shared_ptr<AppState>, StringHash, std::equal_to<>> apps_;
  UpstreamMetrics metrics_;
};

}  // namespace herald::logic
