// NatProxy: a loopback TCP proxy that behaves like a bad mobile network, for tests of adaptive
// heartbeats and connection racing (docs/natsim.md).
//
//   client ──TCP──▶ NatProxy (listen) ──TCP──▶ target
//                   one mapping per accepted connection:
//                     client socket ◀── pump ──▶ target socket (one pump per direction)
//
// Modes:
//   kForward    bytes flow both ways; with an idle timeout, a mapping that carried no byte in
//               either direction for longer than it is dropped like a carrier NAT drops one:
//               from then on bytes either way are read and discarded, and neither end gets a FIN
//               or RST. Each dead socket stays open until its own end closes it.
//   kDelay      as kForward, but every chunk waits `delay` before it is written (a slow route).
//   kBlackhole  connections are accepted and never forwarded nor answered (a dead endpoint):
//               what the client sends is discarded, the socket stays open until the client closes.
//
// Bounds: at most `max_connections` mappings at once, dead ones included (a connection beyond it
// is closed as soon as it is accepted); each direction holds at most one chunk of `buffer_bytes`
// and stops reading its side while that chunk's write to the other side is pending, so a reader
// that does not read pushes back on its peer through TCP flow control.
//
// Threading: a NatProxy and its mappings run on one io_context, run by one thread. start() and
// stop() may be called from any thread; counters() too. Destroy the proxy only once that
// io_context has stopped running (stop() then let run() return, or io_context::stop()).
// NatProxyThread does that for a proxy that runs beside other threads (tests, herald-load).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace herald::natsim {

enum class NatMode { kForward, kBlackhole, kDelay };

struct NatProxyOptions {
  // Port 0: any free port; port() tells which.
  boost::asio::ip::tcp::endpoint listen{boost::asio::ip::address_v4::loopback(), 0};
  // Unused in kBlackhole.
  boost::asio::ip::tcp::endpoint target;
  NatMode mode = NatMode::kForward;
  // A mapping idle in both directions for longer than this is dropped; 0 = never.
  std::chrono::milliseconds idle_timeout{0};
  // kDelay: how long every chunk waits before it is forwarded.
  std::chrono::milliseconds delay{0};
  // Mappings at once, dead and blackholed ones included.
  std::size_t max_connections = 1024;
  // The most one direction of one mapping holds (its read buffer).
  std::size_t buffer_bytes = 64 * 1024;
  // A target that does not accept within this is given up: the client's socket is closed.
  std::chrono::milliseconds connect_timeout{5000};
};

// The proxy's counters. The first six only grow; the last two are current values. NatCounters
// is a snapshot; the proxy itself counts in a BasicNatCounters<std::atomic<std::uint64_t>>.
template <class Count>
struct BasicNatCounters {
  Count accepted{};          // connections accepted, rejected ones included
  Count rejected{};          // closed at once: max_connections reached
  Count connect_failures{};  // the target refused or did not answer in time
  Count dropped_idle{};      // mappings dropped for idleness
  Count bytes_forwarded{};   // both directions
  Count bytes_discarded{};   // read from dropped or blackholed mappings
  Count open_mappings{};     // mappings with at least one socket open
  Count dead_sockets{};      // open sockets of dropped or blackholed mappings
};
using NatCounters = BasicNatCounters<std::uint64_t>;

// One line, "accepted=1 rejected=0 ... dead_sockets=0", for logs and the tool's exit summary.
[[nodiscard]] std::string to_string(const NatCounters& counters);

namespace detail {
using SharedCounters = BasicNatCounters<std::atomic<std::uint64_t>>;
class Mapping;
}  // namespace detail

class NatProxy {
 public:
  // Binds and listens on options.listen. Throws boost::system::system_error when it cannot
  // (address in use, not local): a start-up failure.
  NatProxy(boost::asio::io_context& io, NatProxyOptions options);
  ~NatProxy();
  NatProxy(const NatProxy&) = delete;
  NatProxy& operator=(const NatProxy&) = delete;

  // Starts accepting. Any thread; once.
  void start();
  // Stops accepting and closes every mapping's sockets (both ends then see a FIN). Any thread.
  // Once the pending delays and timers have run out, the proxy leaves no work on its io_context.
  void stop();

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] const NatProxyOptions& options() const { return options_; }
  // Any thread.
  [[nodiscard]] NatCounters counters() const;

 private:
  boost::asio::awaitable<void> accept_loop();

  boost::asio::io_context& io_;
  const NatProxyOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  bool stopping_ = false;
  // Shared with the mappings, which may outlive the proxy until their io_context is destroyed.
  std::shared_ptr<detail::SharedCounters> counters_;
  // For stop(); expired entries are pruned on each accept.
  std::vector<std::weak_ptr<detail::Mapping>> mappings_;
};

// A NatProxy with an io_context and a thread of its own: for a test or load tool that runs the
// proxy in-process while its client and server run on other threads.
//
// Owns the io_context, the proxy and the thread. port(), counters() and proxy().stop() may be
// called from any thread; the object itself is created and destroyed by one.
class NatProxyThread {
 public:
  // Binds, listens and starts accepting on a new thread. Throws boost::system::system_error when
  // it cannot listen, as NatProxy does.
  explicit NatProxyThread(NatProxyOptions options);
  // Stops the io_context and joins the thread, then destroys the proxy; the mappings' sockets are
  // closed as the io_context goes, so every one the proxy held is closed when this returns.
  ~NatProxyThread();
  NatProxyThread(const NatProxyThread&) = delete;
  NatProxyThread& operator=(const NatProxyThread&) = delete;

  [[nodiscard]] std::uint16_t port() const { return proxy_.port(); }
  // Any thread: a snapshot of the proxy's counters.
  [[nodiscard]] NatCounters counters() const { return proxy_.counters(); }
  [[nodiscard]] NatProxy& proxy() { return proxy_; }

 private:
  // Order: the proxy is destroyed before the io_context it refers to, which owns the mappings.
  boost::asio::io_context io_{1};
  NatProxy proxy_;
  std::thread thread_;
};

}  // namespace herald::natsim
