// Connection floods against a real heraldd (issue 7; docs/operations.md, "Connection floods"):
// one source opening connections far beyond its rate, and a slowloris of silent sockets beyond
// the cap of unauthenticated connections. Each flood comes from its own loopback address (raw
// sockets bound to it) while a real device, through the client library, connects from another
// one and receives a push meanwhile.
//
// What heraldd holds is read from the kernel's socket table (/proc/PID/net/tcp): a connection
// heraldd accepted and has not shut down is ESTABLISHED with a socket inode; one still waiting
// in the listen backlog has inode 0, one it shut down is no longer ESTABLISHED. Waits are on
// events (a socket's end of stream, a client's state, a message) bounded by kWait.
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "protocol/frame_codec.h"
#include "raw_peer.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

constexpr auto kWait = 30s;
// Where the well-behaved device connects from; each flood has its own source below.
constexpr const char* kDeviceSource = "127.0.0.8";

// The kernel's socket table of heraldd's network namespace (/proc/PID/net/tcp).
std::string socket_table(const HeraldServer& server) {
  std::ifstream in("/proc/" + std::to_string(server.pid()) + "/net/tcp");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Connections heraldd holds from `source`: ESTABLISHED rows whose local end is the device port
// on 127.0.0.1 and whose socket has an inode (accepted; the backlog's have none). Addresses
// print as the 32-bit word in memory, in hex (127.0.0.9 is 0900007F on this little-endian
// host). The kernel hands the table out a page at a time and resumes each page at a saved
// position, which repeats or skips a row when other processes' sockets come and go meanwhile:
// the table is read three times and the remote ends counted once.
int held_from(const HeraldServer& server, const std::string& source) {
  const auto bytes = asio::ip::make_address_v4(source).to_bytes();
  std::array<char, 16> remote{};
  std::snprintf(remote.data(), remote.size(), "%02X%02X%02X%02X:", bytes[3], bytes[2], bytes[1],
                bytes[0]);
  std::array<char, 16> local{};
  std::snprintf(local.data(), local.size(), "0100007F:%04X", server.device_port());
  std::set<std::string> held;
  for (int pass = 0; pass < 3; ++pass) {
    std::istringstream table(socket_table(server));
    std::string line;
    std::getline(table, line);  // the header
    while (std::getline(table, line)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      std::istringstream fields(line);
      std::string slot, loc, rem, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> loc >> rem >> state >> queues >> timer >> retransmits >> uid >> timeout >>
          inode;
      if (loc == local.data() && rem.starts_with(remote.data()) && state == "01" && inode != "0") {
        held.insert(rem);
      }
    }
  }
  return static_cast<int>(held.size());
}

// One raw connection from a chosen source address, reading in the background (on the test's
// io_context) until the server closes it: what it received, and whether it ended.
struct Probe {
  explicit Probe(asio::io_context& io) : socket(io) {}
  tcp::socket socket;
  std::string received;
  // The TCP handshake completed. A connect() that saw the server's reset before it returned
  // counts too: heraldd accepted it, then refused it (the reset of a rate-limited connection).
  bool connected = false;
  bool ended = false;
  std::array<char, 1024> buffer{};
};

void read_until_end(Probe& p) {
  p.socket.async_read_some(asio::buffer(p.buffer),
                           [&p](const boost::system::error_code& ec, std::size_t n) {
                             if (ec) {
                               p.ended = true;  // end of stream, or reset
                               return;
                             }
                             p.received.append(p.buffer.data(), n);
                             read_until_end(p);
                           });
}

// Connects from `source` to heraldd's device port and sends `bytes` (may be empty); the probe
// then reads until the end. A connection that fails outright counts as ended at once.
std::unique_ptr<Probe> open_probe(asio::io_context& io, const HeraldServer& server,
                                  const std::string& source, const std::string& bytes = {}) {
  auto p = std::make_unique<Probe>(io);
  boost::system::error_code ec;
  p->socket.open(tcp::v4(), ec);
  // The port is chosen at connect() for the whole 4-tuple, not at bind(): thousands of sockets
  // from one address across repeated runs do not run out of ports.
  const int one = 1;
  ::setsockopt(p->socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  if (!ec) p->socket.bind({asio::ip::make_address(source), 0}, ec);
  if (!ec) p->socket.connect({asio::ip::make_address("127.0.0.1"), server.device_port()}, ec);
  if (ec) {
    p->connected = ec == asio::error::connection_reset;
    p->ended = true;
    return p;
  }
  p->connected = true;
  if (!bytes.empty()) asio::write(p->socket, asio::buffer(bytes), ec);  // refused ones may reset
  read_until_end(*p);
  return p;
}

// Runs `io` until `done()` holds; false when `timeout` passed first or nothing is left to wait
// for.
template <typename Done>
bool run_until(asio::io_context& io, Done done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    if (io.run_one_until(deadline) == 0 && io.stopped() && !done()) return false;
  }
  return true;
}

std::size_t count_connected(const std::vector<std::unique_ptr<Probe>>& probes) {
  std::size_t n = 0;
  for (const auto& p : probes) n += p->connected ? 1 : 0;
  return n;
}

std::size_t count_ended(const std::vector<std::unique_ptr<Probe>>& probes) {
  std::size_t n = 0;
  for (const auto& p : probes) n += p->ended ? 1 : 0;
  return n;
}

// The type of the first frame in `bytes`, if a whole one is there.
std::optional<protocol::FrameType> first_frame_type(const std::string& bytes) {
  const auto r = protocol::parse_frame(
      {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}, 1 << 20);
  if (r.status != protocol::ParseStatus::kComplete) return std::nullopt;
  return r.frame.type;
}

// A device through the real client library, connecting from kDeviceSource.
class SourcedDevice {
 public:
  SourcedDevice(const HeraldServer& server, const std::string& device, const std::string& token)
      : client_(loop_, options(server, device, token), make_memory_cursor_store()) {
    client_.on_message(kNewsApp.id, inbox_.handler());
    client_.on_state(states_.handler());
    client_.start();
  }
  ~SourcedDevice() { client_.stop(); }
  SourcedDevice(const SourcedDevice&) = delete;
  SourcedDevice& operator=(const SourcedDevice&) = delete;

  Inbox& inbox() { return inbox_; }
  StateLog& states() { return states_; }

 private:
  static ClientOptions options(const HeraldServer& server, const std::string& device,
                               const std::string& token) {
    ClientOptions o = device_options(server, device, token);
    o.local_address = kDeviceSource;
    o.race_width = 1;  // one connection attempt at a time: the tests count the pending ones
    return o;
  }

  EventLoop loop_;
  Inbox inbox_;
  StateLog states_;
  Client client_;
};

// A push to `device` reaches it: the `n`-th message it received is this one.
void expect_push_arrives(Sender& sender, SourcedDevice& device, const std::string& id,
                         std::size_t n) {
  const auto pushed = sender.push(kNewsApp, {id}, R"({"title":"through the flood"})");
  ASSERT_TRUE(pushed.accepted()) << pushed.status;
  ASSERT_EQ(device.inbox().wait_for(n, kWait), n) << "the push did not arrive";
  EXPECT_EQ(device.inbox().messages()[n - 1].id, pushed.id());
}

// (a) One source opening connections far beyond its rate: all but its burst and its refill are
// closed at once without a frame, while a device from another source connects and is served.
TEST(Flood, OneSourceOverItsRateIsRefusedWhileOtherSourcesAreServed) {
  constexpr int kRatePerS = 2;
  constexpr int kBurst = 5;
  constexpr int kMinFlood = 2'000;  // connections, at least
  constexpr int kMaxFlood = 5'000;  // and at most, however slow the device is
  HeraldServer server({"--access.connect_rate_per_s=" + std::to_string(kRatePerS),
                       "--access.connect_burst=" + std::to_string(kBurst)});
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-a");

  // The flood, on its own thread and io_context: each connection sends two bytes of an unknown
  // frame type, so one that is admitted is answered with an Error frame before it is closed,
  // and one that is refused is closed without any frame.
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> opened{0};
  std::vector<std::unique_ptr<Probe>> probes;
  bool all_ended = false;
  std::chrono::steady_clock::duration flood_time{};
  std::thread flood([&] {
    asio::io_context io;
    const auto start = std::chrono::steady_clock::now();
    while (probes.size() < static_cast<std::size_t>(kMaxFlood) &&
           (!stop || probes.size() < static_cast<std::size_t>(kMinFlood))) {
      probes.push_back(open_probe(io, server, "127.0.0.9", std::string("\x7f\x00", 2)));
      opened = probes.size();
      io.poll();
      if (io.stopped()) io.restart();
    }
    all_ended = run_until(
        io, [&] { return count_ended(probes) == probes.size(); }, kWait);
    // Every connection heraldd accepted from the flood, it accepted before this.
    flood_time = std::chrono::steady_clock::now() - start;
    for (auto& p : probes) {
      boost::system::error_code ignored;
      p->socket.close(ignored);
    }
  });
  // The flood begins first and goes on until the device has received its push (how many of its
  // connections fall in between is the scheduler's business on a loaded machine).
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (opened < static_cast<std::size_t>(kBurst) * 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  const std::size_t opened_before = opened;
  {
    SourcedDevice device(server, "phone-a", token);
    EXPECT_TRUE(device.states().wait_connected(kWait));
    expect_push_arrives(sender, device, "phone-a", 1);
  }
  const std::size_t opened_meanwhile = opened - opened_before;
  stop = true;
  flood.join();
  EXPECT_GE(opened_before, static_cast<std::size_t>(kBurst) * 2) << "the flood did not start";

  ASSERT_TRUE(all_ended) << "some flood connections were neither answered nor closed";
  ASSERT_EQ(count_connected(probes), probes.size()) << "a connection failed outright";
  int answered = 0;
  int refused = 0;
  for (const auto& p : probes) {
    if (p->received.empty()) {
      ++refused;
      continue;
    }
    ++answered;
    EXPECT_EQ(first_frame_type(p->received), protocol::FrameType::kError);
  }
  // Admitted: the burst, plus what the bucket refilled while the flood lasted, from its first
  // connection to the end of its last (+1 for rounding).
  const double flood_s = std::chrono::duration<double>(flood_time).count();
  const int allowed = kBurst + static_cast<int>(kRatePerS * flood_s) + 1;
  std::cout << "flood: " << probes.size() << " connections in " << flood_s << " s ("
            << opened_meanwhile << " while the device connected and got its push), " << answered
            << " admitted (at most " << allowed << "), " << refused << " refused\n";
  EXPECT_GE(answered, kBurst);
  EXPECT_LE(answered, allowed);
  EXPECT_GE(refused, static_cast<int>(probes.size()) - allowed);
}

// (b) A slowloris of silent sockets beyond the cap of unauthenticated connections: heraldd never
// holds more than the cap of them (the oldest go first), a device still connects and receives a
// push while the cap is full, and once authenticated it is never the one evicted.
TEST(Flood, SilentSocketsBeyondTheCapEvictTheOldestAndDevicesStillGetIn) {
  constexpr int kCap = 16;
  const std::string source = "127.0.0.10";
  HeraldServer server({"--access.max_unauthenticated=" + std::to_string(kCap),
                       "--access.connect_rate_per_s=0", "--access.handshake_timeout_ms=600000"});
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-b");

  asio::io_context io;
  std::vector<std::unique_ptr<Probe>> probes;
  const auto open_silent = [&](int n) {
    for (int i = 0; i < n; ++i) {
      probes.push_back(open_probe(io, server, source));
      io.poll();
      if (io.stopped()) io.restart();
    }
  };
  const auto ended_at_least = [&](std::size_t n) {
    return run_until(
        io, [&] { return count_ended(probes) >= n; }, kWait);
  };

  // The cap fills without a word.
  open_silent(kCap);
  ASSERT_EQ(count_connected(probes), probes.size());
  // Then each socket over the cap shuts one older socket down. The socket table is read only
  // once that eviction is seen, when every socket opened so far has been accepted and none is
  // being filed (a read of /proc while heraldd accepts is not a snapshot): it holds exactly the
  // cap, every time.
  for (int i = 1; i <= 2 * kCap; ++i) {
    open_silent(1);
    ASSERT_TRUE(probes.back()->connected);
    ASSERT_TRUE(ended_at_least(static_cast<std::size_t>(i)))
        << "socket " << kCap + i << " over the cap evicted nobody";
    ASSERT_EQ(count_ended(probes), static_cast<std::size_t>(i)) << "more than one evicted";
    ASSERT_EQ(held_from(server, source), kCap) << "after socket " << kCap + i;
  }
  for (const auto& p : probes) EXPECT_TRUE(p->received.empty()) << "a silent socket got a frame";

  // The cap is full of silent sockets; a device from elsewhere connects (evicting the oldest)
  // and is served.
  SourcedDevice device(server, "phone-b", token);
  ASSERT_TRUE(device.states().wait_connected(kWait));
  expect_push_arrives(sender, device, "phone-b", 1);
  ASSERT_TRUE(ended_at_least(2 * kCap + 1));

  // A second wave, all at once, while the device is connected: authenticated, it is not among
  // the pending ones, so it stays connected and served. Once the wave is through, the silent
  // sockets left are the cap again (a full cap evicts one per newcomer, the device's own pending
  // connection having taken one slot for a moment only).
  open_silent(2 * kCap);
  ASSERT_EQ(count_connected(probes), probes.size());
  ASSERT_TRUE(ended_at_least(4 * kCap));
  EXPECT_EQ(held_from(server, source), kCap);
  expect_push_arrives(sender, device, "phone-b", 2);
  EXPECT_EQ(device.states().count(ConnectionState::kConnected), 1u);
  EXPECT_EQ(device.states().count(ConnectionState::kDisconnected), 0u);
}

// (c) Counting stays exact through every way a pending connection leaves (evicted, closed by
// its peer, refused for garbage or bad credentials, authenticated then closed): once all of a
// mixed flood is closed, the cap admits a full set of silent sockets again, and one more evicts
// exactly one.
TEST(Flood, AfterAMixedFloodTheCapAdmitsAFullSetAgain) {
  constexpr int kCap = 16;
  constexpr int kDevices = 20;
  const std::string source = "127.0.0.11";
  HeraldServer server({"--access.max_unauthenticated=" + std::to_string(kCap),
                       "--access.connect_rate_per_s=0", "--access.handshake_timeout_ms=600000"});
  Sender sender(server.http_port());
  std::vector<std::string> tokens;
  for (int i = 0; i < kDevices; ++i) {
    tokens.push_back(sender.register_device(kNewsApp, "raw-c-" + std::to_string(i)));
  }

  asio::io_context io;
  std::vector<std::unique_ptr<Probe>> probes;
  int devices = 0;
  for (int i = 0; i < 200; ++i) {
    std::string bytes;
    switch (i % 5) {
      case 0:  // silent
        break;
      case 1:  // garbage: an unknown frame type
        bytes.assign("\x7f\x00", 2);
        break;
      case 2:  // a forged token
        bytes = hello_frame("raw-c-0", "v1.1.forged");
        break;
      case 3:  // a valid Hello, while devices last; then silent again
        if (devices < kDevices) {
          bytes = hello_frame("raw-c-" + std::to_string(devices), tokens[devices]);
          ++devices;
        }
        break;
      case 4:  // silent, and closes its side at once
        break;
    }
    probes.push_back(open_probe(io, server, source, bytes));
    if (i % 5 == 4 && !probes.back()->ended) {
      boost::system::error_code ignored;
      probes.back()->socket.shutdown(tcp::socket::shutdown_send, ignored);
    }
    io.poll();
    if (io.stopped()) io.restart();
  }
  ASSERT_EQ(count_connected(probes), probes.size());
  // Everything still open says goodbye (a FIN); heraldd's close of each session, which leaves
  // the pending ones before the socket closes, shows as the end of the stream here.
  for (auto& p : probes) {
    boost::system::error_code ignored;
    if (!p->ended) p->socket.shutdown(tcp::socket::shutdown_send, ignored);
  }
  ASSERT_TRUE(run_until(
      io, [&] { return count_ended(probes) == probes.size(); }, kWait))
      << count_ended(probes) << " of " << probes.size() << " connections closed";
  std::size_t authenticated = 0;
  for (const auto& p : probes) {
    authenticated += first_frame_type(p->received) == protocol::FrameType::kHelloOk ? 1 : 0;
  }
  EXPECT_GT(authenticated, 0u);
  EXPECT_EQ(held_from(server, source), 0);
  probes.clear();

  // Exactly the cap: none is evicted. One more: exactly one is (a count left too high would
  // evict earlier, one too low never).
  for (int i = 0; i < kCap + 1; ++i) probes.push_back(open_probe(io, server, source));
  ASSERT_EQ(count_connected(probes), probes.size());
  ASSERT_TRUE(run_until(
      io, [&] { return count_ended(probes) >= 1; }, kWait))
      << "the connection over the cap evicted nobody";
  // One eviction means all kCap + 1 were accepted: each one that is not shut down is held.
  EXPECT_EQ(held_from(server, source), kCap);
  EXPECT_EQ(count_ended(probes), 1u);
}

}  // namespace
}  // namespace herald::testing
