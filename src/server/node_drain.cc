#include "server/node_drain.h"

#include <utility>

#include <boost/asio/post.hpp>

#include "common/log.h"

namespace herald::server {

namespace {

// How often a drain looks whether the devices are gone. The exit comes at most this late.
constexpr auto kCheckInterval = std::chrono::milliseconds(100);
// How often a drain logs its progress.
constexpr auto kProgressInterval = std::chrono::seconds(5);

}  // namespace

NodeDrain::NodeDrain(boost::asio::io_context& io, access::AccessServer& access,
                     const access::AccessMetrics& metrics, std::atomic<bool>& draining,
                     Defaults defaults, std::function<void()> shutdown, logic::Clock clock)
    : io_(io),
      access_(access),
      metrics_(metrics),
      draining_(draining),
      defaults_(defaults),
      shutdown_(std::move(shutdown)),
      clock_(std::move(clock)),
      timer_(io) {
  state_.rate_per_s = defaults_.rate_per_s;
  state_.deadline_s = defaults_.deadline_s;
}

http::DrainState NodeDrain::drain_state() const {
  http::DrainState state;
  {
    const std::lock_guard lock(mutex_);
    state = state_;
  }
  state.connections = metrics_.connections.load(std::memory_order_relaxed);
  state.reconnects_sent = metrics_.drain_reconnects_total.load(std::memory_order_relaxed);
  return state;
}

bool NodeDrain::start_drain(const http::DrainRequest& request) {
  {
    const std::lock_guard lock(mutex_);
    if (state_.draining) return false;
    state_.draining = true;
    state_.rate_per_s = request.rate_per_s.value_or(defaults_.rate_per_s);
    state_.deadline_s = request.deadline_s.value_or(defaults_.deadline_s);
    state_.started_at_ms = clock_();
    state_.deadline_at_ms = state_.started_at_ms + std::int64_t{state_.deadline_s} * 1000;
    deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(state_.deadline_s);
    log::info("drain_started", {{"connections", metrics_.connections.load()},
                                {"rate_per_s", state_.rate_per_s},
                                {"deadline_s", state_.deadline_s}});
  }
  // Peers polling this node leave it out of their lists from now on.
  draining_.store(true, std::memory_order_relaxed);
  access_.drain(drain_state().rate_per_s);
  boost::asio::post(io_, [this] {
    last_progress_log_ = std::chrono::steady_clock::now();
    watch();
  });
  return true;
}

void NodeDrain::on_signal(int signal) {
  if (finished_) return;
  if (start_drain({})) {
    log::info("drain_signal", {{"signal", signal}});
    return;
  }
  log::info("drain_cut_short", {{"signal", signal}});
  finish("second_signal");
}

void NodeDrain::cancel() {
  finished_ = true;
  timer_.cancel();
}

void NodeDrain::watch() {
  if (finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const auto left = metrics_.connections.load(std::memory_order_relaxed);
  if (left <= 0) return finish("empty");
  std::chrono::steady_clock::time_point deadline;
  {
    const std::lock_guard lock(mutex_);
    deadline = deadline_;
  }
  if (now >= deadline) return finish("deadline");
  if (now - last_progress_log_ >= kProgressInterval) {
    last_progress_log_ = now;
    log::info("drain_progress",
              {{"connections", left},
               {"reconnects_sent", metrics_.drain_reconnects_total.load()},
               {"deadline_in_ms",
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()}});
  }
  timer_.expires_after(kCheckInterval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) watch();
  });
}

void NodeDrain::finish(const char* why) {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  const auto state = drain_state();
  log::info("drain_ended", {{"reason", why},
                            {"connections_left", state.connections},
                            {"reconnects_sent", state.reconnects_sent},
                            {"elapsed_ms", clock_() - state.started_at_ms}});
  shutdown_();
}

}  // namespace herald::server
