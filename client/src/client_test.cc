// The Client against a scripted server on loopback (port 0): the connection code (handshake,
// pulls, acks, heartbeats, reconnects, stop) without the real access layer. The test thread plays
// the server with blocking sockets; every wait has a deadline, none stands in for synchronisation.
#include <poll.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "herald/client.h"
#include "protocol/frame_codec.h"

namespace herald {
namespace {

namespace asio = boost::asio;
namespace wire = protocol::wire;
using asio::ip::tcp;
using protocol::FrameType;
using std::chrono::milliseconds;

constexpr milliseconds kWait{5000};  // generous: only a failing test waits this long

struct Frame {
  FrameType type{};
  std::string body;

  template <class T>
  T as() const {
    auto r =
        protocol::decode_body<T>({reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
    EXPECT_TRUE(r.has_value());
    return r ? *r : T{};
  }
};

bool readable(int fd, milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

// One accepted device connection, driven synchronously by the test.
class ServerConnection {
 public:
  explicit ServerConnection(tcp::socket socket) : socket_(std::move(socket)) {}

  // The next frame, or nullopt on timeout or close.
  std::optional<Frame> read(milliseconds timeout = kWait) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto r = protocol::parse_frame(
          {reinterpret_cast<const std::uint8_t*>(in_.data()), in_.size()}, 1 << 20);
      if (r.status == protocol::ParseStatus::kComplete) {
        Frame f{r.frame.type, std::string(reinterpret_cast<const char*>(r.frame.body.data()),
                                          r.frame.body.size())};
        in_.erase(0, r.frame.frame_bytes);
        return f;
      }
      if (r.status == protocol::ParseStatus::kBroken) return std::nullopt;
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !readable(socket_.native_handle(), left)) return std::nullopt;
      char buf[4096];
      boost::system::error_code ec;
      const std::size_t n = socket_.read_some(asio::buffer(buf), ec);
      if (ec) return std::nullopt;
      in_.append(buf, n);
    }
  }

  // The next frame that is not a Ping (answered with a Pong, as a server does).
  std::optional<Frame> read_skipping_pings(milliseconds timeout = kWait) {
    for (;;) {
      auto f = read(timeout);
      if (!f || f->type != FrameType::kPing) return f;
      send_empty(FrameType::kPong);
    }
  }

  // True when the client closed the connection within `timeout`.
  bool closed_by_peer(milliseconds timeout = kWait) {
    if (!readable(socket_.native_handle(), timeout)) return false;
    char buf[4096];
    boost::system::error_code ec;
    while (!ec) {
      socket_.read_some(asio::buffer(buf), ec);
      if (!ec && !readable(socket_.native_handle(), timeout)) return false;
    }
    return true;
  }

  void send(FrameType type, const google::protobuf::MessageLite& body) {
    std::string out;
    protocol::append_frame(type, body, out);
    send_raw(out);
  }
  void send_empty(FrameType type) {
    std::string out;
    protocol::append_empty_frame(type, out);
    send_raw(out);
  }
  void send_raw(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }

  // Reads the Hello and answers HelloOk.
  wire::Hello handshake(std::uint32_t heartbeat_s = 60) {
    auto hello = read();
    EXPECT_TRUE(hello && hello->type == FrameType::kHello);
    wire::HelloOk ok;
    ok.set_heartbeat_s(heartbeat_s);
    ok.set_max_frame_bytes(65536);
    send(FrameType::kHelloOk, ok);
    return hello ? hello->as<wire::Hello>() : wire::Hello{};
  }

  void close() { socket_.close(); }

 private:
  tcp::socket socket_;
  std::string in_;
};

class FakeServer {
 public:
  FakeServer() : acceptor_(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {}

  [[nodiscard]] Endpoint endpoint() const {
    return {"127.0.0.1", acceptor_.local_endpoint().port()};
  }

  std::optional<ServerConnection> accept(milliseconds timeout = kWait) {
    if (!readable(acceptor_.native_handle(), timeout)) return std::nullopt;
    return ServerConnection(acceptor_.accept());
  }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
};

wire::Messages messages(std::uint64_t stream, std::uint64_t epoch, std::uint64_t first,
                        std::uint64_t last, const std::string& app = "news") {
  wire::Messages m;
  m.set_stream(stream);
  m.set_epoch(epoch);
  m.set_head_seq(last);
  for (std::uint64_t seq = first; seq <= last; ++seq) {
    auto* e = m.add_entries();
    e->set_seq(seq);
    e->set_app(app);
    e->set_message_id("m" + std::to_string(seq));
    e->set_data("{\"seq\":" + std::to_string(seq) + "}");
  }
  return m;
}

// Collects what the client's handlers saw, for the test thread to wait on.
class Recorder {
 public:
  void message(const Message& m) {
    std::lock_guard lock(mu_);
    messages_.push_back(m);
    cv_.notify_all();
  }
  void state(const StateChange& s) {
    std::lock_guard lock(mu_);
    states_.push_back(s);
    cv_.notify_all();
  }
  bool wait_messages(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return messages_.size() >= n; });
  }
  // Waits for a state change matching `pred` after the first `from` ones; returns it.
  template <class Pred>
  std::optional<StateChange> wait_state(Pred pred) {
    std::unique_lock lock(mu_);
    std::optional<StateChange> found;
    cv_.wait_for(lock, kWait, [&] {
      for (const auto& s : states_) {
        if (pred(s)) {
          found = s;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::vector<Message> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  std::vector<StateChange> states() {
    std::lock_guard lock(mu_);
    return states_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Message> messages_;
  std::vector<StateChange> states_;
};

class ClientTest : public ::testing::Test {
 protected:
  ClientOptions options(std::vector<Endpoint> endpoints) {
    ClientOptions o;
    o.endpoints = std::move(endpoints);
    o.device_id = "dev-1";
    o.token = "secret";
    o.backoff_initial = milliseconds(10);
    o.backoff_max = milliseconds(50);
    o.connect_timeout = milliseconds(2000);
    o.response_timeout = milliseconds(2000);
    return o;
  }
  std::unique_ptr<Client> make_client(ClientOptions o,
                                      std::shared_ptr<CursorStore> store = nullptr) {
    auto c = std::make_unique<Client>(loop, std::move(o),
                                      store ? std::move(store) : make_memory_cursor_store());
    c->on_message("news", [this](const Message& m) { rec.message(m); });
    c->on_state([this](const StateChange& s) { rec.state(s); });
    return c;
  }

  EventLoop loop{2};
  FakeServer server;
  Recorder rec;
};

TEST_F(ClientTest, HandshakesThenPullsTheInboxDeliversAndAcks) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  wire::Hello hello = conn->handshake();
  EXPECT_EQ(hello.protocol_version(), 1u);
  EXPECT_EQ(hello.device_id(), "dev-1");
  EXPECT_EQ(hello.token(), "secret");
  EXPECT_EQ(hello.heartbeat_s(), 60u);

  auto pull = conn->read_skipping_pings();
  ASSERT_TRUE(pull && pull->type == FrameType::kPull);
  EXPECT_EQ(pull->as<wire::Pull>().stream(), 0u);
  EXPECT_EQ(pull->as<wire::Pull>().after_seq(), 0u);
  EXPECT_EQ(pull->as<wire::Pull>().limit(), 100u);

  conn->send(FrameType::kMessages, messages(0, 3, 1, 2));
  auto ack = conn->read_skipping_pings();
  ASSERT_TRUE(ack && ack->type == FrameType::kAck);
  EXPECT_EQ(ack->as<wire::Ack>().epoch(), 3u);
  EXPECT_EQ(ack->as<wire::Ack>().seq(), 2u);
  ASSERT_TRUE(rec.wait_messages(2));
  EXPECT_EQ(rec.messages()[0].seq, 1u);
  EXPECT_EQ(rec.messages()[1].data, "{\"seq\":2}");
  EXPECT_TRUE(rec.wait_state([](auto& s) { return s.state == ConnectionState::kConnected; }));
}

TEST_F(ClientTest, NotifyLeadsToAPullFromTheCursor) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  ASSERT_TRUE(conn->read_skipping_pings());  // the pull of the inbox
  conn->send(FrameType::kMessages, messages(0, 1, 1, 1));
  ASSERT_TRUE(conn->read_skipping_pings());  // ack
  wire::Notify notify;
  notify.set_stream(0);
  notify.set_head_seq(4);
  conn->send(FrameType::kNotify, notify);
  auto pull = conn->read_skipping_pings();
  ASSERT_TRUE(pull && pull->type == FrameType::kPull);
  EXPECT_EQ(pull->as<wire::Pull>().epoch(), 1u);
  EXPECT_EQ(pull->as<wire::Pull>().after_seq(), 1u);
}

TEST_F(ClientTest, ReconnectsAfterTheServerClosesAndResumesFromTheCursor) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  {
    auto conn = server.accept();
    ASSERT_TRUE(conn);
    conn->handshake();
    ASSERT_TRUE(conn->read_skipping_pings());
    conn->send(FrameType::kMessages, messages(0, 1, 1, 3));
    ASSERT_TRUE(conn->read_skipping_pings());  // ack: the batch is saved
    conn->close();
  }
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  auto pull = conn->read_skipping_pings();
  ASSERT_TRUE(pull && pull->type == FrameType::kPull);
  EXPECT_EQ(pull->as<wire::Pull>().after_seq(), 3u);
  // The same entries again (a lost ack, say) reach no handler twice.
  conn->send(FrameType::kMessages, messages(0, 1, 1, 4));
  ASSERT_TRUE(rec.wait_messages(4));
  ASSERT_TRUE(conn->read_skipping_pings());
  EXPECT_EQ(rec.messages().size(), 4u);
  EXPECT_TRUE(rec.wait_state([](auto& s) { return s.state == ConnectionState::kDisconnected; }));
}

TEST_F(ClientTest, FatalErrorIsReportedThroughOnStateAndBackoffContinues) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  {
    auto conn = server.accept();
    ASSERT_TRUE(conn);
    ASSERT_TRUE(conn->read());  // Hello
    wire::Error error;
    error.set_code(static_cast<std::uint32_t>(protocol::ErrorCode::kBadCredentials));
    error.set_message("bad token");
    conn->send(FrameType::kError, error);
    conn->close();
  }
  auto s = rec.wait_state([](auto& st) { return st.state == ConnectionState::kDisconnected; });
  ASSERT_TRUE(s);
  EXPECT_EQ(s->error_code, 11u);
  EXPECT_NE(s->reason.find("bad token"), std::string::npos);
  EXPECT_TRUE(server.accept());  // it tries again
}

TEST_F(ClientTest, MissingPongMeansADeadConnection) {
  auto o = options({server.endpoint()});
  o.response_timeout = milliseconds(200);
  auto client = make_client(o);
  client->start();
  {
    auto conn = server.accept();
    ASSERT_TRUE(conn);
    conn->handshake(/*heartbeat_s=*/1);
    ASSERT_TRUE(conn->read());  // the pull
    auto ping = conn->read(milliseconds(3000));
    ASSERT_TRUE(ping);
    EXPECT_EQ(ping->type, FrameType::kPing);
    EXPECT_TRUE(ping->body.empty());
    // No pong: the client gives up on this connection and connects again.
    EXPECT_TRUE(conn->closed_by_peer());
  }
  EXPECT_TRUE(server.accept());
  auto s = rec.wait_state([](auto& st) {
    return st.state == ConnectionState::kDisconnected &&
           st.reason.find("Pong") != std::string::npos;
  });
  EXPECT_TRUE(s);
}

TEST_F(ClientTest, ReconnectFrameSendsTheClientToTheGivenEndpoint) {
  FakeServer other;
  auto client = make_client(options({server.endpoint()}));
  client->start();
  {
    auto conn = server.accept();
    ASSERT_TRUE(conn);
    conn->handshake();
    wire::Reconnect r;
    r.set_reason(wire::RECONNECT_REASON_DRAIN);
    r.set_endpoint("127.0.0.1:" + std::to_string(other.endpoint().port));
    r.set_delay_ms(10);
    conn->send(FrameType::kReconnect, r);
    EXPECT_TRUE(conn->closed_by_peer());
  }
  auto conn = other.accept();
  ASSERT_TRUE(conn);
  EXPECT_EQ(conn->handshake().device_id(), "dev-1");
}

TEST_F(ClientTest, BrokenFrameFromTheServerGetsAnErrorAndAReconnect) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  {
    auto conn = server.accept();
    ASSERT_TRUE(conn);
    conn->handshake();
    ASSERT_TRUE(conn->read());                   // the pull
    conn->send_raw(std::string("\x7f\x00", 2));  // unknown frame type
    auto error = conn->read();
    ASSERT_TRUE(error);
    EXPECT_EQ(error->type, FrameType::kError);
    EXPECT_EQ(error->as<wire::Error>().code(),
              static_cast<std::uint32_t>(protocol::ErrorCode::kUnknownFrameType));
    EXPECT_TRUE(conn->closed_by_peer());
  }
  EXPECT_TRUE(server.accept());
}

TEST_F(ClientTest, PullRejectedAsBusyIsRetriedOnTheSameConnection) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  ASSERT_TRUE(conn->read_skipping_pings());  // the pull
  wire::Error busy;
  busy.set_code(static_cast<std::uint32_t>(protocol::ErrorCode::kServerBusy));
  conn->send(FrameType::kError, busy);
  auto pull = conn->read_skipping_pings();
  ASSERT_TRUE(pull && pull->type == FrameType::kPull);
  EXPECT_EQ(pull->as<wire::Pull>().stream(), 0u);
}

TEST_F(ClientTest, FailsOverToTheNextEndpoint) {
  // A port nobody listens on: take one from a closed acceptor.
  Endpoint dead;
  {
    FakeServer gone;
    dead = gone.endpoint();
  }
  auto client = make_client(options({dead, server.endpoint()}));
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  auto s = rec.wait_state([](auto& st) { return st.state == ConnectionState::kDisconnected; });
  ASSERT_TRUE(s);
  EXPECT_NE(s->reason.find("connect to 127.0.0.1:" + std::to_string(dead.port)), std::string::npos);
}

TEST_F(ClientTest, StopWaitsForTheClientAndReportsStopped) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  client->stop();
  auto states = rec.states();
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.back().state, ConnectionState::kStopped);
  EXPECT_TRUE(conn->closed_by_peer());
  client->stop();  // idempotent
}

TEST_F(ClientTest, StopDuringBackoffReturnsPromptly) {
  Endpoint dead;
  {
    FakeServer gone;
    dead = gone.endpoint();
  }
  auto o = options({dead});
  o.backoff_initial = milliseconds(60'000);
  o.backoff_max = milliseconds(60'000);
  auto client = make_client(o);
  client->start();
  ASSERT_TRUE(rec.wait_state([](auto& s) { return s.state == ConnectionState::kDisconnected; }));
  const auto t0 = std::chrono::steady_clock::now();
  client->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(1000));
}

TEST_F(ClientTest, HandlerThatThrowsStopsTheClientAfterSavingTheCursorBeforeIt) {
  auto store = make_memory_cursor_store();
  auto client = std::make_unique<Client>(loop, options({server.endpoint()}), store);
  client->on_message("news", [](const Message& m) {
    if (m.seq == 3) throw std::runtime_error("cannot handle 3");
  });
  client->on_state([this](const StateChange& s) { rec.state(s); });
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  ASSERT_TRUE(conn->read());
  conn->send(FrameType::kMessages, messages(0, 1, 1, 4));
  auto s = rec.wait_state([](auto& st) { return st.state == ConnectionState::kStopped; });
  ASSERT_TRUE(s);
  EXPECT_NE(s->reason.find("cannot handle 3"), std::string::npos);
  client->stop();
  EXPECT_EQ(store->load(0), (CursorStore::Cursor{1, 2}));
}

TEST_F(ClientTest, StopBeforeStartIsANoOp) {
  auto client = make_client(options({server.endpoint()}));
  client->stop();
  client->start();  // after stop(): nothing
  EXPECT_FALSE(server.accept(milliseconds(100)));
}

TEST(ClientOptions, MissingEndpointsOrDeviceAreRejected) {
  EventLoop loop;
  ClientOptions o;
  o.device_id = "d";
  EXPECT_THROW(Client(loop, o, make_memory_cursor_store()), std::invalid_argument);
  o.endpoints = {{"127.0.0.1", 1}};
  o.device_id.clear();
  EXPECT_THROW(Client(loop, o, make_memory_cursor_store()), std::invalid_argument);
  o.device_id = "d";
  EXPECT_THROW(Client(loop, o, nullptr), std::invalid_argument);
  o.device_id = "has space";
  EXPECT_THROW(Client(loop, o, make_memory_cursor_store()), std::invalid_argument);
  o.device_id = std::string(129, 'a');
  EXPECT_THROW(Client(loop, o, make_memory_cursor_store()), std::invalid_argument);
  o.device_id = "ok.device_1:x-y";
  EXPECT_NO_THROW(Client(loop, o, make_memory_cursor_store()));
}

TEST(ParseEndpoint, AcceptsHostPortAndBracketedIpv6) {
  auto a = parse_endpoint("127.0.0.1:7700");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7700);
  auto b = parse_endpoint("[::1]:80");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_TRUE(parse_endpoint("example.com:1"));
  for (const char* bad :
       {"", "host", ":80", "host:", "host:0", "host:65536", "host:x", "::1:80", "[::1]80"}) {
    EXPECT_FALSE(parse_endpoint(bad)) << bad;
  }
}

}  // namespace
}  // namespace herald
