#include "natsim/nat_proxy.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <tuple>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace herald::natsim {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// After EMFILE/ENFILE the acceptor pauses instead of spinning on the same error.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);

}  // namespace

namespace detail {

// One proxied connection: the client's socket, the target's, and the coroutines between them
// (two pumps and an idle watch; one pump for a blackholed connection). The coroutines own the
// mapping through shared_from_this; it ends when both sockets are closed and they have returned.
//
// States: live (forwarding) ── idle timeout ──▶ dropped (discarding, no FIN/RST) ── each end
// closes ──▶ closed. A blackholed mapping starts dropped. Any state ── close() ──▶ closed.
class Mapping : public std::enable_shared_from_this<Mapping> {
 public:
  Mapping(tcp::socket client, const NatProxyOptions& options,
          std::shared_ptr<SharedCounters> counters)
      : options_(options),
        counters_(std::move(counters)),
        sockets_{tcp::socket(client.get_executor()), tcp::socket(client.get_executor())},
        idle_timer_(client.get_executor()) {
    sockets_[kClient] = std::move(client);
    counters_->open_mappings.fetch_add(1, std::memory_order_relaxed);
  }

  ~Mapping() {
    close();
    counters_->open_mappings.fetch_sub(1, std::memory_order_relaxed);
  }

  void start() { asio::co_spawn(idle_timer_.get_executor(), run(), asio::detached); }

  // Closes both sockets: the ends see a FIN, the coroutines return.
  void close() {
    closed_ = true;
    close_side(kClient);
    close_side(kTarget);
    idle_timer_.cancel();
  }

 private:
  static constexpr int kClient = 0;
  static constexpr int kTarget = 1;

  asio::awaitable<void> run() {
    const auto self = shared_from_this();
    if (options_.mode == NatMode::kBlackhole) {
      open_[kClient] = true;
      mark_dead();
      running_ = 1;
      co_await pump(kClient);
      co_return;
    }
    open_[kClient] = true;
    if (!co_await connect_target()) {
      counters_->connect_failures.fetch_add(1, std::memory_order_relaxed);
      close();
      co_return;
    }
    open_[kTarget] = true;
    boost::system::error_code ignored;  // Nagle only adds latency to a test's small writes
    for (auto& socket : sockets_) socket.set_option(tcp::no_delay(true), ignored);
    running_ = 2;
    touch();
    const auto executor = idle_timer_.get_executor();
    asio::co_spawn(executor, pump(kTarget), asio::detached);
    if (options_.idle_timeout.count() > 0) asio::co_spawn(executor, watch_idle(), asio::detached);
    co_await pump(kClient);
  }

  // True once connected. A target that does not answer in connect_timeout is given up.
  asio::awaitable<bool> connect_target() {
    asio::steady_timer deadline(idle_timer_.get_executor());
    deadline.expires_after(options_.connect_timeout);
    deadline.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->close_side(kTarget);
    });
    auto [ec] = co_await sockets_[kTarget].async_connect(options_.target, kAwait);
    deadline.cancel();
    co_return !ec && !closed_;
  }

  // Moves bytes from sockets_[from] to the other socket, one chunk at a time: it does not read
  // again until the chunk is written (backpressure). Once dropped it reads and discards.
  asio::awaitable<void> pump(int from) {
    const auto self = shared_from_this();
    const int to = 1 - from;
    std::vector<char> chunk(options_.buffer_bytes);
    asio::steady_timer delay(idle_timer_.get_executor());
    boost::system::error_code end;
    for (;;) {
      auto [ec, n] = co_await sockets_[from].async_read_some(asio::buffer(chunk), kAwait);
      if (ec == asio::error::operation_aborted && dropped_ && !closed_ && open_[from]) continue;
      if (ec) {
        end = ec;
        break;
      }
      if (dropped_) {
        counters_->bytes_discarded.fetch_add(n, std::memory_order_relaxed);
        continue;
      }
      touch();
      // Invariant: in_flight_ counts chunks read but not yet written; while one is, the mapping
      // is not idle (a real route would be carrying it).
      ++in_flight_;
      if (options_.mode == NatMode::kDelay) {
        delay.expires_after(options_.delay);
        co_await delay.async_wait(kAwait);
      }
      boost::system::error_code write_ec;
      if (!dropped_ && !closed_) {
        std::tie(write_ec, std::ignore) =
            co_await asio::async_write(sockets_[to], asio::buffer(chunk.data(), n), kAwait);
      }
      --in_flight_;
      if (dropped_) {
        counters_->bytes_discarded.fetch_add(n, std::memory_order_relaxed);
        continue;
      }
      if (write_ec || closed_) {
        end = write_ec ? write_ec : asio::error::operation_aborted;
        break;
      }
      counters_->bytes_forwarded.fetch_add(n, std::memory_order_relaxed);
      touch();
    }
    boost::system::error_code ignored;
    if (dropped_) {
      close_side(from);  // the end gave up on its dead connection
    } else if (end == asio::error::eof) {
      sockets_[to].shutdown(tcp::socket::shutdown_send, ignored);  // pass the FIN on
    } else {
      close();  // a reset, a failed write or stop(): tear the mapping down
    }
    if (--running_ == 0) close();
  }

  asio::awaitable<void> watch_idle() {
    const auto self = shared_from_this();
    for (;;) {
      idle_timer_.expires_at(last_activity_ + options_.idle_timeout);
      auto [ec] = co_await idle_timer_.async_wait(kAwait);
      if (ec || closed_ || dropped_) co_return;
      if (in_flight_ > 0) touch();
      if (Clock::now() >= last_activity_ + options_.idle_timeout) break;
    }
    counters_->dropped_idle.fetch_add(1, std::memory_order_relaxed);
    mark_dead();
    // The pumps' pending reads and writes end with operation_aborted; they go on discarding.
    boost::system::error_code ignored;
    for (int side : {kClient, kTarget}) {
      if (open_[side]) sockets_[side].cancel(ignored);
    }
  }

  void touch() { last_activity_ = Clock::now(); }

  void mark_dead() {
    dropped_ = true;
    const auto open = static_cast<std::uint64_t>(open_[kClient]) + open_[kTarget];
    counters_->dead_sockets.fetch_add(open, std::memory_order_relaxed);
  }

  void close_side(int side) {
    if (open_[side] && dropped_) counters_->dead_sockets.fetch_sub(1, std::memory_order_relaxed);
    open_[side] = false;
    boost::system::error_code ignored;
    sockets_[side].close(ignored);
  }

  const NatProxyOptions options_;
  const std::shared_ptr<SharedCounters> counters_;
  std::array<tcp::socket, 2> sockets_;  // [kClient], [kTarget]
  std::array<bool, 2> open_{false, false};
  asio::steady_timer idle_timer_;
  Clock::time_point last_activity_ = Clock::now();
  int running_ = 0;    // pumps not yet returned
  int in_flight_ = 0;  // chunks read and not yet written, both directions
  bool dropped_ = false;
  bool closed_ = false;
};

}  // namespace detail

std::string to_string(const NatCounters& c) {
  return "accepted=" + std::to_string(c.accepted) + " rejected=" + std::to_string(c.rejected) +
         " connect_failures=" + std::to_string(c.connect_failures) +
         " dropped_idle=" + std::to_string(c.dropped_idle) +
         " bytes_forwarded=" + std::to_string(c.bytes_forwarded) +
         " bytes_discarded=" + std::to_string(c.bytes_discarded) +
         " open_mappings=" + std::to_string(c.open_mappings) +
         " dead_sockets=" + std::to_string(c.dead_sockets);
}

NatProxy::NatProxy(asio::io_context& io, NatProxyOptions options)
    : io_(io),
      options_(std::move(options)),
      acceptor_(io, options_.listen),
      counters_(std::make_shared<detail::SharedCounters>()) {
  port_ = acceptor_.local_endpoint().port();
}

NatProxy::~NatProxy() = default;

void NatProxy::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void NatProxy::stop() {
  asio::post(io_, [this] {
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (const auto& weak : mappings_) {
      if (const auto mapping = weak.lock()) mapping->close();
    }
    mappings_.clear();
  });
}

NatCounters NatProxy::counters() const {
  const auto& c = *counters_;
  constexpr auto kRelaxed = std::memory_order_relaxed;
  return {c.accepted.load(kRelaxed),         c.rejected.load(kRelaxed),
          c.connect_failures.load(kRelaxed), c.dropped_idle.load(kRelaxed),
          c.bytes_forwarded.load(kRelaxed),  c.bytes_discarded.load(kRelaxed),
          c.open_mappings.load(kRelaxed),    c.dead_sockets.load(kRelaxed)};
}

asio::awaitable<void> NatProxy::accept_loop() {
  asio::steady_timer backoff(io_);
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(kAwait);
    if (ec == asio::error::operation_aborted || stopping_) break;
    if (ec) {
      // Out of file descriptors or a transient error: pause rather than spin.
      backoff.expires_after(kAcceptBackoff);
      co_await backoff.async_wait(kAwait);
      continue;
    }
    counters_->accepted.fetch_add(1, std::memory_order_relaxed);
    if (counters_->open_mappings.load(std::memory_order_relaxed) >= options_.max_connections) {
      counters_->rejected.fetch_add(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    std::erase_if(mappings_, [](const auto& weak) { return weak.expired(); });
    auto mapping = std::make_shared<detail::Mapping>(std::move(socket), options_, counters_);
    mappings_.push_back(mapping);
    mapping->start();
  }
}

NatProxyThread::NatProxyThread(NatProxyOptions options) : proxy_(io_, std::move(options)) {
  proxy_.start();
  thread_ = std::thread([this] { io_.run(); });
}

NatProxyThread::~NatProxyThread() {
  // NatProxy's rule: its io_context has stopped running before it is destroyed.
  io_.stop();
  thread_.join();
}

}  // namespace herald::natsim
