// The Client against a scripted server on loopback (port 0): the connection code (handshake,
// pulls, acks, heartbeats, reconnects, stop) without the real access layer. The test thread plays
// the server with blocking sockets; every wait has a deadline, none stands in for synchronisation.
#include <poll.h>

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

  // Accepts the client's connection, handshakes and answers the inbox pull with nothing.
  std::optional<ServerConnection> accept_and_settle() {
    auto conn = server.accept();
    if (!conn) return conn;
    conn->handshake();
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
