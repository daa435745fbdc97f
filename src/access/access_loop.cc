#include "access/access_loop.h"

#include <sys/socket.h>

#include <chrono>
#include <tuple>

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
// Readers served in one go before the loop turns to its other work.
constexpr std::size_t kFanoutSlice = 1024;
// Paced fan-outs under way at once on one loop; past it a paced notify goes out at once.
constexpr std::size_t kMaxPacedJobs = 64;
// The shortest step of a paced fan-out's timer.
constexpr auto kPaceStep = std::chrono::milliseconds(10);

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

}  // namespace

AccessLoop::AccessLoop(asio::io_context& io, const AccessContext& context,
                       const tcp::endpoint& endpoint, ConnectionAdmission& admission)
    : io_(io),
      context_(context),
      admission_(admission),
      acceptor_(io),
      tick_timer_(io),
      wheel_(context.options.wheel_tick_ms, kWheelSlots, now_ms()),
      defer_timer_(io),
      scratch_(kScratchBytes),
      plain_scratch_(context.tls != nullptr ? kScratchBytes : 0) {
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

void AccessLoop::refile_if_earlier(Session& session) { wheel_.refile_if_earlier(session); }

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

void AccessLoop::drain(std::shared_ptr<DrainPacer> pacer) {
  asio::post(io_, [this, pacer = std::move(pacer)]() mutable {
    if (draining_ || stopping_) return;
    draining_ = true;
    // No new device connection: the kernel refuses them (or hands them to a loop whose listener
    // is still open for a moment; that loop redirects their Hello).
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    wheel_.for_each(
        [this](const std::shared_ptr<Session>& s) { drain_queue_.push_back(s->weak_from_this()); });
    asio::co_spawn(io_, drain_loop(std::move(pacer)), asio::detached);
  });
}

asio::awaitable<void> AccessLoop::drain_loop(std::shared_ptr<DrainPacer> pacer) {
  asio::steady_timer timer(io_);
  std::size_t next = 0;
  // Sessions that closed, or are still in their handshake (on_hello redirects those), need no
  // turn of the pacer.
  const auto skip_idle = [this, &next] {
    while (next < drain_queue_.size()) {
      const auto session = drain_queue_[next].lock();
      if (session && session->drainable()) return;
      ++next;
    }
  };
  for (skip_idle(); next < drain_queue_.size() && !stopping_; skip_idle()) {
    timer.expires_at(pacer->claim());
    const auto waited = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (std::get<0>(waited) || stopping_) break;
    std::uint32_t sent = 0;
    for (; next < drain_queue_.size() && sent < pacer->batch(); ++next) {
      if (const auto session = drain_queue_[next].lock(); session && session->drain_away()) ++sent;
    }
  }
  std::vector<std::weak_ptr<Session>>().swap(drain_queue_);
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

void AccessLoop::fan_out(std::shared_ptr<const distribution::StreamNotify> notify) {
  asio::post(io_, [this, notify = std::move(notify)]() mutable { deliver(std::move(notify)); });
}

void AccessLoop::add_reader(std::uint64_t stream, Session* session) {
  readers_[stream].insert(session);
}

void AccessLoop::remove_reader(std::uint64_t stream, Session* session) {
  const auto it = readers_.find(stream);
  if (it == readers_.end()) return;
  it->second.erase(session);
  if (it->second.empty()) readers_.erase(it);
}

void AccessLoop::deliver(std::shared_ptr<const distribution::StreamNotify> notify) {
  if (stopping_) return;
  const auto it = readers_.find(notify->stream);
  if (it == readers_.end()) return;
  auto job = std::make_shared<FanoutJob>();
  job->notify = std::move(notify);
  protocol::append_notify(job->notify->stream, job->notify->head_seq, job->frame);
  // A snapshot: readers that leave meanwhile are skipped, those that join pull on their own.
  job->readers.reserve(it->second.size());
  for (Session* s : it->second) job->readers.push_back(s->weak_from_this());
  job->start = std::chrono::steady_clock::now();
  if (job->notify->spread_ms != 0 && paced_jobs_ < kMaxPacedJobs) {
    ++paced_jobs_;
    job->timer = std::make_unique<asio::steady_timer>(io_);
  }
  continue_job(std::move(job));
}

bool AccessLoop::run_slice(FanoutJob& job) {
  const auto& n = *job.notify;
  std::size_t due = job.readers.size();
  if (job.timer) {
    // Paced: the share of readers whose time has come, evenly over spread_ms.
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - job.start)
                             .count();
    const auto total = static_cast<double>(job.readers.size());
    due =
        std::min(job.readers.size(), static_cast<std::size_t>(total * static_cast<double>(elapsed) /
                                                              static_cast<double>(n.spread_ms)) +
                                         1);
  }
  const std::size_t end = std::min(due, job.next + kFanoutSlice);
  for (; job.next < end; ++job.next) {
    const auto session = job.readers[job.next].lock();
    if (!session) continue;
    if (n.filter && !n.filter->matches_sorted(session->shared_streams())) continue;
    if (n.priority == distribution::NotifyPriority::kNormal) {
      session->notify_here(n.stream, n.head_seq, n.priority);
    } else {
      session->send_shared_notify(job.frame);
    }
  }
  return job.next < job.readers.size();
}

void AccessLoop::continue_job(std::shared_ptr<FanoutJob> job) {
  if (stopping_ || !run_slice(*job)) {
    if (job->timer) --paced_jobs_;
    return;
  }
  if (!job->timer) {
    // The rest after the loop's other ready work.
    asio::post(io_, [this, job = std::move(job)]() mutable { continue_job(std::move(job)); });
    return;
  }
  // Paced: wake when the next reader is due (never more often than kPaceStep).
  const auto spread = std::chrono::milliseconds(job->notify->spread_ms);
  const auto next_due = job->start + spread * static_cast<std::int64_t>(job->next) /
                                         static_cast<std::int64_t>(job->readers.size());
  job->timer->expires_at(std::max(next_due, std::chrono::steady_clock::now() + kPaceStep));
  auto& timer = *job->timer;
  timer.async_wait([this, job = std::move(job)](const boost::system::error_code& ec) mutable {
    if (ec) {
      --paced_jobs_;
      return;
    }
    continue_job(std::move(job));
  });
}

asio::awaitable<void> AccessLoop::accept_loop() {
  auto& metrics = context_.metrics;
  asio::steady_timer backoff(io_);
  tcp::endpoint peer;
  while (!stopping_) {
    // Accepted onto io_ itself, so the socket carries the loop's own executor (Session::Socket);
    // accept4 fills in the peer's address, no getpeername needed.
    auto accepted = co_await acceptor_.async_accept(io_, peer, asio::as_tuple(asio::use_awaitable));
    const auto ec = std::get<0>(accepted);
    auto& socket = std::get<1>(accepted);
    if (ec == asio::error::operation_aborted || stopping_) break;
    if (ec) {
      // Out of file descriptors or a transient error: pause rather than spin.
      log::warn("accept_failed", {{"error", ec.message()}});
      backoff.expires_after(kAcceptBackoff);
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    metrics.accepted_total.fetch_add(1, std::memory_order_relaxed);
    if (!admission_.admit_source(peer.address(), now_ms())) {
      // Over its source's rate: a reset rather than a FIN, so the refusal leaves no TIME_WAIT
      // socket behind on this side however fast the source comes back.
      boost::system::error_code ignored;
      socket.set_option(asio::socket_base::linger(true, 0), ignored);
      socket.close(ignored);
      continue;
    }
    if (static_cast<std::size_t>(metrics.connections.load(std::memory_order_relaxed)) >=
        context_.options.max_connections) {
      metrics.rejected_over_capacity_total.fetch_add(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    if (const auto bytes = context_.options.socket_send_buffer_bytes; bytes != 0) {
      boost::system::error_code ignored;  // the kernel's default stays, which works too
      socket.set_option(asio::socket_base::send_buffer_size(static_cast<int>(bytes)), ignored);
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
