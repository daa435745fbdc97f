// WebhookSupervisor: keeps the upstream path of every app in line with the app's settings, at
// start-up and after every admin change, without a restart. It owns one
// distribution::WebhookDispatcher per app that ever had a usable webhook, and tells the
// UpstreamService which apps accept upstream messages.
//
//   AppService ──on_change(App)──▶ apply() ──▶ UpstreamService::set_app(settings, accepting)
//                                       └────▶ WebhookDispatcher: create / retarget / pause
//   UpstreamService ──stored──▶ wake(app) ──▶ the app's dispatcher
//
// What an app gets, from App::webhook and App::disabled:
//
//   webhook set, app enabled     accepts; its dispatcher delivers to webhook.url, signed with
//                                webhook.secret (created on first need, retargeted on a change)
//   no webhook, or disabled      refuses new messages (unknown_app); its dispatcher, if any, is
//                                paused: stored messages stay and wait, within their TTL, for
//                                the next webhook (or the app being enabled again)
//
// A change of URL or secret retargets the existing dispatcher: every message not yet delivered,
// the backlog included, goes to the new URL signed with the current secret, from the next POST
// on; a POST already in flight finishes at the old URL. A dispatcher is never destroyed while the
// process runs, so two dispatchers never deliver one stream (no duplicate or reordered batches
// from a change). The per-app upstream bound and TTL come from the configuration (or defaults).
// A URL the transport factory cannot use (it throws) counts as no webhook and is logged.
//
// Threads: apply() is AppService's listener, so it runs on whichever thread made the change (any
// event loop, or the start-up thread during AppService::async_load), one call at a time; wake()
// runs on every event loop, for every stored message. Both, and stop(), take mutex_ briefly and
// never block otherwise: dispatchers are driven by posting to their own event loops. Holds
// references: the UpstreamService and the stores outlive it; the executors' event loops outlive
// its dispatchers' work.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "distribution/webhook_dispatcher.h"
#include "distribution/webhook_transport.h"
#include "logic/app_registry.h"
#include "logic/clock.h"
#include "logic/upstream_service.h"
#include "storage/device_store.h"
#include "storage/stream_store.h"

namespace herald::logic {

struct WebhookSupervisorOptions {
  // The upstream bound and TTL of an app not listed in per_app (its `app` field is ignored).
  UpstreamAppSettings defaults;
  std::map<std::string, UpstreamAppSettings, std::less<>> per_app;  // by app id
  std::size_t max_batch_messages = 100;
  std::chrono::milliseconds retry_initial{500};
  std::chrono::milliseconds retry_max{60'000};
};

class WebhookSupervisor {
 public:
  // Builds the transport to `url` for a dispatcher on `executor`. Throws std::invalid_argument
  // (or any std::exception) for a URL it cannot serve. Called under mutex_: must not block.
  using TransportFactory = std::function<std::unique_ptr<distribution::WebhookTransport>(
      boost::asio::any_io_executor executor, const std::string& url)>;

  // Dispatchers are spread over `executors` round-robin; each must be single-threaded (one
  // event loop). Not empty.
  WebhookSupervisor(std::vector<boost::asio::any_io_executor> executors,
                    WebhookSupervisorOptions options, UpstreamService& upstream,
                    storage::StreamStore& streams, storage::DeviceStore& devices,
                    TransportFactory transports, Clock clock);
  WebhookSupervisor(const WebhookSupervisor&) = delete;
  WebhookSupervisor& operator=(const WebhookSupervisor&) = delete;

  // Brings `app`'s upstream in line with its settings (see above). For AppService::on_change;
  // calls for one app must come in the order of its changes. Does nothing after stop().
  void apply(const App& app);
  // An entry of `app` was stored: its dispatcher reads again. Any thread; cheap.
  void wake(std::string_view app);
  // Stops every dispatcher (shutdown: a POST in flight completes, nothing new starts) and
  // creates no more. Any thread; idempotent.
  void stop();

  // Whether `app`'s messages are being delivered now (a webhook, enabled, a dispatcher running).
  [[nodiscard]] bool delivering(std::string_view app) const;
  // The app's dispatcher, paused or not; null when it never had one. For metrics and tests.
  [[nodiscard]] std::shared_ptr<distribution::WebhookDispatcher> dispatcher(
      std::string_view app) const;

 private:
  struct Delivery {
    std::shared_ptr<distribution::WebhookDispatcher> dispatcher;
    std::optional<Webhook> target;  // where it delivers now; nullopt while paused
  };

  [[nodiscard]] UpstreamAppSettings settings_of(const std::string& app) const;
  // Stops delivering `app` (if it was): not accepting, dispatcher paused. Under mutex_.
  void pause_locked(const std::string& app, Delivery* delivery, std::string_view reason);

  const std::vector<boost::asio::any_io_executor> executors_;
  const WebhookSupervisorOptions options_;
  UpstreamService& upstream_;
  storage::StreamStore& streams_;
  storage::DeviceStore& devices_;
  const TransportFactory transports_;
  const Clock clock_;

  mutable std::mutex mu_;
  std::map<std::string, Delivery, std::less<>> deliveries_;  // one per app that had a dispatcher
  std::size_t next_executor_ = 0;
  bool stopped_ = false;
};

}  // namespace herald::logic
