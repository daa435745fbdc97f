#include "logic/webhook_supervisor.h"

#include <exception>
#include <stdexcept>
#include <utility>

#include "common/log.h"

namespace herald::logic {

namespace {

// Where an app's messages should go now, if anywhere.
std::optional<Webhook> wanted_target(const App& app) {
  if (!app.webhook || app.disabled) return std::nullopt;
  return app.webhook;
}

// Whether the dispatcher already delivers where `wanted` says: the URL and the secret count;
// who set them (Webhook::configured) does not.
bool same_target(const std::optional<Webhook>& current, const Webhook& wanted) {
  return current && current->url == wanted.url && current->secret == wanted.secret;
}

}  // namespace

WebhookSupervisor::WebhookSupervisor(std::vector<boost::asio::any_io_executor> executors,
                                     WebhookSupervisorOptions options, UpstreamService& upstream,
                                     storage::StreamStore& streams, storage::DeviceStore& devices,
                                     TransportFactory transports, Clock clock)
    : executors_(std::move(executors)),
      options_(std::move(options)),
      upstream_(upstream),
      streams_(streams),
      devices_(devices),
      transports_(std::move(transports)),
      clock_(std::move(clock)) {
  if (executors_.empty()) throw std::invalid_argument("WebhookSupervisor: no executors");
}

UpstreamAppSettings WebhookSupervisor::settings_of(const std::string& app) const {
  const auto it = options_.per_app.find(app);
  UpstreamAppSettings settings = it != options_.per_app.end() ? it->second : options_.defaults;
  settings.app = app;
  return settings;
}

void WebhookSupervisor::pause_locked(const std::string& app, Delivery* delivery,
                                     std::string_view reason) {
  if (delivery == nullptr) return;  // never accepted, nothing runs: nothing to stop
  upstream_.set_app(settings_of(app), false);
  if (!delivery->target) return;
  delivery->dispatcher->pause();
  delivery->target.reset();
  log::info("upstream_webhook_paused", {{"app", app}, {"reason", reason}});
}

void WebhookSupervisor::apply(const App& app) {
  const std::optional<Webhook> wanted = wanted_target(app);
  std::lock_guard lock(mu_);
  if (stopped_) return;
  const auto found = deliveries_.find(app.id);
  Delivery* delivery = found != deliveries_.end() ? &found->second : nullptr;

  if (!wanted) {
    pause_locked(app.id, delivery, app.disabled ? "app disabled" : "no webhook");
    return;
  }
  const UpstreamAppSettings settings = settings_of(app.id);
  if (delivery != nullptr && same_target(delivery->target, *wanted)) {
    upstream_.set_app(settings, true);  // nothing to move; the settings may be new
    return;
  }

  // A new target: build its transport on the loop that runs (or will run) the dispatcher.
  const auto executor = delivery != nullptr ? delivery->dispatcher->executor()
                                            : executors_[next_executor_ % executors_.size()];
  std::unique_ptr<distribution::WebhookTransport> transport;
  try {
    transport = transports_(executor, wanted->url);
  } catch (const std::exception& e) {
    // Only a record written before URLs were checked can get here (the admin API refuses such
    // URLs): the app is treated as having no webhook until it gets a usable one.
    log::error("upstream_webhook_unusable",
               {{"app", app.id}, {"url", wanted->url}, {"error", e.what()}});
    pause_locked(app.id, delivery, "unusable webhook URL");
    return;
  }

  if (delivery == nullptr) {
    distribution::WebhookDispatcherOptions dispatcher_options;
    dispatcher_options.app = app.id;
    dispatcher_options.stream = UpstreamService::stream_key(app.id);
    dispatcher_options.secret = wanted->secret;
    dispatcher_options.max_batch_messages = options_.max_batch_messages;
    dispatcher_options.retry_initial = options_.retry_initial;
    dispatcher_options.retry_max = options_.retry_max;
    auto dispatcher = distribution::WebhookDispatcher::create(
        executor, std::move(dispatcher_options), streams_, devices_, std::move(transport), clock_);
    ++next_executor_;
    dispatcher->start();
    delivery = &deliveries_.emplace(app.id, Delivery{std::move(dispatcher), wanted}).first->second;
    log::info("upstream_webhook", {{"app", app.id}, {"url", wanted->url}});
  } else {
    const bool resumed = !delivery->target;
    delivery->dispatcher->retarget(std::move(transport), wanted->secret);
    delivery->target = wanted;
    log::info(resumed ? "upstream_webhook_resumed" : "upstream_webhook_retargeted",
              {{"app", app.id}, {"url", wanted->url}});
  }
  // Accepting only once a dispatcher is there to deliver what gets stored.
  upstream_.set_app(settings, true);
}

void WebhookSupervisor::wake(std::string_view app) {
  std::shared_ptr<distribution::WebhookDispatcher> dispatcher;
  {
    std::lock_guard lock(mu_);
    const auto it = deliveries_.find(app);
    if (it == deliveries_.end()) return;
    dispatcher = it->second.dispatcher;
  }
  dispatcher->wake();
}

void WebhookSupervisor::stop() {
  std::vector<std::shared_ptr<distribution::WebhookDispatcher>> dispatchers;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    for (const auto& [app, delivery] : deliveries_) dispatchers.push_back(delivery.dispatcher);
  }
  for (const auto& d : dispatchers) d->stop();
}

bool WebhookSupervisor::delivering(std::string_view app) const {
  std::lock_guard lock(mu_);
  const auto it = deliveries_.find(app);
  return it != deliveries_.end() && it->second.target.has_value() && !stopped_;
}

std::shared_ptr<distribution::WebhookDispatcher> WebhookSupervisor::dispatcher(
    std::string_view app) const {
  std::lock_guard lock(mu_);
  const auto it = deliveries_.find(app);
  return it == deliveries_.end() ? nullptr : it->second.dispatcher;
}

}  // namespace herald::logic
