// The Client against a scripted server on loopback (port 0): the connection code (handshake,
// pulls, acks, heartbeats, reconnects, stop) without the real access layer. The test thread plays
// the server with blocking sockets; every wait has a deadline, none stands in for synchronisation.
// A FakeServer built with a TLS context speaks TLS (a TlsChannel in the server role) under the
// same frames.
#include <poll.h>

#include <algorithm>
#include <atomic>
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
#include "test_dir.h"
#include "tls/testing/test_certificates.h"
#include "tls/tls_channel.h"
#include "tls/tls_context.h"

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

// One accepted device connection, driven synchronously by the test. With `tls` (a server context)
// the connection is TLS: the handshake runs as the first frame is read.
class ServerConnection {
 public:
  explicit ServerConnection(tcp::socket socket, asio::ssl::context* tls = nullptr)
      : socket_(std::move(socket)) {
    if (tls != nullptr) {
      tls_ =
          std::make_unique<tls::TlsChannel>(tls->native_handle(), tls::TlsChannel::Role::kServer);
    }
  }

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
      if (!tls_) {
        in_.append(buf, n);
      } else if (!decrypt({reinterpret_cast<const std::uint8_t*>(buf), n})) {
        return std::nullopt;
      }
    }
  }

  [[nodiscard]] int native_handle() { return socket_.native_handle(); }
  // TLS: whether the handshake resumed the client's earlier session.
  [[nodiscard]] bool tls_resumed() const { return tls_ && tls_->resumed(); }
  [[nodiscard]] bool tls_established() const { return tls_ && tls_->established(); }

  // The next frame that is not a Ping (answered with a Pong, as a server does).
  std::optional<Frame> read_skipping_pings(milliseconds timeout = kWait) {
    for (;;) {
      auto f = read(timeout);
      if (!f || f->type != FrameType::kPing) return f;
      send_empty(FrameType::kPong);
    }
  }

  // The next frame of `type`, answering pings and passing over anything else.
  std::optional<Frame> read_until(FrameType type, milliseconds timeout = kWait) {
    for (;;) {
      auto f = read_skipping_pings(timeout);
      if (!f || f->type == type) return f;
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
  void send_raw(const std::string& bytes) {
    if (!tls_) {
      asio::write(socket_, asio::buffer(bytes));
      return;
    }
    EXPECT_TRUE(tls_->write(bytes)) << tls_->error();
    flush_tls();
  }

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
  // Where the client connected from.
  [[nodiscard]] tcp::endpoint remote_endpoint() const { return socket_.remote_endpoint(); }

 private:
  // Feeds `cipher` to the channel, keeps the plaintext and sends what the channel answers
  // (handshake, tickets). False when TLS failed or the client closed it.
  bool decrypt(std::span<const std::uint8_t> cipher) {
    tls_->feed(cipher);
    std::uint8_t plain[4096];
    for (;;) {
      const auto r = tls_->read(plain);
      if (r.status != tls::TlsChannel::Status::kOk) {
        flush_tls();  // an alert, if any
        return false;
      }
      if (r.bytes == 0) break;
      in_.append(reinterpret_cast<const char*>(plain), r.bytes);
    }
    flush_tls();
    return true;
  }

  void flush_tls() {
    std::string out = std::exchange(tls_->output(), {});
    boost::system::error_code ignored;  // the client may have gone: the next read says so
    if (!out.empty()) asio::write(socket_, asio::buffer(out), ignored);
  }

  tcp::socket socket_;
  std::unique_ptr<tls::TlsChannel> tls_;
  std::string in_;
};

class FakeServer {
 public:
  // With `tls` (tls::make_server_context) every accepted connection speaks TLS.
  explicit FakeServer(std::shared_ptr<asio::ssl::context> tls = nullptr)
      : tls_(std::move(tls)), acceptor_(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {}

  [[nodiscard]] Endpoint endpoint() const {
    return {"127.0.0.1", acceptor_.local_endpoint().port()};
  }

  std::optional<ServerConnection> accept(milliseconds timeout = kWait) {
    if (!readable(acceptor_.native_handle(), timeout)) return std::nullopt;
    return ServerConnection(acceptor_.accept(), tls_.get());
  }

 private:
  std::shared_ptr<asio::ssl::context> tls_;
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
  void recall(const Recall& r) {
    std::lock_guard lock(mu_);
    recalls_.push_back(r);
    cv_.notify_all();
  }
  void upstream(const UpstreamResult& r) {
    std::lock_guard lock(mu_);
    upstream_.push_back(r);
    cv_.notify_all();
  }
  bool wait_recalls(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return recalls_.size() >= n; });
  }
  bool wait_upstream(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return upstream_.size() >= n; });
  }
  std::vector<Recall> recalls() {
    std::lock_guard lock(mu_);
    return recalls_;
  }
  std::vector<UpstreamResult> upstream() {
    std::lock_guard lock(mu_);
    return upstream_;
  }
  Client::UpstreamCallback upstream_callback() {
    return [this](const UpstreamResult& r) { upstream(r); };
  }
  Client::SubscribeCallback subscribe_callback() {
    return [this](const SubscribeResult& r) {
      std::lock_guard lock(mu_);
      subscribes_.push_back(r);
      events_.push_back("subscribe " + std::to_string(r.id));
      cv_.notify_all();
    };
  }
  Client::StreamsHandler streams_handler() {
    return [this](const std::vector<StreamInfo>& list) {
      std::lock_guard lock(mu_);
      lists_.push_back(list);
      events_.push_back("streams");
      cv_.notify_all();
    };
  }
  bool wait_subscribes(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return subscribes_.size() >= n; });
  }
  bool wait_lists(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return lists_.size() >= n; });
  }
  std::vector<SubscribeResult> subscribes() {
    std::lock_guard lock(mu_);
    return subscribes_;
  }
  std::vector<std::vector<StreamInfo>> lists() {
    std::lock_guard lock(mu_);
    return lists_;
  }
  // The streams lists and subscribe completions, in the order the client reported them.
  std::vector<std::string> events() {
    std::lock_guard lock(mu_);
    return events_;
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
  std::vector<Recall> recalls_;
  std::vector<UpstreamResult> upstream_;
  std::vector<StateChange> states_;
  std::vector<SubscribeResult> subscribes_;
  std::vector<std::vector<StreamInfo>> lists_;
  std::vector<std::string> events_;
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
    c->on_recall("news", [this](const Recall& r) { rec.recall(r); });
    c->on_state([this](const StateChange& s) { rec.state(s); });
    return c;
  }

  // An adaptive heartbeat in 1 s steps from 1 s to 3 s.
  ClientOptions quick_heartbeat_options() {
    auto o = options({server.endpoint()});
    o.adaptive_heartbeat = true;
    o.heartbeat_s = 1;
    o.heartbeat_min_s = 1;
    o.heartbeat_step_s = 1;
    o.heartbeat_max_s = 3;
    return o;
  }

  // Accepts the client's connection, handshakes (answering `heartbeat_s`; the Hello goes to
  // `hello` if given) and answers the inbox pull with nothing.
  std::optional<ServerConnection> accept_and_settle(std::uint32_t heartbeat_s = 60,
                                                    wire::Hello* hello = nullptr) {
    auto conn = server.accept();
    if (!conn) return conn;
    wire::Hello h = conn->handshake(heartbeat_s);
    if (hello) *hello = h;
    auto pull = conn->read_until(FrameType::kPull);
    EXPECT_TRUE(pull);
    conn->send(FrameType::kMessages, wire::Messages{});
    return conn;
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
    conn->send(FrameType::kMessages, wire::Messages{});
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

TEST_F(ClientTest, ALostPullAnswerMeansANewConnectionThatPullsAgainFromTheSameCursor) {
  auto o = options({server.endpoint()});
  o.response_timeout = milliseconds(300);
  auto client = make_client(o);
  client->start();
  {
    auto conn = server.accept();
    ASSERT_TRUE(conn);
    conn->handshake(/*heartbeat_s=*/1);
    ASSERT_TRUE(conn->read_until(FrameType::kPull));
    conn->send(FrameType::kMessages, messages(0, 1, 1, 2));
    ASSERT_TRUE(rec.wait_messages(2));
    ASSERT_TRUE(conn->read_until(FrameType::kAck));
    conn->send(FrameType::kNotify, [] {
      wire::Notify n;
      n.set_stream(0);
      n.set_head_seq(3);
      return n;
    }());
    auto pull = conn->read_until(FrameType::kPull);
    ASSERT_TRUE(pull);
    EXPECT_EQ(pull->as<wire::Pull>().after_seq(), 2u);
    // The answer is lost; the connection lives on (every Ping is answered), but the stream
    // would be stuck: the client gives up on this connection.
    for (;;) {
      auto f = conn->read(milliseconds(3000));
      if (!f) break;
      if (f->type == FrameType::kPing) conn->send_empty(FrameType::kPong);
    }
    EXPECT_TRUE(conn->closed_by_peer());
  }
  EXPECT_TRUE(rec.wait_state([](auto& st) {
    return st.state == ConnectionState::kDisconnected &&
           st.reason.find("no answer to a Pull") != std::string::npos;
  }));
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  auto pull = conn->read_until(FrameType::kPull);
  ASSERT_TRUE(pull);
  EXPECT_EQ(pull->as<wire::Pull>().after_seq(), 2u);  // the same cursor: nothing skipped
  conn->send(FrameType::kMessages, messages(0, 1, 3, 3));
  ASSERT_TRUE(rec.wait_messages(3));
  EXPECT_EQ(rec.messages().size(), 3u);
}

TEST_F(ClientTest, AnAnswerComingSlowlyIsNoLostAnswer) {
  auto o = options({server.endpoint()});
  o.response_timeout = milliseconds(300);
  auto client = make_client(o);
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  ASSERT_TRUE(conn->read_until(FrameType::kPull));
  // A 2-entry answer dribbled out over about a second, well past response_timeout, a few bytes
  // every 100 ms: progress, so the connection stays.
  std::string frame;
  protocol::append_frame(FrameType::kMessages, messages(0, 1, 1, 2), frame);
  const std::size_t step = frame.size() / 10 + 1;
  for (std::size_t at = 0; at < frame.size(); at += step) {
    conn->send_raw(frame.substr(at, step));
    std::this_thread::sleep_for(milliseconds(100));  // the pace of a slow link, not a wait
  }
  ASSERT_TRUE(rec.wait_messages(2));
  // A deadline counted from the pull alone would have ended the connection half-way through.
  for (const auto& st : rec.states()) EXPECT_NE(st.state, ConnectionState::kDisconnected);
}

// The next frame, which must be a Ping; nullopt (and a failure) otherwise.
std::optional<wire::Ping> read_ping(ServerConnection& conn, milliseconds timeout) {
  auto f = conn.read(timeout);
  EXPECT_TRUE(f && f->type == FrameType::kPing);
  if (!f || f->type != FrameType::kPing) return std::nullopt;
  return f->as<wire::Ping>();
}

TEST_F(ClientTest, AdaptiveHeartbeatAnnouncesLongerIntervalsAndFallsBackAfterAMissingPong) {
  auto o = quick_heartbeat_options();
  o.response_timeout = milliseconds(300);
  auto client = make_client(o);
  client->start();
  {
    wire::Hello hello;
    auto conn = accept_and_settle(/*heartbeat_s=*/1, &hello);
    ASSERT_TRUE(conn);
    EXPECT_EQ(hello.heartbeat_s(), 1u);
    // Each Ping that ends a wait announces the next, one step longer, until the maximum.
    for (std::uint32_t next_s : {2u, 3u}) {
      auto ping = read_ping(*conn, milliseconds(4000));
      ASSERT_TRUE(ping);
      EXPECT_EQ(ping->heartbeat_s(), next_s);
      EXPECT_EQ(client->heartbeat_interval_s(), next_s);
      conn->send_empty(FrameType::kPong);
    }
    auto ping = read_ping(*conn, milliseconds(4000));
    ASSERT_TRUE(ping);
    EXPECT_EQ(ping->heartbeat_s(), 0u);  // 3 s is the maximum: nothing to announce
    // No Pong after the 3 s wait: 3 s failed, the client reconnects.
    EXPECT_TRUE(conn->closed_by_peer());
  }
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  // It starts again from the last interval that worked.
  EXPECT_EQ(conn->handshake(/*heartbeat_s=*/2).heartbeat_s(), 2u);
}

TEST_F(ClientTest, NewNetworkStartsFromTheInitialHeartbeatAtTheNextPing) {
  auto client = make_client(quick_heartbeat_options());
  client->set_network("wifi:home");
  client->start();
  auto conn = accept_and_settle(/*heartbeat_s=*/1);
  ASSERT_TRUE(conn);
  auto ping = read_ping(*conn, milliseconds(3000));
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->heartbeat_s(), 2u);
  conn->send_empty(FrameType::kPong);
  client->set_network("carrier:A");
  // The 2 s wait was not spent on one network: it proves nothing, and the new one starts at 1 s.
  ping = read_ping(*conn, milliseconds(4000));
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->heartbeat_s(), 1u);
  EXPECT_EQ(client->heartbeat_interval_s(), 1u);
}

TEST_F(ClientTest, FixedHeartbeatSendsEmptyPingsAtTheConfiguredInterval) {
  auto o = quick_heartbeat_options();
  o.adaptive_heartbeat = false;
  auto client = make_client(o);
  client->start();
  wire::Hello hello;
  auto conn = accept_and_settle(/*heartbeat_s=*/1, &hello);
  ASSERT_TRUE(conn);
  EXPECT_EQ(hello.heartbeat_s(), 1u);
  for (int i = 0; i < 2; ++i) {
    auto ping = read_ping(*conn, milliseconds(3000));
    ASSERT_TRUE(ping);
    EXPECT_EQ(ping->heartbeat_s(), 0u);
    EXPECT_EQ(client->heartbeat_interval_s(), 1u);
    conn->send_empty(FrameType::kPong);
  }
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

TEST_F(ClientTest, WithoutRacingFailsOverToTheNextEndpointAfterReportingTheFailure) {
  // A port nobody listens on: take one from a closed acceptor.
  Endpoint dead;
  {
    FakeServer gone;
    dead = gone.endpoint();
  }
  auto o = options({dead, server.endpoint()});
  o.race_width = 1;
  auto client = make_client(o);
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  auto s = rec.wait_state([](auto& st) { return st.state == ConnectionState::kDisconnected; });
  ASSERT_TRUE(s);
  EXPECT_NE(s->reason.find("connect to 127.0.0.1:" + std::to_string(dead.port)), std::string::npos);
}

TEST_F(ClientTest, RacingKeepsTheFirstHelloOkAndClosesTheOtherAttempt) {
  FakeServer second;
  auto o = options({server.endpoint(), second.endpoint()});
  o.race_width = 2;
  o.race_stagger = milliseconds(10);
  auto client = make_client(o);
  client->start();
  // The first endpoint takes the connection and the Hello but never answers.
  auto slow = server.accept();
  ASSERT_TRUE(slow);
  auto slow_hello = slow->read();
  ASSERT_TRUE(slow_hello && slow_hello->type == FrameType::kHello);
  // The second answers: it wins, and the first attempt is closed.
  auto fast = second.accept();
  ASSERT_TRUE(fast);
  const wire::Hello fast_hello = fast->handshake();
  EXPECT_TRUE(slow->closed_by_peer());
  auto connected = rec.wait_state([](auto& s) { return s.state == ConnectionState::kConnected; });
  ASSERT_TRUE(connected);
  EXPECT_EQ(connected->reason, "connected to 127.0.0.1:" + std::to_string(second.endpoint().port));
  // Both Hellos of the round carry its race id, so a node never lets one supersede the other.
  EXPECT_NE(fast_hello.race_id(), 0u);
  EXPECT_EQ(slow_hello->as<wire::Hello>().race_id(), fast_hello.race_id());
  // The winner goes on as a connection: it pulls the inbox.
  auto pull = fast->read_until(FrameType::kPull);
  ASSERT_TRUE(pull);
  EXPECT_EQ(pull->as<wire::Pull>().stream(), 0u);
  const auto states = rec.states();
  EXPECT_EQ(std::count_if(states.begin(), states.end(),
                          [](auto& s) { return s.state == ConnectionState::kDisconnected; }),
            0);
}

TEST_F(ClientTest, RaceLostIsAFailedAttemptThatStartsTheNextAtOnce) {
  FakeServer second;
  auto o = options({server.endpoint(), second.endpoint()});
  o.race_stagger = std::chrono::hours(1);  // only a failure can start the second attempt
  auto client = make_client(o);
  client->start();
  {
    auto refused = server.accept();
    ASSERT_TRUE(refused);
    ASSERT_TRUE(refused->read());  // Hello
    wire::Error error;
    error.set_code(static_cast<std::uint32_t>(protocol::ErrorCode::kRaceLost));
    refused->send(FrameType::kError, error);
    refused->close();
  }
  auto conn = second.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  ASSERT_TRUE(rec.wait_state([](auto& s) { return s.state == ConnectionState::kConnected; }));
  const auto states = rec.states();
  EXPECT_EQ(std::count_if(states.begin(), states.end(),
                          [](auto& s) { return s.state == ConnectionState::kDisconnected; }),
            0);
}

TEST_F(ClientTest, RacingAfterADrainTriesTheOtherEndpointsFirstInTheirOrder) {
  FakeServer second;
  FakeServer third;
  auto o = options({server.endpoint(), second.endpoint(), third.endpoint()});
  o.race_stagger = std::chrono::hours(1);  // one attempt at a time unless one fails
  auto client = make_client(o);
  client->start();
  {
    auto conn = server.accept();
    ASSERT_TRUE(conn);
    conn->handshake();
    wire::Reconnect r;
    r.set_reason(wire::RECONNECT_REASON_DRAIN);
    r.set_delay_ms(10);
    conn->send(FrameType::kReconnect, r);
    EXPECT_TRUE(conn->closed_by_peer());
  }
  // The drained endpoint goes last; the next best is tried first.
  auto conn = second.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  const std::string first_text = "127.0.0.1:" + std::to_string(server.endpoint().port);
  const std::string second_text = "127.0.0.1:" + std::to_string(second.endpoint().port);
  const std::string third_text = "127.0.0.1:" + std::to_string(third.endpoint().port);
  ASSERT_TRUE(rec.wait_state([&](auto& s) {
    return s.state == ConnectionState::kConnected && s.reason == "connected to " + second_text;
  }));
  const auto states = rec.states();
  const auto round = std::find_if(states.rbegin(), states.rend(),
                                  [](auto& s) { return s.state == ConnectionState::kConnecting; });
  ASSERT_NE(round, states.rend());
  EXPECT_EQ(round->reason.find("racing " + second_text + ", " + third_text + ", " + first_text), 0u)
      << round->reason;
}

TEST_F(ClientTest, WithoutRacingTheHelloCarriesNoRaceId) {
  auto o = options({server.endpoint()});
  o.race_width = 1;
  auto client = make_client(o);
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  EXPECT_EQ(conn->handshake().race_id(), 0u);
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

// ---------------------------------------------------------------------------------------------
// Tombstones and recalls.

wire::Entry* add_entry(wire::Messages& m, std::uint64_t seq, wire::DataKind kind,
                       const std::string& id, const std::string& data) {
  auto* e = m.add_entries();
  e->set_seq(seq);
  e->set_app("news");
  e->set_message_id(id);
  e->set_data(data);
  e->set_kind(kind);
  m.set_head_seq(seq);
  return e;
}

TEST_F(ClientTest, TombstoneIsSteppedOverWithoutAGapOrAHandlerCall) {
  auto client = make_client(options({server.endpoint()}));
  std::atomic<int> others = 0;
  client->on_other_message([&](const Message&) { ++others; });
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  ASSERT_TRUE(conn->read_until(FrameType::kPull));
  wire::Messages m;
  m.set_epoch(1);
  add_entry(m, 1, wire::DATA_KIND_JSON, "m1", "{}");
  add_entry(m, 2, wire::DATA_KIND_TOMBSTONE, "m2", "");
  add_entry(m, 3, wire::DATA_KIND_JSON, "m3", "{}");
  conn->send(FrameType::kMessages, m);
  auto ack = conn->read_until(FrameType::kAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->as<wire::Ack>().seq(), 3u);
  ASSERT_TRUE(rec.wait_messages(2));
  const auto got = rec.messages();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].seq, 1u);
  EXPECT_EQ(got[1].seq, 3u);
  EXPECT_TRUE(rec.recalls().empty());
  // The connection is not closed for a gap: it still answers a notify.
  wire::Notify notify;
  notify.set_head_seq(4);
  conn->send(FrameType::kNotify, notify);
  auto pull = conn->read_until(FrameType::kPull);
  ASSERT_TRUE(pull);
  EXPECT_EQ(pull->as<wire::Pull>().after_seq(), 3u);
  EXPECT_EQ(others, 0);
}

TEST_F(ClientTest, AnnouncedGapReachesOnGapBetweenTheMessagesAroundIt) {
  auto client = make_client(options({server.endpoint()}));
  std::mutex mu;
  std::vector<std::string> order;  // the gap handler's and the message handler's calls
  std::vector<Gap> gaps;
  client->on_message("news", [&](const Message& m) {
    std::lock_guard lock(mu);
    order.push_back("message " + std::to_string(m.epoch) + ":" + std::to_string(m.seq));
    rec.message(m);
  });
  client->on_gap([&](const Gap& g) {
    std::lock_guard lock(mu);
    order.push_back("gap");
    gaps.push_back(g);
  });
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  ASSERT_TRUE(conn->read_until(FrameType::kPull));
  conn->send(FrameType::kMessages, messages(0, 1, 1, 2));
  ASSERT_TRUE(conn->read_until(FrameType::kAck));
  // The stream was reset: a new epoch, whose first entries expired too.
  wire::Notify notify;
  notify.set_head_seq(6);
  conn->send(FrameType::kNotify, notify);
  ASSERT_TRUE(conn->read_until(FrameType::kPull));
  wire::Messages reset = messages(0, 2, 5, 6);
  reset.set_epoch_changed(true);
  reset.set_truncated_before(5);
  conn->send(FrameType::kMessages, reset);
  auto ack = conn->read_until(FrameType::kAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->as<wire::Ack>().epoch(), 2u);
  EXPECT_EQ(ack->as<wire::Ack>().seq(), 6u);
  ASSERT_TRUE(rec.wait_messages(4));
  std::lock_guard lock(mu);
  EXPECT_EQ(order, (std::vector<std::string>{"message 1:1", "message 1:2", "gap", "message 2:5",
                                             "message 2:6"}));
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].reason, GapReason::kNewEpoch);
  EXPECT_EQ(gaps[0].from_epoch, 1u);
  EXPECT_EQ(gaps[0].from_seq, 2u);
  EXPECT_EQ(gaps[0].epoch, 2u);
  EXPECT_EQ(gaps[0].resume_after_seq, 4u);
}

TEST_F(ClientTest, RecallIsHandedOnceAndNotAgainAfterARestartOnAFileCursorStore) {
  herald::testing::TestDir dir;
  wire::Messages m;
  m.set_epoch(1);
  add_entry(m, 1, wire::DATA_KIND_JSON, "m1", "{}");
  add_entry(m, 2, wire::DATA_KIND_RECALL, "r2", "m1")->set_sent_at_ms(5);
  {
    auto client =
        make_client(options({server.endpoint()}), make_file_cursor_store(dir / "cursors"));
    client->start();
    auto conn = server.accept();
    ASSERT_TRUE(conn);
    conn->handshake();
    ASSERT_TRUE(conn->read_until(FrameType::kPull));
    conn->send(FrameType::kMessages, m);
    auto ack = conn->read_until(FrameType::kAck);  // after the cursor was saved
    ASSERT_TRUE(ack);
    EXPECT_EQ(ack->as<wire::Ack>().seq(), 2u);
    client->stop();
  }
  const auto recalls = rec.recalls();
  ASSERT_EQ(recalls.size(), 1u);
  EXPECT_EQ(recalls[0].app, "news");
  EXPECT_EQ(recalls[0].recalled_id, "m1");
  EXPECT_EQ(recalls[0].id, "r2");
  EXPECT_EQ(recalls[0].seq, 2u);
  EXPECT_EQ(recalls[0].sent_at_ms, 5);
  ASSERT_EQ(rec.messages().size(), 1u);

  // A new client on the same store pulls after the recall; the same entries again (a server
  // that lost the ack) reach no handler.
  auto client = make_client(options({server.endpoint()}), make_file_cursor_store(dir / "cursors"));
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  auto pull = conn->read_until(FrameType::kPull);
  ASSERT_TRUE(pull);
  EXPECT_EQ(pull->as<wire::Pull>().after_seq(), 2u);
  add_entry(m, 3, wire::DATA_KIND_JSON, "m3", "{}");
  conn->send(FrameType::kMessages, m);
  ASSERT_TRUE(rec.wait_messages(2));
  ASSERT_TRUE(conn->read_until(FrameType::kAck));
  EXPECT_EQ(rec.recalls().size(), 1u);
  EXPECT_EQ(rec.messages().back().seq, 3u);
}

TEST_F(ClientTest, RecallOfAnAppWithoutARecallHandlerGoesToOnOtherRecall) {
  auto client = make_client(options({server.endpoint()}));
  std::vector<std::string> other;
  std::mutex mu;
  client->on_other_recall([&](const Recall& r) {
    std::lock_guard lock(mu);
    other.push_back(r.app + "/" + r.recalled_id);
  });
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  ASSERT_TRUE(conn->read_until(FrameType::kPull));
  wire::Messages m;
  m.set_epoch(1);
  add_entry(m, 1, wire::DATA_KIND_RECALL, "r1", "x9")->set_app("chat");
  conn->send(FrameType::kMessages, m);
  ASSERT_TRUE(conn->read_until(FrameType::kAck));  // handlers ran before the ack
  std::lock_guard lock(mu);
  EXPECT_EQ(other, (std::vector<std::string>{"chat/x9"}));
  EXPECT_TRUE(rec.recalls().empty());
}

// ---------------------------------------------------------------------------------------------
// Upstream.

wire::UpstreamAck upstream_ack(std::uint64_t id,
                               protocol::ErrorCode code = protocol::ErrorCode::kOk) {
  wire::UpstreamAck ack;
  ack.set_id(id);
  ack.set_error_code(static_cast<std::uint32_t>(code));
  return ack;
}

TEST_F(ClientTest, UpstreamIsSentOnceConnectedAndStoredOnItsAck) {
  auto client = make_client(options({server.endpoint()}));
  // Before start(): it waits for the connection.
  const std::uint64_t id =
      client->send_upstream("news", "{\"read\":42}", false, rec.upstream_callback());
  EXPECT_NE(id, 0u);
  client->start();
  auto conn = accept_and_settle();
  ASSERT_TRUE(conn);
  auto frame = conn->read_until(FrameType::kUpstream);
  ASSERT_TRUE(frame);
  const auto up = frame->as<wire::Upstream>();
  EXPECT_EQ(up.id(), id);
  EXPECT_EQ(up.app(), "news");
  EXPECT_EQ(up.data(), "{\"read\":42}");
  EXPECT_EQ(up.kind(), wire::DATA_KIND_JSON);
  EXPECT_TRUE(rec.upstream().empty());
  conn->send(FrameType::kUpstreamAck, upstream_ack(id));
  ASSERT_TRUE(rec.wait_upstream(1));
  const auto r = rec.upstream()[0];
  EXPECT_EQ(r.id, id);
  EXPECT_EQ(r.status, UpstreamStatus::kStored);
  EXPECT_EQ(r.error_code, 0u);
}

TEST_F(ClientTest, BinaryUpstreamIsSentAsBinary) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_and_settle();
  ASSERT_TRUE(conn);
  const std::uint64_t id =
      client->send_upstream("news", std::string("\x00\xff", 2), true, rec.upstream_callback());
  auto frame = conn->read_until(FrameType::kUpstream);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->as<wire::Upstream>().id(), id);
  EXPECT_EQ(frame->as<wire::Upstream>().kind(), wire::DATA_KIND_BINARY);
  EXPECT_EQ(frame->as<wire::Upstream>().data(), std::string("\x00\xff", 2));
}

TEST_F(ClientTest, UpstreamIsResentWithTheSameIdWhenTheConnectionDiedBeforeItsAck) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  std::uint64_t id = 0;
  {
    auto conn = accept_and_settle();
    ASSERT_TRUE(conn);
    id = client->send_upstream("news", "[1]", false, rec.upstream_callback());
    auto frame = conn->read_until(FrameType::kUpstream);
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->as<wire::Upstream>().id(), id);
    conn->close();  // stored or not, the client cannot know
  }
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  auto frame = conn->read_until(FrameType::kUpstream);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->as<wire::Upstream>().id(), id);
  EXPECT_EQ(frame->as<wire::Upstream>().data(), "[1]");
  EXPECT_TRUE(rec.upstream().empty());
  conn->send(FrameType::kUpstreamAck, upstream_ack(id));
  ASSERT_TRUE(rec.wait_upstream(1));
  EXPECT_EQ(rec.upstream()[0].status, UpstreamStatus::kStored);
}

TEST_F(ClientTest, UpstreamsOfOneAppGoOneAtATimeInCallOrder) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_and_settle();
  ASSERT_TRUE(conn);
  const std::uint64_t first = client->send_upstream("news", "1", false, rec.upstream_callback());
  const std::uint64_t second = client->send_upstream("news", "2", false, rec.upstream_callback());
  auto frame = conn->read_until(FrameType::kUpstream);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->as<wire::Upstream>().id(), first);
  // A notify the client answers at once: had the second message gone, it would come first.
  wire::Notify notify;
  notify.set_head_seq(1);
  conn->send(FrameType::kNotify, notify);
  auto next = conn->read_skipping_pings();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->type, FrameType::kPull);
  conn->send(FrameType::kUpstreamAck, upstream_ack(first));
  frame = conn->read_until(FrameType::kUpstream);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->as<wire::Upstream>().id(), second);
  conn->send(FrameType::kUpstreamAck, upstream_ack(second));
  ASSERT_TRUE(rec.wait_upstream(2));
  EXPECT_EQ(rec.upstream()[0].id, first);
  EXPECT_EQ(rec.upstream()[1].id, second);
}

TEST_F(ClientTest, BusyUpstreamIsSentAgainWithTheSameIdOnTheSameConnection) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_and_settle();
  ASSERT_TRUE(conn);
  const std::uint64_t id = client->send_upstream("news", "1", false, rec.upstream_callback());
  ASSERT_TRUE(conn->read_until(FrameType::kUpstream));
  conn->send(FrameType::kUpstreamAck, upstream_ack(id, protocol::ErrorCode::kServerBusy));
  auto again = conn->read_until(FrameType::kUpstream);  // after a backoff delay of <= 10 ms
  ASSERT_TRUE(again);
  EXPECT_EQ(again->as<wire::Upstream>().id(), id);
  EXPECT_TRUE(rec.upstream().empty());
  conn->send(FrameType::kUpstreamAck, upstream_ack(id));
  ASSERT_TRUE(rec.wait_upstream(1));
  EXPECT_EQ(rec.upstream()[0].status, UpstreamStatus::kStored);
}

TEST_F(ClientTest, UpstreamRefusedForGoodFailsWithTheServersCode) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_and_settle();
  ASSERT_TRUE(conn);
  const std::uint64_t id = client->send_upstream("news", "1", false, rec.upstream_callback());
  ASSERT_TRUE(conn->read_until(FrameType::kUpstream));
  conn->send(FrameType::kUpstreamAck, upstream_ack(id, protocol::ErrorCode::kUnknownApp));
  ASSERT_TRUE(rec.wait_upstream(1));
  const auto r = rec.upstream()[0];
  EXPECT_EQ(r.status, UpstreamStatus::kRejected);
  EXPECT_EQ(r.error_code, 34u);
  EXPECT_NE(r.reason.find("unknown_app"), std::string::npos);
}

TEST_F(ClientTest, MissingUpstreamAckMeansADeadConnectionAndTheMessageGoesAgain) {
  auto o = options({server.endpoint()});
  o.response_timeout = milliseconds(200);
  auto client = make_client(o);
  client->start();
  std::uint64_t id = 0;
  {
    auto conn = accept_and_settle();
    ASSERT_TRUE(conn);
    id = client->send_upstream("news", "1", false, rec.upstream_callback());
    ASSERT_TRUE(conn->read_until(FrameType::kUpstream));
    EXPECT_TRUE(conn->closed_by_peer());  // no ack: the client gives up on this connection
  }
  auto s = rec.wait_state([](auto& st) {
    return st.state == ConnectionState::kDisconnected &&
           st.reason.find("UpstreamAck") != std::string::npos;
  });
  EXPECT_TRUE(s);
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  auto frame = conn->read_until(FrameType::kUpstream);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->as<wire::Upstream>().id(), id);
}

TEST_F(ClientTest, UpstreamBeyondTheQueueBoundsIsRefusedAtOnce) {
  auto o = options({server.endpoint()});
  o.max_upstream_messages = 2;
  o.max_upstream_bytes = 100;
  auto client = make_client(o);  // not started: nothing leaves the queue
  client->send_upstream("news", "1", false, rec.upstream_callback());
  client->send_upstream("news", "2", false, rec.upstream_callback());
  const std::uint64_t third = client->send_upstream("news", "3", false, rec.upstream_callback());
  ASSERT_TRUE(rec.wait_upstream(1));
  auto r = rec.upstream()[0];
  EXPECT_EQ(r.id, third);
  EXPECT_EQ(r.status, UpstreamStatus::kQueueFull);
  EXPECT_NE(r.reason.find("2 of 2 messages"), std::string::npos);
  client->stop();  // the two queued ones now fail as stopped
  ASSERT_EQ(rec.upstream().size(), 3u);
}

TEST_F(ClientTest, UpstreamBeyondTheQueueBytesIsRefusedAtOnce) {
  auto o = options({server.endpoint()});
  o.max_upstream_bytes = 100;
  auto client = make_client(o);
  client->send_upstream("news", "\"" + std::string(80, 'x') + "\"", false, rec.upstream_callback());
  const std::uint64_t second = client->send_upstream("news", "\"" + std::string(20, 'y') + "\"",
                                                     false, rec.upstream_callback());
  ASSERT_TRUE(rec.wait_upstream(1));
  EXPECT_EQ(rec.upstream()[0].id, second);
  EXPECT_EQ(rec.upstream()[0].status, UpstreamStatus::kQueueFull);
}

TEST_F(ClientTest, InvalidUpstreamIsRefusedAtOnce) {
  auto o = options({server.endpoint()});
  o.max_upstream_bytes = 100;
  auto client = make_client(o);
  client->send_upstream("News!", "{}", false, rec.upstream_callback());
  client->send_upstream("news", "{not json", false, rec.upstream_callback());
  client->send_upstream("news", std::string(200, 'x'), true, rec.upstream_callback());
  ASSERT_TRUE(rec.wait_upstream(3));
  const auto results = rec.upstream();
  for (const auto& r : results) EXPECT_EQ(r.status, UpstreamStatus::kInvalid) << r.reason;
  EXPECT_NE(results[0].reason.find("app"), std::string::npos);
  EXPECT_NE(results[1].reason.find("JSON"), std::string::npos);
  EXPECT_NE(results[2].reason.find("max_upstream_bytes"), std::string::npos);
}

TEST_F(ClientTest, StopCompletesEveryQueuedUpstreamAsStoppedBeforeItReturns) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_and_settle();
  ASSERT_TRUE(conn);
  const std::uint64_t sent = client->send_upstream("news", "1", false, rec.upstream_callback());
  ASSERT_TRUE(conn->read_until(FrameType::kUpstream));  // in flight, never acked
  const std::uint64_t queued = client->send_upstream("news", "2", false, rec.upstream_callback());
  client->stop();
  const auto results = rec.upstream();  // no wait: stop() returned after the callbacks
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].id, sent);
  EXPECT_EQ(results[1].id, queued);
  for (const auto& r : results) {
    EXPECT_EQ(r.status, UpstreamStatus::kStopped);
    EXPECT_EQ(r.reason, "stopped");
  }
}

TEST_F(ClientTest, StopBeforeStartCompletesQueuedUpstreamAsStopped) {
  auto client = make_client(options({server.endpoint()}));
  client->send_upstream("news", "1", false, rec.upstream_callback());
  client->stop();
  ASSERT_EQ(rec.upstream().size(), 1u);
  EXPECT_EQ(rec.upstream()[0].status, UpstreamStatus::kStopped);
}

TEST_F(ClientTest, UpstreamAfterStopFailsAsStopped) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  client->stop();
  client->send_upstream("news", "1", false, rec.upstream_callback());
  ASSERT_TRUE(rec.wait_upstream(1));
  EXPECT_EQ(rec.upstream()[0].status, UpstreamStatus::kStopped);
}

// ---------------------------------------------------------------------------------------------
// Topics and broadcast (docs/protocol.md section 11).

wire::StreamInfo stream_info(std::uint64_t stream, const std::string& topic, std::uint64_t epoch,
                             std::uint64_t head, std::uint64_t start,
                             const std::string& app = "news") {
  wire::StreamInfo info;
  info.set_stream(stream);
  info.set_app(app);
  info.set_topic(topic);
  info.set_epoch(epoch);
  info.set_head_seq(head);
  info.set_start_seq(start);
  return info;
}

wire::Streams streams_frame(const std::vector<wire::StreamInfo>& list, std::uint64_t request_id = 0,
                            bool more = false) {
  wire::Streams s;
  s.set_request_id(request_id);
  for (const auto& info : list) *s.add_streams() = info;
  s.set_more(more);
  return s;
}

wire::Streams refusal(std::uint64_t request_id, protocol::ErrorCode code) {
  wire::Streams s;
  s.set_request_id(request_id);
  s.set_error_code(static_cast<std::uint32_t>(code));
  return s;
}

wire::Notify notify_frame(std::uint64_t stream, std::uint64_t head) {
  wire::Notify n;
  n.set_stream(stream);
  n.set_head_seq(head);
  return n;
}

class TopicTest : public ClientTest {
 protected:
  // Accepts the client's connection, handshakes, sends `list` as the Streams after HelloOk and
  // answers the inbox pull with nothing (the inbox cursor stays {0, 0}).
  std::optional<ServerConnection> accept_with_list(const std::vector<wire::StreamInfo>& list) {
    auto conn = server.accept();
    if (!conn) return conn;
    conn->handshake();
    conn->send(FrameType::kStreams, streams_frame(list));
    auto pull = conn->read_until(FrameType::kPull);
    EXPECT_TRUE(pull && pull->as<wire::Pull>().stream() == 0);
    conn->send(FrameType::kMessages, wire::Messages{});
    return conn;
  }

  // The next frame (pings aside) must be a Pull, of `stream`.
  static wire::Pull expect_pull(ServerConnection& conn, std::uint64_t stream) {
    auto f = conn.read_skipping_pings();
    EXPECT_TRUE(f && f->type == FrameType::kPull) << (f ? static_cast<int>(f->type) : -1);
    const wire::Pull pull = f && f->type == FrameType::kPull ? f->as<wire::Pull>() : wire::Pull{};
    EXPECT_EQ(pull.stream(), stream);
    return pull;
  }

  // Shows that the client sent nothing but pings since the last frame read: a Notify for the
  // idle inbox (cursor {0, 0}) makes it pull the inbox at once, so anything it had sent before
  // would be read first. The pull is answered with nothing, which leaves the inbox idle again.
  static void expect_nothing_sent(ServerConnection& conn) {
    conn.send(FrameType::kNotify, notify_frame(0, 1));
    (void)expect_pull(conn, 0);
    conn.send(FrameType::kMessages, wire::Messages{});
  }
};

TEST_F(TopicTest, StreamsAfterHelloOkPullOnlyStreamsWhoseHeadIsBeyondTheCursor) {
  auto store = make_memory_cursor_store();
  store->save(5, {1, 10});
  store->save(6, {1, 20});
  store->save(8, {1, 5});
  auto client = make_client(options({server.endpoint()}), store);
  client->start();
  auto conn = accept_with_list({stream_info(5, "a", 1, 12, 3), stream_info(6, "b", 1, 20, 3),
                                stream_info(7, "c", 1, 40, 40), stream_info(8, "d", 2, 5, 0)});
  ASSERT_TRUE(conn);
  wire::Pull pull = expect_pull(*conn, 5);
  EXPECT_EQ(pull.epoch(), 1u);
  EXPECT_EQ(pull.after_seq(), 10u);
  pull = expect_pull(*conn, 8);  // another epoch: only a pull tells what happened
  EXPECT_EQ(pull.epoch(), 1u);
  EXPECT_EQ(pull.after_seq(), 5u);
  expect_nothing_sent(*conn);  // 6 is at its head; 7 had no cursor and starts at it
  // 7's cursor was moved to its start: a notify pulls from there.
  conn->send(FrameType::kNotify, notify_frame(7, 41));
  pull = expect_pull(*conn, 7);
  EXPECT_EQ(pull.epoch(), 1u);
  EXPECT_EQ(pull.after_seq(), 40u);
}

TEST_F(TopicTest, StartSeqMovesAnOlderCursorAndTheAnswerFromThereIsNoGap) {
  auto store = make_memory_cursor_store();
  store->save(5, {1, 3});
  auto client = make_client(options({server.endpoint()}), store);
  client->start();
  auto conn = accept_with_list({stream_info(5, "sport", 1, 42, 40)});
  ASSERT_TRUE(conn);
  EXPECT_EQ(expect_pull(*conn, 5).after_seq(), 40u);
  conn->send(FrameType::kMessages, messages(5, 1, 41, 42));
  auto ack = conn->read_until(FrameType::kAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->as<wire::Ack>().stream(), 5u);
  EXPECT_EQ(ack->as<wire::Ack>().seq(), 42u);
  ASSERT_TRUE(rec.wait_messages(2));
  EXPECT_EQ(rec.messages()[0].seq, 41u);
}

TEST_F(TopicTest, MessagesOfATopicStreamCarryTheTopicAndOfABroadcastStreamTheFlag) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_with_list({stream_info(3, "sport", 1, 1, 0), stream_info(4, "", 1, 1, 0)});
  ASSERT_TRUE(conn);
  (void)expect_pull(*conn, 3);
  (void)expect_pull(*conn, 4);
  conn->send(FrameType::kMessages, messages(3, 1, 1, 1));
  conn->send(FrameType::kMessages, messages(4, 1, 1, 1));
  conn->send(FrameType::kNotify, notify_frame(0, 1));
  auto pull = conn->read_until(FrameType::kPull);  // after the acks of 3 and 4
  ASSERT_TRUE(pull);
  EXPECT_EQ(pull->as<wire::Pull>().stream(), 0u);
  conn->send(FrameType::kMessages, messages(0, 1, 1, 1));
  ASSERT_TRUE(rec.wait_messages(3));
  const auto got = rec.messages();
  EXPECT_EQ(got[0].stream, 3u);
  EXPECT_EQ(got[0].topic, "sport");
  EXPECT_FALSE(got[0].broadcast);
  EXPECT_EQ(got[1].stream, 4u);
  EXPECT_EQ(got[1].topic, "");
  EXPECT_TRUE(got[1].broadcast);
  EXPECT_EQ(got[2].stream, 0u);
  EXPECT_EQ(got[2].topic, "");
  EXPECT_FALSE(got[2].broadcast);
}

TEST_F(TopicTest, LaterListDropsAStreamWhoseNotifiesAreThenIgnored) {
  auto client = make_client(options({server.endpoint()}));
  client->on_streams(rec.streams_handler());
  client->start();
  auto conn = accept_with_list({stream_info(5, "a", 1, 0, 0), stream_info(6, "b", 1, 0, 0)});
  ASSERT_TRUE(conn);
  conn->send(FrameType::kStreams, streams_frame({stream_info(6, "b", 1, 0, 0)}));  // unprompted
  conn->send(FrameType::kNotify, notify_frame(5, 3));
  expect_nothing_sent(*conn);
  conn->send(FrameType::kNotify, notify_frame(6, 3));
  (void)expect_pull(*conn, 6);
  wire::Messages nothing_new = messages(6, 1, 1, 0);
  conn->send(FrameType::kMessages, nothing_new);
  // A resync pulls the inbox and the streams still listed, in one go.
  wire::Pong resync;
  resync.set_resync(true);
  conn->send(FrameType::kPong, resync);
  (void)expect_pull(*conn, 0);
  (void)expect_pull(*conn, 6);
  conn->send(FrameType::kMessages, wire::Messages{});
  conn->send(FrameType::kMessages, nothing_new);
  expect_nothing_sent(*conn);
  ASSERT_TRUE(rec.wait_lists(2));
  ASSERT_EQ(rec.lists()[1].size(), 1u);
  EXPECT_EQ(rec.lists()[1][0].stream, 6u);
  EXPECT_EQ(rec.lists()[1][0].topic, "b");
}

TEST_F(TopicTest, SplitListIsAppliedOnlyOnceComplete) {
  auto client = make_client(options({server.endpoint()}));
  client->on_streams(rec.streams_handler());
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  conn->send(FrameType::kStreams, streams_frame({stream_info(5, "a", 1, 2, 0)}, 0, /*more=*/true));
  ASSERT_TRUE(conn->read_until(FrameType::kPull));  // the inbox's
  conn->send(FrameType::kMessages, wire::Messages{});
  conn->send(FrameType::kNotify, notify_frame(5, 3));  // not listed yet
  expect_nothing_sent(*conn);
  conn->send(FrameType::kStreams, streams_frame({stream_info(6, "", 1, 1, 0)}));
  (void)expect_pull(*conn, 5);
  (void)expect_pull(*conn, 6);
  ASSERT_TRUE(rec.wait_lists(1));
  const auto lists = rec.lists();
  ASSERT_EQ(lists.size(), 1u);
  ASSERT_EQ(lists[0].size(), 2u);
  EXPECT_EQ(lists[0][0].topic, "a");
  EXPECT_FALSE(lists[0][0].broadcast);
  EXPECT_EQ(lists[0][1].app, "news");
  EXPECT_TRUE(lists[0][1].broadcast);
}

TEST_F(TopicTest, SubscribeSendsItsFrameAndIsDoneWhenTheListAnswersIt) {
  auto client = make_client(options({server.endpoint()}));
  client->on_streams(rec.streams_handler());
  // Before start(): it waits for the connection.
  const std::uint64_t id =
      client->subscribe("news", {"sport", "weather"}, rec.subscribe_callback(), /*history=*/5);
  EXPECT_NE(id, 0u);
  client->start();
  auto conn = accept_with_list({stream_info(2, "", 1, 0, 0)});
  ASSERT_TRUE(conn);
  auto frame = conn->read_until(FrameType::kSubscribe);
  ASSERT_TRUE(frame);
  const auto sub = frame->as<wire::Subscribe>();
  EXPECT_EQ(sub.id(), id);
  EXPECT_EQ(sub.app(), "news");
  EXPECT_EQ(std::vector<std::string>(sub.topics().begin(), sub.topics().end()),
            (std::vector<std::string>{"sport", "weather"}));
  EXPECT_FALSE(sub.unsubscribe());
  EXPECT_EQ(sub.history(), 5u);
  EXPECT_TRUE(rec.subscribes().empty());
  conn->send(FrameType::kStreams,
             streams_frame({stream_info(2, "", 1, 0, 0), stream_info(3, "sport", 1, 10, 5),
                            stream_info(4, "weather", 1, 0, 0)},
                           id));
  ASSERT_TRUE(rec.wait_subscribes(1));
  const auto r = rec.subscribes()[0];
  EXPECT_EQ(r.id, id);
  EXPECT_EQ(r.status, SubscribeStatus::kDone);
  EXPECT_EQ(r.error_code, 0u);
  // The new list was shown before the request completed.
  EXPECT_EQ(rec.events(),
            (std::vector<std::string>{"streams", "streams", "subscribe " + std::to_string(id)}));
  EXPECT_EQ(rec.lists().back().size(), 3u);
  // The history: 5 entries of "sport" before the join.
  EXPECT_EQ(expect_pull(*conn, 3).after_seq(), 5u);
}

TEST_F(TopicTest, UnsubscribeSendsALeave) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_with_list({stream_info(3, "sport", 1, 0, 0)});
  ASSERT_TRUE(conn);
  const std::uint64_t id = client->unsubscribe("news", {"sport"}, rec.subscribe_callback());
  auto frame = conn->read_until(FrameType::kSubscribe);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->as<wire::Subscribe>().id(), id);
  EXPECT_TRUE(frame->as<wire::Subscribe>().unsubscribe());
  EXPECT_EQ(frame->as<wire::Subscribe>().history(), 0u);
  conn->send(FrameType::kStreams, streams_frame({}, id));
  ASSERT_TRUE(rec.wait_subscribes(1));
  EXPECT_EQ(rec.subscribes()[0].status, SubscribeStatus::kDone);
  conn->send(FrameType::kNotify, notify_frame(3, 1));  // left: no longer read
  expect_nothing_sent(*conn);
}

TEST_F(TopicTest, SubscribeRequestsGoOneAtATimeInCallOrder) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_with_list({});
  ASSERT_TRUE(conn);
  const std::uint64_t join = client->subscribe("news", {"sport"}, rec.subscribe_callback());
  const std::uint64_t leave = client->unsubscribe("news", {"sport"}, rec.subscribe_callback());
  auto frame = conn->read_until(FrameType::kSubscribe);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->as<wire::Subscribe>().id(), join);
  expect_nothing_sent(*conn);  // the leave waits for the join's answer
  conn->send(FrameType::kStreams, streams_frame({stream_info(3, "sport", 1, 0, 0)}, join));
  frame = conn->read_until(FrameType::kSubscribe);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->as<wire::Subscribe>().id(), leave);
  EXPECT_TRUE(frame->as<wire::Subscribe>().unsubscribe());
  conn->send(FrameType::kStreams, streams_frame({}, leave));
  ASSERT_TRUE(rec.wait_subscribes(2));
  EXPECT_EQ(rec.subscribes()[0].id, join);
  EXPECT_EQ(rec.subscribes()[1].id, leave);
}

TEST_F(TopicTest, RefusedSubscribeFailsWithTheServersCodeAndLeavesTheListAlone) {
  auto client = make_client(options({server.endpoint()}));
  client->on_streams(rec.streams_handler());
  client->start();
  auto conn = accept_with_list({stream_info(3, "sport", 1, 0, 0)});
  ASSERT_TRUE(conn);
  const std::uint64_t id = client->subscribe("news", {"weather"}, rec.subscribe_callback());
  ASSERT_TRUE(conn->read_until(FrameType::kSubscribe));
  conn->send(FrameType::kStreams, refusal(id, protocol::ErrorCode::kUnknownApp));
  ASSERT_TRUE(rec.wait_subscribes(1));
  const auto r = rec.subscribes()[0];
  EXPECT_EQ(r.status, SubscribeStatus::kRejected);
  EXPECT_EQ(r.error_code, 34u);
  EXPECT_NE(r.reason.find("unknown_app"), std::string::npos);
  EXPECT_EQ(rec.lists().size(), 1u);                   // the list after HelloOk only
  conn->send(FrameType::kNotify, notify_frame(3, 1));  // still read
  (void)expect_pull(*conn, 3);
}

TEST_F(TopicTest, BusySubscribeIsSentAgainWithTheSameIdOnTheSameConnection) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_with_list({});
  ASSERT_TRUE(conn);
  const std::uint64_t id = client->subscribe("news", {"sport"}, rec.subscribe_callback());
  ASSERT_TRUE(conn->read_until(FrameType::kSubscribe));
  conn->send(FrameType::kStreams, refusal(id, protocol::ErrorCode::kServerBusy));
  auto again = conn->read_until(FrameType::kSubscribe);  // after a backoff delay of <= 10 ms
  ASSERT_TRUE(again);
  EXPECT_EQ(again->as<wire::Subscribe>().id(), id);
  EXPECT_TRUE(rec.subscribes().empty());
  conn->send(FrameType::kStreams, streams_frame({stream_info(3, "sport", 1, 0, 0)}, id));
  ASSERT_TRUE(rec.wait_subscribes(1));
  EXPECT_EQ(rec.subscribes()[0].status, SubscribeStatus::kDone);
}

TEST_F(TopicTest, UnansweredSubscribeIsSentAgainWithTheSameIdAfterAReconnect) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  std::uint64_t id = 0;
  {
    auto conn = accept_with_list({});
    ASSERT_TRUE(conn);
    id = client->subscribe("news", {"sport"}, rec.subscribe_callback());
    ASSERT_TRUE(conn->read_until(FrameType::kSubscribe));
    conn->close();  // applied or not, the client cannot know
  }
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  auto frame = conn->read_until(FrameType::kSubscribe);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->as<wire::Subscribe>().id(), id);
  EXPECT_EQ(frame->as<wire::Subscribe>().topics(0), "sport");
  EXPECT_TRUE(rec.subscribes().empty());
  conn->send(FrameType::kStreams, streams_frame({stream_info(3, "sport", 1, 0, 0)}, id));
  ASSERT_TRUE(rec.wait_subscribes(1));
  EXPECT_EQ(rec.subscribes()[0].status, SubscribeStatus::kDone);
}

TEST_F(TopicTest, MissingStreamsAnswerMeansADeadConnection) {
  auto o = options({server.endpoint()});
  o.response_timeout = milliseconds(200);
  auto client = make_client(o);
  client->start();
  {
    auto conn = accept_with_list({});
    ASSERT_TRUE(conn);
    client->subscribe("news", {"sport"}, rec.subscribe_callback());
    ASSERT_TRUE(conn->read_until(FrameType::kSubscribe));
    EXPECT_TRUE(conn->closed_by_peer());
  }
  EXPECT_TRUE(rec.wait_state([](auto& st) {
    return st.state == ConnectionState::kDisconnected &&
           st.reason.find("Streams answer") != std::string::npos;
  }));
}

TEST_F(TopicTest, InvalidSubscribeFailsAtOnceWithoutAFrame) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_with_list({});
  ASSERT_TRUE(conn);
  client->subscribe("news", {"a b"}, rec.subscribe_callback());
  client->subscribe("News!", {"sport"}, rec.subscribe_callback());
  client->subscribe("news", {}, rec.subscribe_callback());
  client->subscribe("news", std::vector<std::string>(33, "t"), rec.subscribe_callback());
  client->subscribe("news", {std::string(65, 't')}, rec.subscribe_callback());
  client->subscribe("news", {"sport"}, rec.subscribe_callback(), /*history=*/101);
  client->unsubscribe("news", {"sport/*"}, rec.subscribe_callback());
  ASSERT_TRUE(rec.wait_subscribes(7));
  const auto results = rec.subscribes();
  for (const auto& r : results) EXPECT_EQ(r.status, SubscribeStatus::kInvalid) << r.reason;
  EXPECT_NE(results[0].reason.find("topic"), std::string::npos);
  EXPECT_NE(results[1].reason.find("app"), std::string::npos);
  EXPECT_NE(results[5].reason.find("history"), std::string::npos);
  expect_nothing_sent(*conn);
}

TEST_F(TopicTest, SubscribesBeyondTheQueueBoundAreRefusedAtOnce) {
  auto o = options({server.endpoint()});
  o.max_subscribe_requests = 1;
  auto client = make_client(o);  // not started: nothing leaves the queue
  client->subscribe("news", {"a"}, rec.subscribe_callback());
  const std::uint64_t second = client->subscribe("news", {"b"}, rec.subscribe_callback());
  ASSERT_TRUE(rec.wait_subscribes(1));
  EXPECT_EQ(rec.subscribes()[0].id, second);
  EXPECT_EQ(rec.subscribes()[0].status, SubscribeStatus::kQueueFull);
}

TEST_F(TopicTest, StopCompletesEveryQueuedSubscribeAsStoppedBeforeItReturns) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_with_list({});
  ASSERT_TRUE(conn);
  const std::uint64_t sent = client->subscribe("news", {"a"}, rec.subscribe_callback());
  ASSERT_TRUE(conn->read_until(FrameType::kSubscribe));  // in flight, never answered
  const std::uint64_t queued = client->unsubscribe("news", {"a"}, rec.subscribe_callback());
  client->stop();
  const auto results = rec.subscribes();  // no wait: stop() returned after the callbacks
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].id, sent);
  EXPECT_EQ(results[1].id, queued);
  for (const auto& r : results) EXPECT_EQ(r.status, SubscribeStatus::kStopped);
  client->subscribe("news", {"a"}, rec.subscribe_callback());
  ASSERT_TRUE(rec.wait_subscribes(3));
  EXPECT_EQ(rec.subscribes()[2].status, SubscribeStatus::kStopped);
}

TEST_F(TopicTest, SubscribesAndUpstreamsDoNotWaitForEachOther) {
  auto client = make_client(options({server.endpoint()}));
  client->start();
  auto conn = accept_with_list({});
  ASSERT_TRUE(conn);
  const std::uint64_t sub = client->subscribe("news", {"a"}, rec.subscribe_callback());
  const std::uint64_t up = client->send_upstream("news", "{}", false, rec.upstream_callback());
  // Both go out, neither answered yet.
  bool saw_subscribe = false;
  bool saw_upstream = false;
  while (!(saw_subscribe && saw_upstream)) {
    auto f = conn->read_skipping_pings();
    ASSERT_TRUE(f);
    if (f->type == FrameType::kSubscribe) saw_subscribe = f->as<wire::Subscribe>().id() == sub;
    if (f->type == FrameType::kUpstream) saw_upstream = f->as<wire::Upstream>().id() == up;
  }
}

TEST_F(ClientTest, LocalAddressIsTheSourceOfTheConnection) {
  auto o = options({server.endpoint()});
  o.local_address = "127.0.0.5";
  auto client = make_client(o);
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  EXPECT_EQ(conn->remote_endpoint().address(), asio::ip::make_address("127.0.0.5"));
  EXPECT_NE(conn->remote_endpoint().port(), 0);
  conn->handshake();
  EXPECT_TRUE(rec.wait_state([](auto& s) { return s.state == ConnectionState::kConnected; }));
}

TEST_F(ClientTest, LocalAddressBindsTheAddressesOfANameToo) {
  // "localhost" goes through the resolver (and its ::1, if listed, is skipped: another family).
  auto o = options({{"localhost", server.endpoint().port}});
  o.local_address = "127.0.0.6";
  auto client = make_client(o);
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  EXPECT_EQ(conn->remote_endpoint().address(), asio::ip::make_address("127.0.0.6"));
  conn->handshake();
  EXPECT_TRUE(rec.wait_state([](auto& s) { return s.state == ConnectionState::kConnected; }));
}

TEST_F(ClientTest, LocalAddressTheHostDoesNotHaveFailsTheAttemptNamingIt) {
  auto o = options({server.endpoint()});
  o.local_address = "192.0.2.1";  // TEST-NET-1 (RFC 5737): no host has it
  auto client = make_client(o);
  client->start();
  auto s = rec.wait_state([](auto& st) { return st.state == ConnectionState::kDisconnected; });
  ASSERT_TRUE(s);
  EXPECT_NE(s->reason.find("bind to 192.0.2.1: "), std::string::npos) << s->reason;
  EXPECT_FALSE(server.accept(milliseconds(100)));
}

TEST_F(ClientTest, LocalAddressOfAnotherFamilyThanTheEndpointFailsTheAttemptNamingBoth) {
  auto o = options({server.endpoint()});
  o.local_address = "::1";
  auto client = make_client(o);
  client->start();
  auto s = rec.wait_state([](auto& st) { return st.state == ConnectionState::kDisconnected; });
  ASSERT_TRUE(s);
  EXPECT_NE(s->reason.find("bind to ::1: not the address family of 127.0.0.1"), std::string::npos)
      << s->reason;
}

// The client against a TLS FakeServer, with certificates made on the fly for "herald.test".
class TlsClientTest : public ClientTest {
 protected:
  TlsClientTest()
      : certs_(tls::testing::make_test_certificates(dir_.path())),
        tls_server_(tls::make_server_context({certs_.cert_file.string(), certs_.key_file.string(),
                                              "the ticket secret of this test", 3600})) {}

  ClientOptions tls_options(std::vector<Endpoint> endpoints) {
    auto o = options(std::move(endpoints));
    o.tls.enabled = true;
    o.tls.ca_file = certs_.ca_file.string();
    o.tls.server_name = certs_.server_name;
    return o;
  }

  herald::testing::TestDir dir_;
  tls::testing::TestCertificates certs_;
  FakeServer tls_server_;
};

TEST_F(TlsClientTest, ConnectsOverTlsAndReceivesMessages) {
  auto client = make_client(tls_options({tls_server_.endpoint()}));
  client->start();
  auto conn = tls_server_.accept();
  ASSERT_TRUE(conn);
  // The Hello arrives through the server's TLS channel: it was sent once TLS was up, encrypted.
  const wire::Hello hello = conn->handshake();
  EXPECT_TRUE(conn->tls_established());
  EXPECT_FALSE(conn->tls_resumed());
  EXPECT_EQ(hello.device_id(), "dev-1");
  EXPECT_EQ(hello.token(), "secret");
  ASSERT_TRUE(conn->read_until(FrameType::kPull));
  conn->send(FrameType::kMessages, messages(0, 1, 1, 2));
  auto ack = conn->read_until(FrameType::kAck);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->as<wire::Ack>().seq(), 2u);
  ASSERT_TRUE(rec.wait_messages(2));
  EXPECT_EQ(rec.messages()[1].data, "{\"seq\":2}");
  auto connected = rec.wait_state([](auto& s) { return s.state == ConnectionState::kConnected; });
  ASSERT_TRUE(connected);
  EXPECT_EQ(connected->reason, "connected to 127.0.0.1:" +
                                   std::to_string(tls_server_.endpoint().port) + " over TLSv1.3");
}

TEST_F(TlsClientTest, ASecondConnectionResumesTheSessionOfTheFirst) {
  auto client = make_client(tls_options({tls_server_.endpoint()}));
  client->start();
  {
    auto conn = tls_server_.accept();
    ASSERT_TRUE(conn);
    conn->handshake();
    // The pull comes after HelloOk, which came after the ticket: the client holds the ticket.
    ASSERT_TRUE(conn->read_until(FrameType::kPull));
    EXPECT_FALSE(conn->tls_resumed());
    conn->close();  // without close_notify, as most mobile connections end
  }
  auto conn = tls_server_.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  EXPECT_TRUE(conn->tls_resumed());
  EXPECT_TRUE(rec.wait_state([](auto& s) {
    return s.state == ConnectionState::kConnected &&
           s.reason.find("(session resumed)") != std::string::npos;
  }));
}

TEST_F(TlsClientTest, ACertificateForAnotherNameFailsTheAttemptAndTheClientRetries) {
  auto o = tls_options({tls_server_.endpoint()});
  o.tls.server_name = "other.test";  // the server's certificate names herald.test
  auto client = make_client(o);
  client->start();
  {
    auto conn = tls_server_.accept();
    ASSERT_TRUE(conn);
    EXPECT_FALSE(conn->read());  // the client refuses the certificate: no Hello, ever
  }
  auto s = rec.wait_state([](auto& st) { return st.state == ConnectionState::kDisconnected; });
  ASSERT_TRUE(s);
  EXPECT_EQ(s->reason.find("tls: "), 0u) << s->reason;
  EXPECT_NE(s->reason.find("certificate: hostname mismatch"), std::string::npos) << s->reason;
  EXPECT_TRUE(tls_server_.accept());  // it tries again, after its backoff
}

TEST_F(TlsClientTest, RacingPrefersTheTlsEndpointOverOneThatSpeaksOnlyPlaintext) {
  auto o = tls_options({server.endpoint(), tls_server_.endpoint()});
  o.race_stagger = std::chrono::hours(1);  // only a failure can start the second attempt
  auto client = make_client(o);
  client->start();
  {
    auto plain = server.accept();
    ASSERT_TRUE(plain);
    ASSERT_TRUE(readable(plain->native_handle(), kWait));  // the ClientHello
    // What a plaintext node answers a ClientHello with: an Error in the clear, then the close.
    // The attempt fails and the next one starts at once.
    wire::Error error;
    error.set_code(static_cast<std::uint32_t>(protocol::ErrorCode::kMalformedFrame));
    plain->send(FrameType::kError, error);
    plain->close();
  }
  auto conn = tls_server_.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  auto connected = rec.wait_state([](auto& s) { return s.state == ConnectionState::kConnected; });
  ASSERT_TRUE(connected);
  EXPECT_EQ(connected->reason.find("connected to 127.0.0.1:" +
                                   std::to_string(tls_server_.endpoint().port)),
            0u)
      << connected->reason;
  const auto states = rec.states();
  EXPECT_EQ(std::count_if(states.begin(), states.end(),
                          [](auto& st) { return st.state == ConnectionState::kDisconnected; }),
            0);
}

TEST_F(TlsClientTest, ATlsHandshakeNotCompleteWithinTheResponseTimeoutFailsTheAttempt) {
  auto o = tls_options({server.endpoint()});  // a server that takes the connection, then nothing
  o.response_timeout = milliseconds(200);
  o.race_width = 1;
  auto client = make_client(o);
  client->start();
  auto conn = server.accept();
  ASSERT_TRUE(conn);
  EXPECT_TRUE(conn->closed_by_peer());
  auto s = rec.wait_state([](auto& st) { return st.state == ConnectionState::kDisconnected; });
  ASSERT_TRUE(s);
  EXPECT_EQ(s->reason, "tls handshake not complete within 200 ms");
}

TEST_F(TlsClientTest, WithoutVerificationAServerOfAnUnknownCaIsAccepted) {
  auto o = tls_options({tls_server_.endpoint()});
  o.tls.verify_peer = false;
  o.tls.ca_file.clear();
  o.tls.server_name.clear();
  auto client = make_client(o);
  client->start();
  auto conn = tls_server_.accept();
  ASSERT_TRUE(conn);
  conn->handshake();
  EXPECT_TRUE(rec.wait_state([](auto& s) { return s.state == ConnectionState::kConnected; }));
}

TEST(ClientOptions, TlsWithoutAServerNameOrWithACaFileThatDoesNotLoadIsRejected) {
  EventLoop loop;
  ClientOptions o;
  o.endpoints = {{"127.0.0.1", 1}};
  o.device_id = "d";
  o.tls.enabled = true;
  try {
    Client client(loop, o, make_memory_cursor_store());
    ADD_FAILURE() << "TLS without a server name was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("tls.server_name"), std::string::npos) << e.what();
  }
  o.tls.server_name = "herald.test";
  o.tls.ca_file = "/nonexistent/herald-ca.pem";
  try {
    Client client(loop, o, make_memory_cursor_store());
    ADD_FAILURE() << "a CA file that does not exist was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/herald-ca.pem"), std::string::npos)
        << e.what();
  }
  o.tls.verify_peer = false;  // tests only: nothing to verify against
  o.tls.server_name.clear();
  o.tls.ca_file.clear();
  EXPECT_NO_THROW(Client(loop, o, make_memory_cursor_store()));
}

TEST(ClientOptions, LocalAddressThatIsNotAnIpAddressIsRejectedNamingIt) {
  EventLoop loop;
  ClientOptions o;
  o.endpoints = {{"127.0.0.1", 1}};
  o.device_id = "d";
  for (const char* bad : {"not-an-address", "127.0.0.300", "localhost", "127.0.0.1:80"}) {
    o.local_address = bad;
    try {
      Client client(loop, o, make_memory_cursor_store());
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("local_address \"") + bad + "\""),
                std::string::npos)
          << e.what();
    }
  }
  for (const char* good : {"", "127.0.0.5", "::1"}) {
    o.local_address = good;
    EXPECT_NO_THROW(Client(loop, o, make_memory_cursor_store())) << good;
  }
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
