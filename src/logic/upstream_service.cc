#include "logic/upstream_service.h"

#include <algorithm>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/json/parse.hpp>
#include <boost/system/errc.hpp>

#include "common/log.h"
#include "distribution/webhook_dispatcher.h"

namespace herald::logic {

namespace asio = boost::asio;

namespace {

using Handler = asio::any_completion_handler<UpstreamSignature>;

// Completes `handler` on its associated executor, never inside the initiating call. (asio::post
// needs an executor that can be required never to block; a type-erased handler's executor can
// only be asked to, which every executor Herald uses honours.)
void complete_later(Handler handler, boost::system::error_code ec, UpstreamStored stored = {}) {
  const auto executor =
      asio::prefer(asio::get_associated_executor(handler, asio::system_executor()),
                   asio::execution::blocking.never, asio::execution::outstanding_work.tracked);
  executor.execute(
      [handler = std::move(handler), ec, stored]() mutable { std::move(handler)(ec, stored); });
}

bool valid_json(std::string_view text) {
  boost::system::error_code ec;
  // Only the verdict matters; a payload is at most max_payload_bytes, so the DOM is small.
  (void)boost::json::parse(text, ec);
  return !ec;
}

}  // namespace

UpstreamService::UpstreamService(std::vector<UpstreamAppSettings> apps,
                                 std::size_t max_payload_bytes, storage::StreamStore& streams,
                                 storage::DeviceStore& devices, Clock clock,
                                 StoredListener on_stored)
    : max_payload_bytes_(max_payload_bytes),
      streams_(streams),
      devices_(devices),
      clock_(std::move(clock)),
      on_stored_(std::move(on_stored)) {
  for (const auto& settings : apps) set_app(settings, true);
}

void UpstreamService::set_app(const UpstreamAppSettings& settings, bool accepting) {
  std::shared_ptr<AppState> app;
  {
    std::unique_lock lock(apps_mu_);
    auto& slot = apps_[settings.app];
    if (!slot) slot = std::make_shared<AppState>(settings.app, stream_key(settings.app));
    app = slot;
  }
  app->max_pending.store(settings.max_pending, std::memory_order_relaxed);
  app->ttl_s.store(settings.ttl_s, std::memory_order_relaxed);
  app->accepting.store(accepting, std::memory_order_release);
}

std::shared_ptr<UpstreamService::AppState> UpstreamService::find(std::string_view app) const {
  std::shared_lock lock(apps_mu_);
  const auto it = apps_.find(app);
  return it == apps_.end() ? nullptr : it->second;
}

bool UpstreamService::accepts(std::string_view app) const {
  const auto state = find(app);
  return state && state->accepting.load(std::memory_order_acquire);
}

std::string UpstreamService::stream_key(std::string_view app) {
  std::string key = "u/";
  key.append(app);
  return key;
}

std::string UpstreamService::dedupe_key(std::string_view app, std::string_view device,
                                        std::uint64_t id) {
  // App and device ids hold no '/', so the key names exactly one (app, device, id).
  std::string key = "upstream/";
  key.append(app);
  key.push_back('/');
  key.append(device);
  key.push_back('/');
  key.append(std::to_string(id));
  return key;
}

boost::system::result<std::uint64_t> UpstreamService::pending(std::string_view app) {
  const auto state = find(app);
  if (!state) return LogicError::kUnknownApp;
  return pending_of(*state);
}

boost::system::result<std::uint64_t> UpstreamService::pending_of(const AppState& app) {
  auto head = streams_.head(app.stream);
  if (!head) return storage_error(head.error());
  auto delivered = devices_.acked(distribution::kWebhookCursorOwner, app.stream);
  if (!delivered) return storage_error(delivered.error());
  // A cursor of another epoch delivered nothing of this one: the dispatcher starts it over.
  const std::uint64_t done =
      *delivered && (*delivered)->epoch == head->epoch ? (*delivered)->seq : 0;
  return head->head_seq - std::min(done, head->head_seq);
}

boost::system::error_code UpstreamService::validate(const AppState* app,
                                                    const UpstreamMessage& message) {
  if (app == nullptr || !app->accepting.load(std::memory_order_acquire)) {
    return LogicError::kUnknownApp;
  }
  if (message.id == 0) return LogicError::kBadRequest;
  if (message.kind != storage::DataKind::kJson && message.kind != storage::DataKind::kBinary) {
    return LogicError::kBadRequest;
  }
  if (message.data.size() > max_payload_bytes_) return LogicError::kPayloadTooLarge;
  if (message.kind == storage::DataKind::kJson && !valid_json(message.data)) {
    return LogicError::kBadRequest;
  }
  auto registered = devices_.is_registered(message.app, message.device);
  if (!registered) return storage_error(registered.error());
  if (!*registered) return LogicError::kUnknownDevice;
  return {};
}

void UpstreamService::do_store(UpstreamMessage message, Handler handler) {
  // Held by the append's completion too; an app is never removed, so this is its one state.
  std::shared_ptr<AppState> state = find(message.app);
  if (const auto invalid = validate(state.get(), message)) {
    return complete_later(std::move(handler), invalid);
  }
  AppState& app = *state;

  // Reserve a place under the bound before looking at it, so that concurrent stores cannot all
  // pass on the same count. A reservation that is refused is given back at once.
  const std::size_t in_flight = app.in_flight.fetch_add(1, std::memory_order_acq_rel);
  auto pending = pending_of(app);
  if (!pending || *pending + in_flight >= app.max_pending.load(std::memory_order_relaxed)) {
    app.in_flight.fetch_sub(1, std::memory_order_acq_rel);
    if (!pending) return complete_later(std::move(handler), pending.error());
    metrics_.busy_total.fetch_add(1, std::memory_order_relaxed);
    return complete_later(std::move(handler), LogicError::kBusy);
  }

  const std::int64_t now_ms = clock_();
  const std::int64_t expires_at_ms = now_ms + app.ttl_s.load(std::memory_order_relaxed) * 1000;
  std::string key = dedupe_key(message.app, message.device, message.id);

  storage::AppendBatch batch;
  batch.now_ms = now_ms;
  batch.unless_record_exists = key;
  storage::Record dedupe;
  dedupe.key = std::move(key);
  dedupe.expires_at_ms = expires_at_ms;  // the resend window is the message's own life
  batch.put_records.push_back(std::move(dedupe));
  storage::AppendRequest append;
  append.stream = app.stream;
  append.entry.app = message.app;
  append.entry.message_id = message.device + ":" + std::to_string(message.id);
  append.entry.kind = message.kind;
  append.entry.data = std::move(message.data);
  append.entry.sent_at_ms = now_ms;
  append.entry.expires_at_ms = expires_at_ms;
  batch.entries.push_back(std::move(append));

  // Tracked: the caller's loop must not run out of work while the append waits for the writer.
  auto executor =
      asio::prefer(asio::get_associated_executor(handler, asio::system_executor()),
                   asio::execution::blocking.never, asio::execution::outstanding_work.tracked);
  // The completion runs on the writer's thread (no associated executor): the reservation is
  // given back the moment the entry counts in the stream's head, not once the session's loop
  // gets round to it, or a store checking the bound meanwhile would count this one twice and
  // refuse early. The rest runs on the caller's executor.
  streams_.async_append(
      std::move(batch), [this, state = std::move(state), handler = std::move(handler), executor](
                            boost::system::error_code ec, storage::AppendOutcome outcome) mutable {
        state->in_flight.fetch_sub(1, std::memory_order_acq_rel);
        executor.execute([this, state = std::move(state), handler = std::move(handler), ec,
                          outcome = std::move(outcome)]() mutable {
          if (ec) {
            if (storage_error(ec) == LogicError::kBusy) {
              metrics_.busy_total.fetch_add(1, std::memory_order_relaxed);
            } else if (storage_error(ec) != LogicError::kStorageFull) {
              // Not for a refusal for lack of space: the store logs that once (storage_space_low).
              log::warn("upstream_append_failed", {{"app", state->app}, {"error", ec.message()}});
            }
            std::move(handler)(storage_error(ec), UpstreamStored{});
            return;
          }
          if (outcome.existing) {
            metrics_.duplicates_total.fetch_add(1, std::memory_order_relaxed);
            std::move(handler)(boost::system::error_code{}, UpstreamStored{0, 0, true});
            return;
          }
          metrics_.stored_total.fetch_add(1, std::memory_order_relaxed);
          // Commit before deliver: the entry is durable, so its dispatcher may read it now.
          if (on_stored_) on_stored_(state->app);
          const auto& stored = outcome.results.front();
          std::move(handler)(boost::system::error_code{},
                             UpstreamStored{stored.epoch, stored.seq, false});
        });
      });
}

}  // namespace herald::logic
