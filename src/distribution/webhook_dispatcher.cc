#include "distribution/webhook_dispatcher.h"

#include <openssl/evp.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "common/log.h"
#include "distribution/webhook_signature.h"

namespace herald::distribution {

namespace asio = boost::asio;

namespace {

// Beyond this many doublings the delay is retry_max anyway; the cap keeps the shift defined.
constexpr unsigned kMaxDoublings = 30;

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock adds a NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Upstream message ids are "<device>:<decimal id>"; device ids may hold ':' but the id does not.
std::string_view device_of(std::string_view message_id) {
  const auto colon = message_id.rfind(':');
  return colon == std::string_view::npos ? message_id : message_id.substr(0, colon);
}

bool deliverable(const storage::Entry& e) {
  return e.kind == storage::DataKind::kJson || e.kind == storage::DataKind::kBinary;
}

}  // namespace

std::shared_ptr<WebhookDispatcher> WebhookDispatcher::create(
    asio::any_io_executor executor, WebhookDispatcherOptions options, storage::StreamStore& streams,
    storage::DeviceStore& devices, std::unique_ptr<WebhookTransport> transport, Clock clock) {
  return std::shared_ptr<WebhookDispatcher>(
      new WebhookDispatcher(std::move(executor), std::move(options), streams, devices,
                            std::move(transport), std::move(clock)));
}

WebhookDispatcher::WebhookDispatcher(asio::any_io_executor executor,
                                     WebhookDispatcherOptions options,
                                     storage::StreamStore& streams, storage::DeviceStore& devices,
                                     std::unique_ptr<WebhookTransport> transport, Clock clock)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      streams_(streams),
      devices_(devices),
      transport_(std::move(transport)),
      clock_(std::move(clock)),
      wake_timer_(executor_),
      retry_timer_(executor_),
      jitter_(options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()) {
  options_.max_batch_messages = std::max<std::size_t>(1, options_.max_batch_messages);
  options_.retry_initial = std::max(options_.retry_initial, std::chrono::milliseconds(1));
  options_.retry_max = std::max(options_.retry_max, options_.retry_initial);
}

void WebhookDispatcher::start() {
  // An exception escaping the loop (out of memory, a bug) stops this app's delivery only; it is
  // logged here, where the coroutine was spawned.
  asio::co_spawn(executor_, run(), [app = options_.app](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      log::error("upstream_dispatcher_failed", {{"app", app}, {"error", x.what()}});
    }
  });
}

void WebhookDispatcher::wake() {
  asio::post(executor_, [self = shared_from_this()] {
    self->woken_ = true;
    self->wake_timer_.cancel();
  });
}

void WebhookDispatcher::stop() {
  asio::post(executor_, [self = shared_from_this()] {
    self->stopping_ = true;
    self->wake_timer_.cancel();
    self->retry_timer_.cancel();
  });
}

void WebhookDispatcher::retarget(std::unique_ptr<WebhookTransport> transport, std::string secret) {
  asio::post(executor_, [self = shared_from_this(), transport = std::move(transport),
                         secret = std::move(secret)]() mutable {
    self->next_transport_ = std::move(transport);
    self->next_secret_ = std::move(secret);
    self->paused_ = false;
    // What is pending now goes to the new target at once, whatever the loop was waiting for.
    self->woken_ = true;
    self->wake_timer_.cancel();
    self->retry_timer_.cancel();
  });
}

void WebhookDispatcher::pause() {
  asio::post(executor_, [self = shared_from_this()] {
    self->paused_ = true;
    self->next_transport_.reset();  // the last call wins: a retarget() before it is void
    self->wake_timer_.cancel();
    self->retry_timer_.cancel();
  });
}

bool WebhookDispatcher::take_new_target() {
  if (!next_transport_) return false;
  // Between POSTs, so the old transport has nothing in flight and may go.
  transport_ = std::move(next_transport_);
  options_.secret = std::move(next_secret_);
  return true;
}

std::string WebhookDispatcher::batch_body(std::string_view app,
                                          const std::vector<storage::Entry>& entries) {
  boost::json::array messages;
  messages.reserve(entries.size());
  for (const auto& e : entries) {
    boost::json::object m;
    m["id"] = e.message_id;
    m["device"] = device_of(e.message_id);
    m["received_at_ms"] = e.sent_at_ms;
    boost::system::error_code ec;
    boost::json::value json;
    if (e.kind == storage::DataKind::kJson) json = boost::json::parse(e.data, ec);
    if (e.kind == storage::DataKind::kJson && !ec) {
      m["data"] = std::move(json);
    } else {
      // Binary data; or JSON the store holds in a form that no longer parses (UpstreamService
      // validates it, so only a damaged record): sent as bytes rather than as broken JSON.
      m["encoding"] = "base64";
      m["data"] = base64(e.data);
    }
    messages.emplace_back(std::move(m));
  }
  boost::json::object body;
  body["app"] = app;
  body["messages"] = std::move(messages);
  return boost::json::serialize(body);
}

bool WebhookDispatcher::load_cursor() {
  auto stored = devices_.acked(kWebhookCursorOwner, options_.stream);
  if (!stored) {
    log::warn("upstream_cursor_load_failed",
              {{"app", options_.app}, {"error", stored.error().message()}});
    return false;
  }
  cursor_ = stored->value_or(storage::AckedCursor{});
  metrics_.delivered_seq.store(cursor_.seq, std::memory_order_relaxed);
  return true;
}

void WebhookDispatcher::save_cursor() {
  cursor_.acked_at_ms = clock_();
  metrics_.delivered_seq.store(cursor_.seq, std::memory_order_relaxed);
  // Through the writer, unsynced and forward only (AppendBatch::acked_cursors): this loop holds
  // device connections too and must not wait behind a group's fsync. A failed save leaves the
  // newer cursor in memory; the next save carries it. Until then a restart sends those batches
  // again, which at-least-once delivery allows.
  storage::AppendBatch batch;
  batch.now_ms = cursor_.acked_at_ms;
  batch.sync = false;
  batch.acked_cursors.push_back({std::string(kWebhookCursorOwner), options_.stream, cursor_});
  streams_.async_append(
      std::move(batch),
      asio::bind_executor(executor_, [app = options_.app](boost::system::error_code ec,
                                                          const storage::AppendOutcome&) {
        if (ec) log::warn("upstream_cursor_save_failed", {{"app", app}, {"error", ec.message()}});
      }));
}

asio::awaitable<void> WebhookDispatcher::run() {
  const auto self = shared_from_this();
  unsigned attempt = 0;  // failed attempts in a row (loading the cursor, reading, posting)
  while (!stopping_ && !load_cursor()) co_await back_off(++attempt);
  attempt = 0;

  while (!stopping_) {
    if (take_new_target()) attempt = 0;  // a new backend gets a fresh backoff
    if (paused_) {
      // Until retarget() or stop(); a wake() for an entry stored meanwhile only loops back here.
      woken_ = false;
      co_await sleep_until_woken();
      continue;
    }
    // Cleared before the read: a wake() from here on is for entries this read may miss, and it
    // keeps the next sleep from starting.
    woken_ = false;
    storage::ReadRequest request;
    request.stream = options_.stream;
    request.epoch = cursor_.epoch;
    request.after_seq = cursor_.seq;
    request.max_entries = options_.max_batch_messages;
    request.max_bytes = options_.max_batch_bytes;
    request.now_ms = clock_();
    auto read = streams_.read(request);
    if (!read) {
      log::warn("upstream_read_failed", {{"app", options_.app}, {"error", read.error().message()}});
      co_await back_off(++attempt);
      continue;
    }

    std::uint64_t after = cursor_.seq;
    if (read->epoch != cursor_.epoch) {
      if (read->epoch_changed) {
        log::warn(
            "upstream_epoch_changed",
            {{"app", options_.app}, {"delivered_seq", cursor_.seq}, {"head", read->head_seq}});
      }
      // A new epoch numbers from 1 again; the store answered from its start (epoch_changed), or
      // this is the stream's first epoch and the cursor had none.
      cursor_ = storage::AckedCursor{read->epoch, 0, 0};
      after = 0;
    }
    if (read->truncated_before > after + 1) {
      // Entries after the cursor expired before they could be delivered: step over them now, so
      // they neither count as pending nor get read again.
      const std::uint64_t expired = read->truncated_before - 1 - after;
      metrics_.expired_total.fetch_add(expired, std::memory_order_relaxed);
      log::warn("upstream_expired", {{"app", options_.app},
                                     {"messages", expired},
                                     {"first_seq", after + 1},
                                     {"last_seq", read->truncated_before - 1}});
      cursor_.seq = read->truncated_before - 1;
      save_cursor();
    }

    std::vector<storage::Entry> batch;
    std::uint64_t last_seq = cursor_.seq;
    for (auto& e : read->entries) {
      last_seq = e.seq;
      if (deliverable(e)) batch.push_back(std::move(e));
    }
    if (batch.empty()) {
      if (last_seq != cursor_.seq) {  // only entries nobody should get (tombstones)
        cursor_.seq = last_seq;
        save_cursor();
        continue;
      }
      if (read->more) continue;  // the read stopped at a gap; the next one reports it
      co_await sleep_until_woken();
      continue;
    }

    WebhookPost post;
    post.body = batch_body(options_.app, batch);
    post.headers.emplace_back(kWebhookSignatureHeader,
                              webhook_signature(options_.secret, clock_() / 1000, post.body));
    auto status = co_await transport_->async_post(std::move(post));
    if (status && *status >= 200 && *status < 300) {
      if (attempt > 0) {
        log::info("upstream_webhook_recovered", {{"app", options_.app}, {"attempts", attempt}});
      }
      attempt = 0;
      cursor_.seq = last_seq;
      save_cursor();
      metrics_.delivered_total.fetch_add(batch.size(), std::memory_order_relaxed);
      metrics_.batches_total.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    metrics_.failed_attempts_total.fetch_add(1, std::memory_order_relaxed);
    ++attempt;
    // One line per failed attempt; the backoff spaces them out (at most one per retry_max).
    if (status) {
      log::warn("upstream_webhook_failed",
                {{"app", options_.app}, {"attempt", attempt}, {"status", *status}});
    } else {
      log::warn("upstream_webhook_failed",
                {{"app", options_.app}, {"attempt", attempt}, {"error", status.error().message()}});
    }
    // A target changed or a pause came during the POST: no backoff for the old backend's failure.
    if (next_transport_ || paused_) continue;
    co_await back_off(attempt);
  }
}

asio::awaitable<void> WebhookDispatcher::sleep_until_woken() {
  if (woken_ || stopping_) co_return;
  wake_timer_.expires_at(asio::steady_timer::time_point::max());
  // Ends by wake() or stop() cancelling the timer; the error says nothing more.
  co_await wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> WebhookDispatcher::back_off(unsigned attempt) {
  if (stopping_) co_return;
  retry_timer_.expires_after(
      backoff_delay(attempt, options_.retry_initial, options_.retry_max, jitter_));
  co_await retry_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
}

std::chrono::milliseconds WebhookDispatcher::backoff_delay(unsigned attempt,
                                                           std::chrono::milliseconds initial,
                                                           std::chrono::milliseconds max,
                                                           std::mt19937_64& random) {
  const unsigned doublings = std::min(attempt == 0 ? 0 : attempt - 1, kMaxDoublings);
  const auto first = static_cast<std::uint64_t>(std::max<std::int64_t>(1, initial.count()));
  const auto cap = static_cast<std::uint64_t>(std::max<std::int64_t>(1, max.count()));
  // Compared before shifting, so that no configuration can overflow the shift.
  const std::uint64_t delay = first > (cap >> doublings) ? cap : first << doublings;
  std::uniform_int_distribution<std::uint64_t> jitter(delay / 2, delay);
  return std::chrono::milliseconds(static_cast<std::int64_t>(jitter(random)));
}

}  // namespace herald::distribution
