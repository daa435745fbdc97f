// FaultProxy (docs/faultproxy.md): each action against a real heraldd and the real client
// library, and Herald's recovery from it: the first reliability tests of issue 7. A few checks of
// the proxy alone (frames split across reads, the raw fallback, a bounded stall) come first.
//
//   Client ──TCP──▶ FaultProxy ──TCP──▶ heraldd
//           (drop / delay / cut / stall one chosen frame)
#include "fault_proxy.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "protocol/frame_codec.h"
#include "sender.h"

namespace herald::testing {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using protocol::FrameType;
using Fate = FrameRecord::Fate;

constexpr auto kWait = 10s;
constexpr auto kDown = Direction::kDownstream;
constexpr auto kUp = Direction::kUpstream;

// ---------------------------------------------------------------------------------------------
// The proxy alone, between two plain sockets of the test.

// A target that accepts one connection, and the device side connected through the proxy.
class PlainPair {
 public:
  explicit PlainPair(FaultProxyOptions options = {})
      : acceptor_(io_, {asio::ip::address_v4::loopback(), 0}),
        proxy_(with_target(std::move(options), acceptor_.local_endpoint().port())),
        device_(io_),
        server_(io_) {
    device_.connect({asio::ip::address_v4::loopback(), proxy_.port()});
    device_.set_option(tcp::no_delay(true));
    acceptor_.accept(server_);  // the proxy connects as soon as it accepted the device
  }

  FaultProxy& proxy() { return proxy_; }
  tcp::socket& device() { return device_; }

  void send(const std::string& bytes) { asio::write(device_, asio::buffer(bytes)); }

  // Exactly `n` bytes from the server's side, or what came before `timeout` passed.
  std::string receive(std::size_t n, std::chrono::milliseconds timeout) {
    std::string out(n, '\0');
    std::size_t got = 0;
    asio::async_read(server_, asio::buffer(out),
                     [&](const boost::system::error_code&, std::size_t k) { got = k; });
    io_.restart();
    io_.run_for(timeout);
    if (!io_.stopped()) {
      server_.cancel();
      io_.restart();
      io_.run();
    }
    out.resize(got);
    return out;
  }

 private:
  static FaultProxyOptions with_target(FaultProxyOptions o, std::uint16_t port) {
    o.target = {asio::ip::address_v4::loopback(), port};
    return o;
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  FaultProxy proxy_;
  tcp::socket device_;
  tcp::socket server_;
};

std::string ping_frame(std::uint32_t heartbeat_s) {
  protocol::wire::Ping ping;
  ping.set_heartbeat_s(heartbeat_s);
  std::string out;
  protocol::append_frame(FrameType::kPing, ping, out);
  return out;
}

TEST(FaultProxy, DropsTheChosenFrameEvenWhenItArrivesByteByByte) {
  PlainPair pair;
  const RuleId rule = pair.proxy().add_rule(FaultRule::drop(kUp, FrameType::kPing, 2));
  const std::string first = ping_frame(270), second = ping_frame(300), third = ping_frame(330);
  for (char byte : first + second + third) pair.send(std::string(1, byte));

  EXPECT_EQ(pair.receive(first.size() + third.size(), kWait), first + third);
  EXPECT_EQ(pair.proxy().acted(rule), 1u);
  // A frame is counted as forwarded once its write completed, which the target may see first.
  ASSERT_TRUE(pair.proxy().wait_until(
      [](const FaultCounters& c) { return c.forwarded_of(kUp, FrameType::kPing) >= 2; }, kWait));
  const FaultCounters c = pair.proxy().counters();
  EXPECT_EQ(c.seen_of(kUp, FrameType::kPing), 3u);
  EXPECT_EQ(c.forwarded_of(kUp, FrameType::kPing), 2u);
  EXPECT_EQ(c.dropped, 1u);
  EXPECT_EQ(c.unparsable, 0u);
}

TEST(FaultProxy, ForwardsBytesItCannotParseUnchangedAndCountsThem) {
  PlainPair pair;
  pair.proxy().add_rule(FaultRule::drop(kUp, FrameType::kPing, 2));
  // A valid Ping, then a byte that is no frame type: the rest goes through as raw bytes, the
  // Ping the rule would have dropped included.
  const std::string bytes = ping_frame(270) + "\xff" + "junk" + ping_frame(300);
  pair.send(bytes);

  EXPECT_EQ(pair.receive(bytes.size(), kWait), bytes);
  const auto raw = bytes.size() - ping_frame(270).size();
  ASSERT_TRUE(
      pair.proxy().wait_until([raw](const FaultCounters& c) { return c.raw_bytes >= raw; }, kWait));
  const FaultCounters c = pair.proxy().counters();
  EXPECT_EQ(c.unparsable, 1u);
  EXPECT_EQ(c.seen_of(kUp, FrameType::kPing), 1u);
  EXPECT_EQ(c.dropped, 0u);
  EXPECT_EQ(c.raw_bytes, raw);
}

TEST(FaultProxy, AStalledDirectionBuffersAtMostItsBoundThenStopsReading) {
  FaultProxyOptions o;
  o.buffer_bytes = 4096;
  PlainPair pair(o);
  pair.proxy().add_rule(FaultRule::stall(kUp, std::nullopt));
  // Far more than the proxy's bound and both kernels' buffers: the device's socket must fill up.
  pair.device().non_blocking(true);
  const std::string frame = ping_frame(300);
  std::string burst;
  while (burst.size() < 64 * 1024) burst += frame;
  std::size_t sent = 0;
  boost::system::error_code ec;
  // The stream is `frame` repeated, whatever each write took (burst holds whole frames).
  for (int i = 0; i < 4096 && !ec; ++i) {
    const std::size_t at = sent % burst.size();
    sent += pair.device().write_some(asio::buffer(burst.data() + at, burst.size() - at), ec);
  }
  EXPECT_EQ(ec, asio::error::would_block) << "sent " << sent << " bytes without back-pressure";
  // resume() ends the stalls begun or decided by then: first let the stall begin.
  ASSERT_TRUE(pair.proxy().wait_until([](const FaultCounters& c) { return c.stalls >= 1; }, kWait));
  const FaultCounters c = pair.proxy().counters();
  EXPECT_EQ(c.forwarded_of(kUp, FrameType::kPing), 0u);
  // What the proxy read is at most its bound (plus a partial header): the rest of what the device
  // sent waits in the kernels' buffers.
  EXPECT_LE(c.seen_of(kUp, FrameType::kPing) * frame.size(), o.buffer_bytes + frame.size());

  pair.proxy().resume();
  // Everything sent arrives, in order, once the stall ends (the whole frames, at least: a header
  // cut short by the full socket waits in the proxy for its end).
  const std::size_t whole = sent - sent % frame.size();
  const std::string received = pair.receive(whole, kWait);
  ASSERT_EQ(received.size(), whole);
  std::string expected;
  while (expected.size() < whole) expected += frame;
  EXPECT_TRUE(received == expected);
  EXPECT_EQ(received.substr(0, frame.size()), frame);
  EXPECT_EQ(pair.proxy().counters().stalls, 1u);
}

// ---------------------------------------------------------------------------------------------
// Against heraldd, with the real client library.

struct Setup {
  std::uint32_t heartbeat_s = 0;  // 0: the client's default (60 s: no heartbeat in a test)
};

// One device connected to heraldd through a FaultProxy.
class FaultRig {
 public:
  explicit FaultRig(const std::string& device, Setup setup = {})
      : server_({"--access.heartbeat_min_s=1"}),
        sender_(server_.http_port()),
        token_(sender_.register_device(kNewsApp, device)),
        proxy_(proxy_options(server_)),
        device_(device) {
    ClientOptions o;
    o.endpoints = {{"127.0.0.1", proxy_.port()}};
    o.device_id = device;
    o.token = token_;
    o.backoff_initial = 20ms;
    o.backoff_max = 500ms;
    o.response_timeout = 3000ms;
    if (setup.heartbeat_s != 0) {
      o.adaptive_heartbeat = false;
      o.heartbeat_s = setup.heartbeat_s;
      o.heartbeat_min_s = setup.heartbeat_s;
    }
    client_ = std::make_unique<Client>(loop_, o, make_memory_cursor_store());
    client_->on_message(kNewsApp.id, inbox_.handler());
    client_->on_state(states_.handler());
    client_->start();
  }
  ~FaultRig() { client_->stop(); }
  FaultRig(const FaultRig&) = delete;
  FaultRig& operator=(const FaultRig&) = delete;

  // Waits for the `n`-th connection and the end of its opening exchange: the list of streams
  // forwarded and every Pull the device sent answered (by Messages or Error), so that a rule
  // added now meets only what the test causes.
  bool wait_settled(std::size_t n) {
    if (!states_.wait_for(ConnectionState::kConnected, n, kWait)) return false;
    return proxy_.wait_until(
        [n](const FaultCounters& c) {
          const auto pulls = c.seen_of(kUp, FrameType::kPull);
          return c.forwarded_of(kDown, FrameType::kStreams) >= n && pulls >= n &&
                 c.forwarded_of(kDown, FrameType::kMessages) +
                         c.forwarded_of(kDown, FrameType::kError) ==
                     pulls;
        },
        kWait);
  }

  PushOutcome push(const std::string& json) { return sender_.push(kNewsApp, {device_}, json); }

  FaultProxy& proxy() { return proxy_; }
  Inbox& inbox() { return inbox_; }
  StateLog& states() { return states_; }

 private:
  static FaultProxyOptions proxy_options(const HeraldServer& server) {
    FaultProxyOptions o;
    o.target = {asio::ip::address_v4::loopback(), server.device_port()};
    return o;
  }

  HeraldServer server_;
  Sender sender_;
  std::string token_;
  FaultProxy proxy_;
  std::string device_;
  EventLoop loop_;
  Inbox inbox_;
  StateLog states_;
  std::unique_ptr<Client> client_;
};

// The inbox seqs, in the order the app got them.
std::vector<std::uint64_t> seqs(Inbox& inbox) {
  std::vector<std::uint64_t> out;
  for (const Message& m : inbox.messages()) out.push_back(m.seq);
  return out;
}

std::vector<FrameRecord> records_of(const FaultProxy& proxy, Direction d, FrameType type) {
  std::vector<FrameRecord> out;
  for (const FrameRecord& r : proxy.log()) {
    if (r.direction == d && r.type == type) out.push_back(r);
  }
  return out;
}

TEST(FaultProxyHerald, ALostNotifyIsRepairedByTheNextNotifyAndEachMessageArrivesOnce) {
  FaultRig rig("fp-lost-notify");
  ASSERT_TRUE(rig.wait_settled(1));
  const RuleId rule = rig.proxy().add_rule(FaultRule::drop(kDown, FrameType::kNotify));
  ASSERT_TRUE(rig.push(R"({"n":1})").accepted());
  ASSERT_TRUE(rig.proxy().wait_acted(rule, 1, kWait));

  // The next Notify of the stream names its head: the device pulls from its cursor and gets both.
  ASSERT_TRUE(rig.push(R"({"n":2})").accepted());
  EXPECT_EQ(rig.inbox().wait_for(2, kWait), 2u);
  EXPECT_EQ(seqs(rig.inbox()), (std::vector<std::uint64_t>{1, 2}));
  const FaultCounters c = rig.proxy().counters();
  EXPECT_EQ(c.dropped, 1u);
  EXPECT_EQ(c.accepted, 1u);  // no reconnect was needed
}

// A lost Notify with no later message for the stream and no reconnect: the device answered it
// with neither a Pull nor an Ack, so heraldd's next Pong asks for a resync, and the client pulls
// (docs/protocol.md section 4, "Resync").
TEST(FaultProxyHerald, ALostNotifyIsRepairedByTheHeartbeatAndTheMessageArrivesOnce) {
  FaultRig rig("fp-lost-notify-hb", {.heartbeat_s = 1});
  ASSERT_TRUE(rig.wait_settled(1));
  const RuleId rule = rig.proxy().add_rule(FaultRule::drop(kDown, FrameType::kNotify));
  ASSERT_TRUE(rig.push(R"({"n":1})").accepted());
  ASSERT_TRUE(rig.proxy().wait_acted(rule, 1, kWait));

  EXPECT_EQ(rig.inbox().wait_for(1, kWait), 1u) << "the message never arrived";
  ASSERT_TRUE(rig.push(R"({"n":2})").accepted());  // a sentinel: a duplicate would come first
  EXPECT_EQ(rig.inbox().wait_for(2, kWait), 2u);
  EXPECT_EQ(seqs(rig.inbox()), (std::vector<std::uint64_t>{1, 2}));
  // On the same connection: the Pong that asked for the resync brought it.
  const FaultCounters c = rig.proxy().counters();
  EXPECT_EQ(c.accepted, 1u);
  EXPECT_GE(c.forwarded_of(kDown, FrameType::kPong), 1u);
}

TEST(FaultProxyHerald, ALostPullReplyIsRepairedByAReconnectAndTheMessageArrivesOnce) {
  FaultRig rig("fp-lost-messages");
  ASSERT_TRUE(rig.wait_settled(1));
  const RuleId rule = rig.proxy().add_rule(FaultRule::drop(kDown, FrameType::kMessages));
  ASSERT_TRUE(rig.push(R"({"n":1})").accepted());
  ASSERT_TRUE(rig.proxy().wait_acted(rule, 1, kWait));

  // The new connection pulls every stream from the device's cursor.
  rig.proxy().reset_connections();
  ASSERT_TRUE(rig.states().wait_for(ConnectionState::kConnected, 2, kWait));
  EXPECT_EQ(rig.inbox().wait_for(1, kWait), 1u);
  ASSERT_TRUE(rig.push(R"({"n":2})").accepted());  // a sentinel: a duplicate would come first
  EXPECT_EQ(rig.inbox().wait_for(2, kWait), 2u);
  EXPECT_EQ(seqs(rig.inbox()), (std::vector<std::uint64_t>{1, 2}));
}

// A lost pull reply on a live connection: heartbeats are answered all along, but the Pull is not,
// so at the client's response deadline (3 s here) it takes the connection as broken and pulls
// again from the same cursor on the next one (client/README.md, "The connection").
TEST(FaultProxyHerald, ALostPullReplyEndsTheConnectionAtItsDeadlineAndTheMessageArrivesOnce) {
  FaultRig rig("fp-lost-messages-live", {.heartbeat_s = 1});
  ASSERT_TRUE(rig.wait_settled(1));
  const RuleId rule = rig.proxy().add_rule(FaultRule::drop(kDown, FrameType::kMessages));
  ASSERT_TRUE(rig.push(R"({"n":1})").accepted());
  ASSERT_TRUE(rig.proxy().wait_acted(rule, 1, kWait));

  const auto lost = rig.states().wait_for(ConnectionState::kDisconnected, 1, kWait);
  ASSERT_TRUE(lost.has_value());
  EXPECT_NE(lost->reason.find("no answer to a Pull"), std::string::npos) << lost->reason;
  EXPECT_EQ(rig.inbox().wait_for(1, kWait), 1u);
  ASSERT_TRUE(rig.push(R"({"n":2})").accepted());  // a sentinel: a duplicate would come first
  EXPECT_EQ(rig.inbox().wait_for(2, kWait), 2u);
  EXPECT_EQ(seqs(rig.inbox()), (std::vector<std::uint64_t>{1, 2}));
  const FaultCounters c = rig.proxy().counters();
  EXPECT_EQ(c.accepted, 2u);
  EXPECT_GE(c.forwarded_of(kDown, FrameType::kPong), 2u);  // the connection was alive meanwhile
}

TEST(FaultProxyHerald, ALostAckNeverBringsTheMessageBackNotEvenAfterAReconnect) {
  FaultRig rig("fp-lost-ack");
  ASSERT_TRUE(rig.wait_settled(1));
  const RuleId rule = rig.proxy().add_rule(FaultRule::drop(kUp, FrameType::kAck));
  ASSERT_TRUE(rig.push(R"({"n":1})").accepted());
  ASSERT_EQ(rig.inbox().wait_for(1, kWait), 1u);
  ASSERT_TRUE(rig.proxy().wait_acted(rule, 1, kWait));

  // The server never heard how far the device got. A new connection pulls from the device's own
  // cursor, so the message is not handed to the app again.
  rig.proxy().reset_connections();
  ASSERT_TRUE(rig.wait_settled(2));
  ASSERT_TRUE(rig.push(R"({"n":2})").accepted());  // a sentinel: a duplicate would come first
  EXPECT_EQ(rig.inbox().wait_for(2, kWait), 2u);
  EXPECT_EQ(seqs(rig.inbox()), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(rig.proxy().counters().accepted, 2u);
}

TEST(FaultProxyHerald, ACutBeforeTheNotifyIsRepairedByTheReconnectAndTheMessageArrivesOnce) {
  FaultRig rig("fp-cut-notify");
  ASSERT_TRUE(rig.wait_settled(1));
  const RuleId rule = rig.proxy().add_rule(FaultRule::cut(kDown, FrameType::kNotify));
  ASSERT_TRUE(rig.push(R"({"n":1})").accepted());
  ASSERT_TRUE(rig.proxy().wait_acted(rule, 1, kWait));

  const auto lost = rig.states().wait_for(ConnectionState::kDisconnected, 1, kWait);
  ASSERT_TRUE(lost.has_value());
  EXPECT_NE(lost->reason.find("reset"), std::string::npos) << lost->reason;
  ASSERT_TRUE(rig.states().wait_for(ConnectionState::kConnected, 2, kWait));
  EXPECT_EQ(rig.inbox().wait_for(1, kWait), 1u);
  ASSERT_TRUE(rig.push(R"({"n":2})").accepted());
  EXPECT_EQ(rig.inbox().wait_for(2, kWait), 2u);
  EXPECT_EQ(seqs(rig.inbox()), (std::vector<std::uint64_t>{1, 2}));

  const FaultCounters c = rig.proxy().counters();
  EXPECT_EQ(c.cuts, 1u);
  EXPECT_EQ(c.accepted, 2u);
  const auto notifies = records_of(rig.proxy(), kDown, FrameType::kNotify);
  ASSERT_FALSE(notifies.empty());
  EXPECT_EQ(notifies.front().fate, Fate::kCut);
  EXPECT_EQ(notifies.front().connection, 1u);
}

TEST(FaultProxyHerald, ADelayedNotifyHoldsBackWhatFollowsItAndTheMessagesArriveInOrderOnce) {
  FaultRig rig("fp-delay-notify");
  ASSERT_TRUE(rig.wait_settled(1));
  const auto delay = 300ms;
  rig.proxy().add_rule(FaultRule::delay_by(kDown, FrameType::kNotify, delay));
  const auto pushed_at = std::chrono::system_clock::now();
  ASSERT_TRUE(rig.push(R"({"n":1})").accepted());
  // The second push while the first Notify is held: its Notify queues behind.
  ASSERT_TRUE(rig.proxy().wait_for(kDown, FrameType::kNotify, 1, kWait));
  ASSERT_TRUE(rig.push(R"({"n":2})").accepted());

  ASSERT_EQ(rig.inbox().wait_for(2, kWait), 2u);
  EXPECT_EQ(seqs(rig.inbox()), (std::vector<std::uint64_t>{1, 2}));
  const auto first_ms = rig.inbox().received_at_ms().front();
  const auto pushed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(pushed_at.time_since_epoch()).count();
  EXPECT_GE(first_ms - pushed_ms, delay.count() - 1);

  ASSERT_TRUE(rig.proxy().wait_until(
      [](const FaultCounters& c) { return c.forwarded_of(kDown, FrameType::kNotify) >= 2; },
      kWait));
  const auto notifies = records_of(rig.proxy(), kDown, FrameType::kNotify);
  ASSERT_GE(notifies.size(), 2u);
  EXPECT_GE(notifies[0].settled_at - notifies[0].read_at, delay);
  EXPECT_EQ(notifies[0].fate, Fate::kForwarded);
  EXPECT_EQ(notifies[1].fate, Fate::kForwarded);
  if (notifies[1].read_at < notifies[0].settled_at) {
    // The second was read while the first was held: it waited behind it.
    EXPECT_GE(notifies[1].settled_at, notifies[0].settled_at);
  }
  // Order kept: everything downstream left in the order it was read.
  std::uint64_t last = 0;
  for (const FrameRecord& r : rig.proxy().log()) {
    if (r.direction != kDown || r.connection != 1 || r.fate != Fate::kForwarded) continue;
    EXPECT_GT(r.number, last);
    last = r.number;
  }
  EXPECT_EQ(rig.proxy().counters().delayed, 1u);
}

TEST(FaultProxyHerald, AStalledUpstreamForwardsNothingUntilResumedThenTheMessageArrives) {
  FaultRig rig("fp-stall-up");
  ASSERT_TRUE(rig.wait_settled(1));
  const auto pulls_before = rig.proxy().counters().forwarded_of(kUp, FrameType::kPull);
  // The next frame the device sends, whatever it is (here the Pull the Notify causes).
  rig.proxy().add_rule(FaultRule::stall(kUp, std::nullopt));
  ASSERT_TRUE(rig.push(R"({"n":1})").accepted());
  ASSERT_TRUE(rig.proxy().wait_for(kUp, FrameType::kPull, pulls_before + 1, kWait));

  // Held: the Pull does not reach heraldd, so no message can come (a bounded look, not a sync).
  ASSERT_TRUE(rig.proxy().wait_until([](const FaultCounters& c) { return c.stalls >= 1; }, kWait));
  EXPECT_EQ(rig.inbox().wait_for(1, 300ms), 0u);
  const FaultCounters c = rig.proxy().counters();
  EXPECT_EQ(c.forwarded_of(kUp, FrameType::kPull), pulls_before);
  EXPECT_EQ(c.stalls, 1u);

  rig.proxy().resume();
  EXPECT_EQ(rig.inbox().wait_for(1, kWait), 1u);
  EXPECT_TRUE(rig.proxy().wait_until(
      [pulls_before](const FaultCounters& fc) {
        return fc.forwarded_of(kUp, FrameType::kPull) == pulls_before + 1;
      },
      kWait));
  ASSERT_TRUE(rig.push(R"({"n":2})").accepted());
  EXPECT_EQ(rig.inbox().wait_for(2, kWait), 2u);
  EXPECT_EQ(seqs(rig.inbox()), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(rig.proxy().counters().accepted, 1u);
}

}  // namespace
}  // namespace herald::testing
