// NatProxy over real loopback sockets. The proxy runs on its own thread; the test drives both
// ends with plain blocking sockets and waits on them with poll() deadlines, never with sleeps.
// The only waits for time itself are the idle timeout and the delay under test.
#include "natsim/nat_proxy.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

namespace herald::natsim {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Long enough for anything that should happen on loopback; only a failing test waits it out.
constexpr milliseconds kDeadline{5000};
// How long a test watches for something that must not happen.
constexpr milliseconds kQuietWindow{400};
constexpr milliseconds kIdleTimeout{200};

// An owned file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const { return fd_; }
  void reset() { Fd().swap(*this); }
  void swap(Fd& other) noexcept { std::swap(fd_, other.fd_); }

 private:
  int fd_;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  return addr;
}

// A listening socket on 127.0.0.1, any port: the proxy's target.
Fd listen_any(std::uint16_t& port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  auto addr = loopback(0);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::listen(fd.get(), 16), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

Fd connect_to(std::uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  const auto addr = loopback(port);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  return fd;
}

// True when fd becomes readable (data, EOF or an error) within `wait`.
bool readable_within(const Fd& fd, milliseconds wait) {
  pollfd p{fd.get(), POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
}

std::optional<Fd> accept_within(const Fd& listener, milliseconds wait) {
  if (!readable_within(listener, wait)) return std::nullopt;
  return Fd(::accept(listener.get(), nullptr, nullptr));
}

void send_all(const Fd& fd, std::string_view bytes) {
  ASSERT_EQ(::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

// Reads until `size` bytes arrived; fewer when the deadline passes or the stream ends.
std::string receive(const Fd& fd, std::size_t size, milliseconds wait = kDeadline) {
  const auto deadline = Clock::now() + wait;
  std::string got;
  while (got.size() < size) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || !readable_within(fd, left)) break;
    char chunk[4096];
    const auto n = ::recv(fd.get(), chunk, std::min(sizeof chunk, size - got.size()), 0);
    if (n <= 0) break;
    got.append(chunk, static_cast<std::size_t>(n));
  }
  return got;
}

// Waits until `condition` holds, up to kDeadline.
bool eventually(const std::function<bool()>& condition) {
  const auto deadline = Clock::now() + kDeadline;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));  // a polling step, bounded by the deadline
  }
  return true;
}

class NatProxyTest : public ::testing::Test {
 protected:
  NatProxyTest() : target_(listen_any(target_port_)) {}

  // Starts a proxy to the test's target on its own thread.
  NatProxy& start(NatProxyOptions options) {
    options.target = {asio::ip::address_v4::loopback(), target_port_};
    proxy_.emplace(std::move(options));
    return proxy_->proxy();
  }

  // A client connected through the proxy and the target's side of it.
  std::pair<Fd, Fd> open_mapping() {
    Fd client = connect_to(proxy_->port());
    auto server = accept_within(target_, kDeadline);
    EXPECT_TRUE(server.has_value());
    return {std::move(client), server ? std::move(*server) : Fd()};
  }

  std::uint16_t target_port_ = 0;
  Fd target_;
  std::optional<NatProxyThread> proxy_;
};

TEST_F(NatProxyTest, ForwardsBytesBothWays) {
  auto& proxy = start({});
  auto [client, server] = open_mapping();
  send_all(client, "ping");
  EXPECT_EQ(receive(server, 4), "ping");
  send_all(server, "pong!");
  EXPECT_EQ(receive(client, 5), "pong!");
  EXPECT_TRUE(eventually([&] { return proxy.counters().bytes_forwarded == 9; }));
  EXPECT_EQ(proxy.counters().accepted, 1u);
}

TEST_F(NatProxyTest, PassesOnAClose) {
  start({});
  auto [client, server] = open_mapping();
  client.reset();
  ASSERT_TRUE(readable_within(server, kDeadline));
  char byte;
  EXPECT_EQ(::recv(server.get(), &byte, 1, 0), 0);  // a FIN, not data
}

TEST_F(NatProxyTest, DropsAnIdleMappingWithoutFinOrReset) {
  NatProxyOptions options;
  options.idle_timeout = kIdleTimeout;
  auto& proxy = start(options);
  auto [client, server] = open_mapping();
  send_all(client, "hi");
  ASSERT_EQ(receive(server, 2), "hi");

  ASSERT_TRUE(eventually([&] { return proxy.counters().dropped_idle == 1; }));
  EXPECT_EQ(proxy.counters().dead_sockets, 2u);
  // Neither end hears anything: no EOF, no reset, and what they send goes nowhere.
  send_all(client, "lost");
  send_all(server, "lost too");
  EXPECT_FALSE(readable_within(server, kQuietWindow));
  EXPECT_FALSE(readable_within(client, kQuietWindow));
  EXPECT_TRUE(eventually([&] { return proxy.counters().bytes_discarded == 12; }));
  EXPECT_EQ(proxy.counters().bytes_forwarded, 2u);

  // A dead socket stays open until its end closes it.
  client.reset();
  EXPECT_TRUE(eventually([&] { return proxy.counters().dead_sockets == 1; }));
  EXPECT_FALSE(readable_within(server, kQuietWindow));
  server.reset();
  EXPECT_TRUE(eventually([&] { return proxy.counters().open_mappings == 0; }));
}

TEST_F(NatProxyTest, KeepsAMappingBusierThanTheIdleTimeout) {
  NatProxyOptions options;
  options.idle_timeout = kIdleTimeout;
  auto& proxy = start(options);
  auto [client, server] = open_mapping();
  // A heartbeat every half timeout, for five timeouts, alternating directions.
  for (int i = 0; i < 10; ++i) {
    const Fd& from = i % 2 == 0 ? client : server;
    const Fd& to = i % 2 == 0 ? server : client;
    send_all(from, "hb");
    ASSERT_EQ(receive(to, 2), "hb") << "heartbeat " << i;
    std::this_thread::sleep_for(kIdleTimeout / 2);  // pacing the heartbeats, not synchronising
  }
  EXPECT_EQ(proxy.counters().dropped_idle, 0u);
  EXPECT_EQ(proxy.counters().dead_sockets, 0u);
}

TEST_F(NatProxyTest, BlackholeNeverForwardsNorAnswers) {
  NatProxyOptions options;
  options.mode = NatMode::kBlackhole;
  auto& proxy = start(options);
  Fd client = connect_to(proxy.port());
  send_all(client, "hello?");
  EXPECT_FALSE(accept_within(target_, kQuietWindow).has_value());
  EXPECT_FALSE(readable_within(client, kQuietWindow));  // no answer, no FIN, no reset
  EXPECT_TRUE(eventually([&] { return proxy.counters().bytes_discarded == 6; }));
  EXPECT_EQ(proxy.counters().accepted, 1u);
  EXPECT_EQ(proxy.counters().bytes_forwarded, 0u);
  EXPECT_EQ(proxy.counters().dead_sockets, 1u);
}

TEST_F(NatProxyTest, DelayModeForwardsAfterTheDelay) {
  constexpr milliseconds kDelay{150};
  NatProxyOptions options;
  options.mode = NatMode::kDelay;
  options.delay = kDelay;
  start(options);
  auto [client, server] = open_mapping();
  for (const auto& [from, to] : {std::pair{&client, &server}, std::pair{&server, &client}}) {
    const auto sent = Clock::now();
    send_all(*from, "slow");
    ASSERT_EQ(receive(*to, 4), "slow");
    EXPECT_GE(Clock::now() - sent, kDelay);
  }
}

TEST_F(NatProxyTest, ClosesConnectionsBeyondTheMaximum) {
  NatProxyOptions options;
  options.max_connections = 1;
  auto& proxy = start(options);
  auto [client, server] = open_mapping();
  Fd extra = connect_to(proxy.port());
  ASSERT_TRUE(readable_within(extra, kDeadline));
  char byte;
  EXPECT_LE(::recv(extra.get(), &byte, 1, 0), 0);
  EXPECT_EQ(proxy.counters().rejected, 1u);
  // The first mapping still works.
  send_all(client, "ok");
  EXPECT_EQ(receive(server, 2), "ok");
}

TEST_F(NatProxyTest, StopsReadingASideWhoseWritesAreStuck) {
  NatProxyOptions options;
  options.buffer_bytes = 4096;
  auto& proxy = start(options);
  auto [client, server] = open_mapping();
  ASSERT_EQ(::fcntl(client.get(), F_SETFL, O_NONBLOCK), 0);
  // The target reads nothing: the client's sends must eventually block, not fill the proxy.
  const std::string block(64 * 1024, 'x');
  std::size_t sent = 0;
  const auto deadline = Clock::now() + kDeadline;
  while (Clock::now() < deadline) {
    const auto n = ::send(client.get(), block.data(), block.size(), MSG_NOSIGNAL);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
      pollfd p{client.get(), POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(kQuietWindow.count())) == 0) break;  // stuck
      continue;
    }
    sent += static_cast<std::size_t>(n);
  }
  ASSERT_LT(Clock::now(), deadline) << "the client never blocked";
  // Everything sent is in kernel buffers or the proxy's one chunk, and arrives once read.
  EXPECT_EQ(receive(server, sent).size(), sent);
  EXPECT_TRUE(eventually([&] { return proxy.counters().bytes_forwarded == sent; }));
}

}  // namespace
}  // namespace herald::natsim
