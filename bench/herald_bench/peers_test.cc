#include "peers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "peer_codecs.h"

namespace herald::bench {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

constexpr auto kTimeout = 10s;

// Runs `io` until `done()`; false when `timeout` passed first or `io` ran out of work.
bool run_until(asio::io_context& io, const std::function<bool()>& done,
               std::chrono::steady_clock::duration timeout = kTimeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  io.restart();
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.run_one_until(deadline) == 0 && io.stopped()) return done();
  }
  return true;
}

// A port nothing listens on (just released by us).
std::uint16_t closed_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address_v4("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

// Whether /proc/net/tcp lists a connection from `source` (host-order hex, as /proc writes it:
// 127.0.0.2 is "0200007F") to 127.0.0.1:port.
bool has_connection_from(std::string_view source_hex, std::uint16_t port) {
  std::array<char, 16> remote{};
  std::snprintf(remote.data(), remote.size(), "0100007F:%04X", port);
  std::ifstream table("/proc/net/tcp");
  std::string line;
  while (std::getline(table, line)) {
    const bool from_source = line.find(std::string(source_hex) + ":") != std::string::npos;
    if (from_source && line.find(remote.data()) != std::string::npos) return true;
  }
  return false;
}

// 2,000 bytes that break careless framing: CR LF, NUL and every other byte, NATS and RESP
// headers. Starts with `tag` so that a test can tell which topic it came from.
std::string binary_payload(const std::string& tag) {
  std::string payload = tag + "|";
  for (int i = 0; payload.size() < 2000; ++i) {
    payload.push_back(static_cast<char>(i % 256));
    if (i % 97 == 0) payload.append("\r\nMSG all 2 5\r\n*3\r\n$7\r\n");
  }
  payload.resize(2000);
  return payload;
}

// The k-th payload on the topic tagged `tag`; some are the binary one.
std::string payload_for(const std::string& tag, int k) {
  std::string payload = tag + "-";
  payload += std::to_string(k);
  return k % 25 == 7 ? binary_payload(payload) : payload;
}

std::vector<std::string> tagged(const std::vector<std::string>& payloads, const std::string& tag) {
  std::vector<std::string> result;
  for (const std::string& payload : payloads) {
    if (payload.starts_with(tag + "-")) result.push_back(payload);
  }
  return result;
}

// "u0", "u1": which subscriber's topic a payload went to. Built by appending: GCC 12 misreads
// "literal" + std::string&& as an overlapping memcpy (-Wrestrict, GCC bug 105329).
std::string unicast_tag(int subscriber) {
  std::string tag = "u";
  tag += std::to_string(subscriber);
  return tag;
}

class PeerTest : public ::testing::TestWithParam<PeerKind> {};

TEST_P(PeerTest, DeliversUnicastAndBroadcastInOrder) {
  const PeerKind kind = GetParam();
  PeerServer server(kind);
  EXPECT_GT(server.rss_kib(), 0);
  EXPECT_THAT(server.version(), ::testing::MatchesRegex("[a-z-]+ [0-9]+\\.[0-9.]+"));

  asio::io_context io;
  const std::array<std::string, 2> sources = {"127.0.0.2", "127.0.0.3"};
  std::array<std::vector<std::string>, 2> received;
  std::array<std::optional<error_code>, 2> ready;
  std::vector<std::unique_ptr<PeerSubscriber>> subscribers;
  for (int i = 0; i < 2; ++i) {
    SubscriberOptions options;
    options.kind = kind;
    options.port = server.port();
    options.source_address = sources[i];
    options.index = i;
    subscribers.push_back(PeerSubscriber::make(
        io, options,
        [&received, i](std::string_view payload) { received[i].emplace_back(payload); },
        [](error_code ec) { ADD_FAILURE() << "connection lost: " << ec.message(); }));
    subscribers.back()->start([&ready, i](error_code ec) { ready[i] = ec; });
  }
  ASSERT_TRUE(run_until(io, [&] { return ready[0] && ready[1]; }));
  ASSERT_FALSE(*ready[0]) << ready[0]->message();
  ASSERT_FALSE(*ready[1]) << ready[1]->message();
  EXPECT_TRUE(has_connection_from("0200007F", server.port()));
  EXPECT_TRUE(has_connection_from("0300007F", server.port()));

  PeerPublisher publisher(kind, server.port());
  std::array<std::vector<std::string>, 2> unicast;
  std::vector<std::string> broadcast;
  for (int k = 0; k < 100; ++k) {
    for (int i = 0; i < 2; ++i) {
      unicast[i].push_back(payload_for(unicast_tag(i), k));
      publisher.publish(unicast_topic(kind, i), unicast[i].back());
    }
    if (k % 2 == 0) {
      broadcast.push_back(payload_for("b", k / 2));
      publisher.publish(broadcast_topic(kind), broadcast.back());
    }
  }
  EXPECT_TRUE(publisher.flush(kTimeout));
  EXPECT_EQ(publisher.accepted(), 250);
  EXPECT_EQ(publisher.failed(), 0);

  ASSERT_TRUE(
      run_until(io, [&] { return received[0].size() >= 150 && received[1].size() >= 150; }));
  io.poll();  // anything beyond the expected that has arrived meanwhile
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(received[i].size(), 150u);
    EXPECT_TRUE(tagged(received[i], unicast_tag(i)) == unicast[i]) << "subscriber " << i;
    EXPECT_TRUE(tagged(received[i], "b") == broadcast) << "subscriber " << i;
  }
  for (auto& subscriber : subscribers) subscriber->close();
  // Each goodbye goes out and the peer hangs up: then the io_context has no work left.
  EXPECT_FALSE(run_until(io, [] { return false; }));
  EXPECT_TRUE(io.stopped());
}

TEST_P(PeerTest, ReportsLostConnectionOnce) {
  auto server = std::make_unique<PeerServer>(GetParam());
  asio::io_context io;
  SubscriberOptions options;
  options.kind = GetParam();
  options.port = server->port();
  std::optional<error_code> ready;
  std::vector<error_code> lost;
  auto subscriber = PeerSubscriber::make(
      io, options, [](std::string_view) {}, [&lost](error_code ec) { lost.push_back(ec); });
  subscriber->start([&ready](error_code ec) { ready = ec; });
  ASSERT_TRUE(run_until(io, [&] { return ready.has_value(); }));
  ASSERT_FALSE(*ready) << ready->message();

  server.reset();
  // The session ends with the one on_lost: then the io_context has no work left.
  EXPECT_FALSE(run_until(io, [] { return false; }));
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_TRUE(lost[0]);
}

TEST_P(PeerTest, SubscriberToClosedPortReportsError) {
  asio::io_context io;
  SubscriberOptions options;
  options.kind = GetParam();
  options.port = closed_port();
  std::optional<error_code> ready;
  auto subscriber = PeerSubscriber::make(
      io, options, [](std::string_view) {}, [](error_code) {});
  subscriber->start([&ready](error_code ec) { ready = ec; });
  ASSERT_TRUE(run_until(io, [&] { return ready.has_value(); }));
  EXPECT_TRUE(*ready);
}

TEST_P(PeerTest, PublisherToClosedPortThrows) {
  EXPECT_THROW(PeerPublisher(GetParam(), closed_port()), std::runtime_error);
}

std::string test_name(const ::testing::TestParamInfo<PeerKind>& info) {
  std::string name(name_of(info.param));
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(AllPeers, PeerTest,
                         ::testing::Values(PeerKind::kMqttQos0, PeerKind::kMqttQos1,
                                           PeerKind::kNats, PeerKind::kRedis),
                         test_name);

TEST(MqttQos1, PersistentSessionKeepsMessagesWhileAway) {
  const PeerKind kind = PeerKind::kMqttQos1;
  PeerServer server(kind);
  asio::io_context io;
  SubscriberOptions options;
  options.kind = kind;
  options.port = server.port();
  options.persistent_session = true;
  std::set<std::string> received;
  std::optional<error_code> ready;
  auto subscriber = PeerSubscriber::make(
      io, options, [&received](std::string_view payload) { received.emplace(payload); },
      [](error_code ec) { ADD_FAILURE() << "connection lost: " << ec.message(); });
  subscriber->start([&ready](error_code ec) { ready = ec; });
  ASSERT_TRUE(run_until(io, [&] { return ready.has_value(); }));
  ASSERT_FALSE(*ready) << ready->message();

  subscriber->close();
  // The goodbye goes out and the broker hangs up: then the io_context has no work left.
  EXPECT_FALSE(run_until(io, [] { return false; }));
  EXPECT_TRUE(io.stopped());

  PeerPublisher publisher(kind, server.port());
  std::set<std::string> sent;
  for (int k = 0; k < 20; ++k) {
    const std::string payload = std::to_string(k);
    sent.insert(payload);
    publisher.publish(unicast_topic(kind, 0), payload);
  }
  ASSERT_TRUE(publisher.flush(kTimeout));
  EXPECT_EQ(publisher.accepted(), 20);

  ready.reset();
  subscriber->start([&ready](error_code ec) { ready = ec; });
  EXPECT_TRUE(run_until(io, [&] { return ready.has_value() && received.size() >= 20; }));
  EXPECT_EQ(received, sent);
}

TEST(PeerNames, RoundTrip) {
  for (PeerKind kind :
       {PeerKind::kMqttQos0, PeerKind::kMqttQos1, PeerKind::kNats, PeerKind::kRedis}) {
    PeerKind parsed = PeerKind::kMqttQos0;
    EXPECT_TRUE(parse_peer(name_of(kind), parsed));
    EXPECT_EQ(parsed, kind);
  }
  PeerKind unused = PeerKind::kMqttQos0;
  EXPECT_FALSE(parse_peer("kafka", unused));
  EXPECT_EQ(unicast_topic(PeerKind::kMqttQos1, 17), "d/17");
  EXPECT_EQ(unicast_topic(PeerKind::kNats, 17), "d.17");
  EXPECT_EQ(unicast_topic(PeerKind::kRedis, 17), "d:17");
}

// MQTT 3.1.1 table 2.4: the smallest and largest length of each size.
TEST(MqttRemainingLength, EncodesAsTheSpecTable) {
  const std::vector<std::pair<std::size_t, std::string_view>> cases = {
      {0, std::string_view("\x00", 1)},
      {127, "\x7f"},
      {128, "\x80\x01"},
      {16'383, "\xff\x7f"},
      {16'384, "\x80\x80\x01"},
      {2'097'151, "\xff\xff\x7f"},
      {2'097'152, "\x80\x80\x80\x01"},
      {268'435'455, "\xff\xff\xff\x7f"}};
  for (const auto& [n, bytes] : cases) {
    std::string encoded;
    mqtt::append_remaining_length(encoded, n);
    EXPECT_EQ(encoded, bytes) << n;
  }
}

TEST(MqttRemainingLength, DecodesWholePacketsOnly) {
  for (std::size_t n : {0u, 127u, 128u, 16'383u, 16'384u}) {
    std::string packet(1, '\x30');
    mqtt::append_remaining_length(packet, n);
    const std::size_t header_bytes = packet.size();
    packet.append(n, 'x');
    mqtt::Packet decoded;
    ASSERT_EQ(mqtt::next_packet(packet, kMaxFrameBytes, decoded), Parse::kComplete) << n;
    EXPECT_EQ(decoded.type, mqtt::kPublish);
    EXPECT_EQ(decoded.body.size(), n);
    EXPECT_EQ(decoded.size, header_bytes + n);
    const std::string_view short_by_one = std::string_view(packet).substr(0, packet.size() - 1);
    EXPECT_EQ(mqtt::next_packet(short_by_one, kMaxFrameBytes, decoded), Parse::kNeedMore) << n;
  }
}

TEST(MqttRemainingLength, RejectsFiveLengthBytes) {
  mqtt::Packet decoded;
  EXPECT_EQ(mqtt::next_packet("\x30\xff\xff\xff\xff\x01", mqtt::kMaxRemainingLength, decoded),
            Parse::kBroken);
}

TEST(MqttRemainingLength, RejectsLengthAboveMax) {
  std::string packet(1, '\x30');
  mqtt::append_remaining_length(packet, kMaxFrameBytes + 1);
  mqtt::Packet decoded;
  EXPECT_EQ(mqtt::next_packet(packet, kMaxFrameBytes, decoded), Parse::kTooLarge);
}

TEST(NatsMsgLine, ReadsSizeWithAndWithoutReplyTo) {
  std::size_t bytes = 0;
  EXPECT_TRUE(nats::parse_msg_line("MSG d.1 1 12", bytes));
  EXPECT_EQ(bytes, 12u);
  EXPECT_TRUE(nats::parse_msg_line("MSG d.1 1 _INBOX.x 7", bytes));
  EXPECT_EQ(bytes, 7u);
  EXPECT_FALSE(nats::parse_msg_line("MSG d.1 12", bytes));
  EXPECT_FALSE(nats::parse_msg_line("MSG d.1 1 x12", bytes));
}

}  // namespace
}  // namespace herald::bench
