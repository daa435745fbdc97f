#include "access/access_loop.h"

#include <sys/socket.h>

#include <chrono>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "access/session.h"
#include "common/log.h"

namespace herald::access {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::size_t kScratchBytes = 64 * 1024;
// A revolution of the wheel; longer deadlines are refiled each time round.
constexpr std::size_t kWheelSlots = 4096;
// After EMFILE/ENFILE the acceptor pauses instead of spinning on the same error.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

}  // namespace

AccessLoop::AccessLoop(asio::io_context& io, const AccessContext& context,
                       const tcp::endpoint& endpoint)
    : io_(io),
      context_(context),
      acceptor_(io),
      tick_timer_(io),
      wheel_(context.options.wheel_tick_ms, kWheelSlots, now_ms()),
      defer_timer_(io),
      scratch_(kScratchBytes) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.set_option(ReusePort(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(context.options.listen_backlog);
  port_ = acceptor_.local_endpoint().port();
}

std::int64_t AccessLoop::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void AccessLoop::watch(const std::shared_ptr<Session>& session) { wheel_.add(session); }

void AccessLoop::start() {
  asio::co_spawn(io_, accept_loop(), asio::detached);
  asio::co_spawn(io_, tick_loop(), asio::detached);
}

void AccessLoop::stop() {
  asio::post(io_, [this] {
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    tick_timer_.cancel();
    // Every connection is told to reconnect elsewhere; it pulls there what it was not told here.
    defer_timer_.cancel();
    deferred_.clear();
    wheel_.for_each([](const std::shared_ptr<Session>& s) { s->shut_down(); });
  });
}

void AccessLoop::defer_notifies(std::shared_ptr<Session> session) {
  const bool idle = deferred_.empty();
  deferred_.push_back({std::chrono::steady_clock::now() +
                           std::chrono::milliseconds(context_.options.normal_notify_delay_ms),
                       std::move(session)});
  if (idle && !stopping_) arm_defer_timer();
}

void AccessLoop::arm_defer_timer() {
  defer_timer_.expires_at(deferred_.front().due);
  defer_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) flush_due();
  });
}

void AccessLoop::flush_due() {
  const auto now = std::chrono::steady_clock::now();
  while (!deferred_.empty() && deferred_.front().due <= now) {
    const auto session = std::move(deferred_.front().session);
    deferred_.pop_front();
    session->flush_deferred();
  }
  if (!deferred_.empty() && !stopping_) arm_defer_timer();
}

asio::awaitable<void> AccessLoop::accept_loop() {
  auto& metrics = context_.metrics;
  asio::steady_timer backoff(io_);
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || stopping_) break;
    if (ec) {
      // Out of file descriptors or a transient error: pause rather than spin.
      log::warn("accept_failed", {{"error", ec.message()}});
      backoff.expires_after(kAcceptBackoff);
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    metrics.accepted_total.fetch_add(1, std::memory_order_relaxed);
    if (static_cast<std::size_t>(metrics.connections.load(std::memory_order_relaxed)) >=
        context_.options.max_connections) {
      metrics.rejected_over_capacity_total.fetch_add(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    auto session = std::make_shared<Session>(*this, std::move(socket));
    wheel_.add(session);
    session->start();
  }
}

asio::awaitable<void> AccessLoop::tick_loop() {
  const auto tick = std::chrono::milliseconds(context_.options.wheel_tick_ms);
  while (!stopping_) {
    tick_timer_.expires_after(tick);
    auto [ec] = co_await tick_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || stopping_) break;
    wheel_.advance(now_ms(), [](const std::shared_ptr<Session>& s) { s->expire(); });
  }
}

}  // namespace herald::access
