#include "peers.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/asio/detail/socket_option.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/result.hpp>

#include "captured_run.h"
#include "herald_server.h"
#include "peer_codecs.h"
#include "process.h"

// Linux 4.2: bind() leaves the port to connect(), so that connections from one source address
// share ports as long as their 4-tuples differ. glibc 2.36 defines it; older headers may not.
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace herald::bench {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

constexpr std::array kPeerKinds = {PeerKind::kMqttQos0, PeerKind::kMqttQos1, PeerKind::kNats,
                                   PeerKind::kRedis};

bool is_mqtt(PeerKind kind) { return kind == PeerKind::kMqttQos0 || kind == PeerKind::kMqttQos1; }
std::uint8_t mqtt_qos(PeerKind kind) { return kind == PeerKind::kMqttQos1 ? 1 : 0; }

tcp::endpoint loopback(std::uint16_t port) {
  return {asio::ip::make_address_v4("127.0.0.1"), port};
}

error_code error_of(Parse parse) {
  return parse == Parse::kTooLarge ? PeerError::kFrameTooLarge : PeerError::kBrokenFrame;
}

}  // namespace

std::string_view name_of(PeerKind kind) {
  switch (kind) {
    case PeerKind::kMqttQos0:
      return "mosquitto-qos0";
    case PeerKind::kMqttQos1:
      return "mosquitto-qos1";
    case PeerKind::kNats:
      return "nats";
    case PeerKind::kRedis:
      return "redis";
  }
  return "unknown";
}

bool parse_peer(std::string_view name, PeerKind& kind) {
  for (PeerKind candidate : kPeerKinds) {
    if (name_of(candidate) == name) {
      kind = candidate;
      return true;
    }
  }
  return false;
}

std::string unicast_topic(PeerKind kind, int subscriber) {
  const std::string index = std::to_string(subscriber);
  switch (kind) {
    case PeerKind::kMqttQos0:
    case PeerKind::kMqttQos1:
      return "d/" + index;
    case PeerKind::kNats:
      return "d." + index;
    case PeerKind::kRedis:
      return "d:" + index;
  }
  return index;
}

std::string broadcast_topic(PeerKind /*kind*/) { return "all"; }

// ---------------------------------------------------------------------------------------------
// PeerServer

namespace {

constexpr auto kServerStartTimeout = 10s;
constexpr auto kServerStopGrace = 5s;

// How to start one peer, and how to ask it for its version.
struct Launch {
  std::string name;  // for the version string and messages
  std::vector<std::string> argv;
  std::string version_flag;
};

void write_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

Launch mosquitto_launch(const std::filesystem::path& dir, std::uint16_t port) {
  const std::filesystem::path config = dir / "mosquitto.conf";
  write_file(config,
             "listener " + std::to_string(port) + " 127.0.0.1\n" +
                 "allow_anonymous true\n"
                 "persistence false\n"
                 "max_connections -1\n"
                 // A QoS 1 burst to many subscribers flows 100 unacknowledged messages
                 // per client and queues the rest; the queue is large enough that a
                 // burst is never dropped (the default, 1000, would drop).
                 "max_inflight_messages 100\n"
                 "max_queued_messages 1000000\n"
                 // NATS and Redis set TCP_NODELAY; without it, Nagle's algorithm and
                 // delayed ACKs would add up to 40 ms to mosquitto's latency.
                 "set_tcp_nodelay true\n"
                 // Errors and warnings only: a log line per connecting client would cost the run.
                 "log_dest stdout\n"
                 "log_type error\n"
                 "log_type warning\n"
                 "connection_messages false\n");
  return {"mosquitto", {"/usr/sbin/mosquitto", "-c", config.string()}, "-h"};
}

Launch nats_launch(const std::filesystem::path& dir, std::uint16_t port) {
  const std::filesystem::path config = dir / "nats.conf";
  // A subscriber may fall 256 MB behind during a burst before the server cuts it off as a slow
  // consumer, and a write may take 10 s.
  write_file(config,
             "max_pending: 268435456\n"
             "write_deadline: \"10s\"\n");
  return {"nats-server",
          {"/usr/sbin/nats-server", "-c", config.string(), "-a", "127.0.0.1", "-p",
           std::to_string(port), "-l", (dir / "server.log").string()},
          "--version"};
}

Launch redis_launch(const std::filesystem::path& dir, std::uint16_t port) {
  return {"redis-server",
          {"/usr/bin/redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
           "--protected-mode", "no", "--save", "", "--appendonly", "no", "--maxclients", "19000",
           // Unlimited pub/sub output buffers: a burst must not disconnect subscribers.
           "--client-output-buffer-limit", "pubsub 0 0 0",
           // The default backlog, 511, drops SYNs when thousands of subscribers connect at once
           // (retried after 1 s); the kernel caps this at net.core.somaxconn.
           "--tcp-backlog", "4096", "--daemonize", "no", "--dir", dir.string(), "--logfile",
           (dir / "server.log").string()},
          "--version"};
}

Launch launch_for(PeerKind kind, const std::filesystem::path& dir, std::uint16_t port) {
  switch (kind) {
    case PeerKind::kMqttQos0:
    case PeerKind::kMqttQos1:
      return mosquitto_launch(dir, port);
    case PeerKind::kNats:
      return nats_launch(dir, port);
    case PeerKind::kRedis:
      return redis_launch(dir, port);
  }
  throw std::invalid_argument("unknown peer kind");
}

// "<name> <x.y.z>", the version number taken from the first line the version flag prints
// ("mosquitto version 2.0.11", "nats-server: v2.9.10", "Redis server v=7.0.15 sha=...").
std::string version_of(const Launch& launch) {
  const testing::CapturedRun run =
      testing::run_captured({launch.argv.front(), launch.version_flag}, {}, 5s);
  const std::string text = run.out + run.err;
  const std::string_view first_line = std::string_view(text).substr(0, text.find('\n'));
  for (std::size_t i = 0; i + 1 < first_line.size(); ++i) {
    const bool starts_number =
        std::isdigit(static_cast<unsigned char>(first_line[i])) &&
        (i == 0 || !std::isalnum(static_cast<unsigned char>(first_line[i - 1])) ||
         first_line[i - 1] == 'v');
    if (!starts_number) continue;
    const std::size_t end = first_line.find_first_not_of("0123456789.", i);
    const std::string_view number = first_line.substr(i, end - i);
    if (number.find('.') != std::string_view::npos) return launch.name + " " + std::string(number);
  }
  return launch.name + " (version unknown)";
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool accepts_connections(std::uint16_t port) {
  asio::io_context io;
  tcp::socket socket(io);
  error_code ec;
  socket.connect(loopback(port), ec);
  return !ec;
}

}  // namespace

struct PeerServer::Impl {
  ~Impl() {
    if (process) process->terminate(kServerStopGrace);
    process.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  // What the server wrote, for an error message.
  std::string logs() const { return read_file(dir / "stdout.log") + read_file(dir / "server.log"); }

  std::filesystem::path dir;
  std::uint16_t port = 0;
  std::string version;
  std::optional<testing::Process> process;
};

PeerServer::PeerServer(PeerKind kind) : impl_(std::make_unique<Impl>()) {
  impl_->dir = testing::make_temp_dir("herald-peer");
  impl_->port = testing::free_port();
  const Launch launch = launch_for(kind, impl_->dir, impl_->port);
  impl_->version = version_of(launch);
  impl_->process.emplace(launch.argv, impl_->dir / "stdout.log");
  // The server has no ready signal of its own: poll until it accepts a connection.
  const auto deadline = std::chrono::steady_clock::now() + kServerStartTimeout;
  for (;;) {
    if (impl_->process->exited()) {
      throw std::runtime_error(launch.name + " exited during start-up:\n" + impl_->logs());
    }
    if (accepts_connections(impl_->port)) return;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(launch.name + " did not listen on port " +
                               std::to_string(impl_->port) + " within 10 s:\n" + impl_->logs());
    }
    std::this_thread::sleep_for(20ms);
  }
}

PeerServer::~PeerServer() = default;

std::uint16_t PeerServer::port() const { return impl_->port; }

pid_t PeerServer::pid() const { return impl_->process->pid(); }

std::int64_t PeerServer::rss_kib() const { return testing::rss_kib(pid()); }

const std::string& PeerServer::version() const { return impl_->version; }

// ---------------------------------------------------------------------------------------------
// PeerSubscriber

namespace {

// A subscriber gets this long to connect and have both subscriptions confirmed.
constexpr auto kReadyTimeout = 30s;
// close() waits this long for the goodbye to be written and the peer to hang up.
constexpr auto kCloseGrace = 2s;
// The most read at once. A subscriber's read buffer holds at most one read and one partial frame,
// and is released whenever it is empty, so idle subscribers hold none.
constexpr std::size_t kMaxReadBytes = 64 * 1024;

// What a subscriber's protocol driver reports to the connection it runs on.
class SubscriberEvents {
 public:
  virtual void on_ready() = 0;
  virtual void on_message(std::string_view payload) = 0;
  // True once a handler closed the subscriber: the driver stops and answers nothing more.
  [[nodiscard]] virtual bool stopped() const = 0;

 protected:
  ~SubscriberEvents() = default;
};

// The protocol side of one subscriber connection, without the socket: one per connection.
class SubscriberProtocol {
 public:
  virtual ~SubscriberProtocol() = default;
  // Appends what to send once the connection is up.
  virtual void append_greeting(std::string& out) = 0;
  // Handles the complete frames at the front of `in`, appending answers to `out`. Returns the
  // bytes consumed (an incomplete frame stays unconsumed) or the error that ends the connection.
  virtual boost::system::result<std::size_t> consume(std::string_view in, std::string& out,
                                                     SubscriberEvents& events) = 0;
  // Appends what to send to leave politely.
  virtual void append_goodbye(std::string& /*out*/) {}
};

class MqttSubscriberProtocol final : public SubscriberProtocol {
 public:
  explicit MqttSubscriberProtocol(const SubscriberOptions& options)
      : client_id_("sub-" + std::to_string(options.index)),
        unicast_topic_(unicast_topic(options.kind, options.index)),
        broadcast_topic_(broadcast_topic(options.kind)),
        qos_(mqtt_qos(options.kind)),
        clean_session_(!options.persistent_session) {}

  void append_greeting(std::string& out) override {
    // Keepalive 0: the broker never drops us for silence, so idle subscribers send nothing.
    mqtt::append_connect(out, client_id_, clean_session_, 0);
  }

  boost::system::result<std::size_t> consume(std::string_view in, std::string& out,
                                             SubscriberEvents& events) override {
    std::size_t used = 0;
    while (!events.stopped()) {
      mqtt::Packet packet;
      const Parse parse = mqtt::next_packet(in.substr(used), kMaxFrameBytes, packet);
      if (parse == Parse::kNeedMore) break;
      if (parse != Parse::kComplete) return error_of(parse);
      used += packet.size;
      if (const error_code ec = handle(packet, out, events)) return ec;
    }
    return used;
  }

  void append_goodbye(std::string& out) override { mqtt::append_disconnect(out); }

 private:
  static constexpr std::uint16_t kSubscribeId = 1;

  error_code handle(const mqtt::Packet& packet, std::string& out, SubscriberEvents& events) {
    switch (packet.type) {
      case mqtt::kConnack:
        // Acknowledge flags, then the return code: 0 is accepted.
        if (packet.body.size() != 2) return PeerError::kBrokenFrame;
        if (packet.body[1] != 0) return PeerError::kConnectRefused;
        mqtt::append_subscribe(out, kSubscribeId, {unicast_topic_, broadcast_topic_}, qos_);
        return {};
      case mqtt::kSuback:
        // The packet id, then the QoS granted to each topic, 0x80 for a refusal.
        if (packet.body.size() != 4) return PeerError::kBrokenFrame;
        if (packet.body.find('\x80', 2) != std::string_view::npos) {
          return PeerError::kSubscribeRefused;
        }
        events.on_ready();
        return {};
      case mqtt::kPublish: {
        mqtt::Publish publish;
        if (!mqtt::parse_publish(packet, publish)) return PeerError::kBrokenFrame;
        events.on_message(publish.payload);
        // Unacknowledged when a handler closed us: the broker then redelivers it (at least once).
        if (publish.qos == 1 && !events.stopped()) mqtt::append_puback(out, publish.packet_id);
        return {};
      }
      case mqtt::kPingresp:
        return {};
      default:
        return PeerError::kBrokenFrame;
    }
  }

  std::string client_id_;
  std::string unicast_topic_;
  std::string broadcast_topic_;
  std::uint8_t qos_;
  bool clean_session_;
};

class NatsSubscriberProtocol final : public SubscriberProtocol {
 public:
  explicit NatsSubscriberProtocol(const SubscriberOptions& options)
      : name_("sub-" + std::to_string(options.index)),
        unicast_topic_(unicast_topic(options.kind, options.index)),
        broadcast_topic_(broadcast_topic(options.kind)) {}

  // The server speaks first (INFO); the greeting answers it.
  void append_greeting(std::string& /*out*/) override {}

  boost::system::result<std::size_t> consume(std::string_view in, std::string& out,
                                             SubscriberEvents& events) override {
    std::size_t used = 0;
    while (!events.stopped()) {
      //   MSG <subject> <sid> [reply-to] <#bytes>\r\n<payload>\r\n    or    <line>\r\n
      const std::string_view rest = in.substr(used);
      std::string_view line;
      const Parse parse = nats::next_line(rest, line);
      if (parse == Parse::kNeedMore) break;
      if (parse != Parse::kComplete) return error_of(parse);
      const std::size_t line_bytes = line.size() + 2;
      std::size_t payload_bytes = 0;
      if (nats::parse_msg_line(line, payload_bytes)) {
        if (payload_bytes > kMaxFrameBytes) return PeerError::kFrameTooLarge;
        if (rest.size() < line_bytes + payload_bytes + 2) break;
        if (rest.substr(line_bytes + payload_bytes, 2) != "\r\n") return PeerError::kBrokenFrame;
        used += line_bytes + payload_bytes + 2;
        events.on_message(rest.substr(line_bytes, payload_bytes));
        continue;
      }
      used += line_bytes;
      if (const error_code ec = handle(line, out, events)) return ec;
    }
    return used;
  }

 private:
  error_code handle(std::string_view line, std::string& out, SubscriberEvents& events) {
    if (line == "PING") {
      out.append("PONG\r\n");
    } else if (line == "PONG") {
      // The PONG answering the greeting's PING: both SUBs before it are in place.
      if (!ready_) {
        ready_ = true;
        events.on_ready();
      }
    } else if (line.starts_with("INFO ")) {
      // Later INFOs announce cluster changes; only the first asks for the greeting.
      if (!greeted_) {
        greeted_ = true;
        out.append(R"(CONNECT {"verbose":false,"pedantic":false,"name":")" + name_ + "\"}\r\n");
        out.append("SUB " + unicast_topic_ + " 1\r\n");
        out.append("SUB " + broadcast_topic_ + " 2\r\n");
        out.append("PING\r\n");
      }
    } else if (line.starts_with("-ERR")) {
      return PeerError::kErrorReply;
    } else if (line != "+OK") {
      return PeerError::kBrokenFrame;
    }
    return {};
  }

  std::string name_;
  std::string unicast_topic_;
  std::string broadcast_topic_;
  bool greeted_ = false;
  bool ready_ = false;
};

struct RedisReaderDeleter {
  void operator()(redisReader* reader) const { redisReaderFree(reader); }
};
struct RedisReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisReaderPtr = std::unique_ptr<redisReader, RedisReaderDeleter>;
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

RedisReaderPtr make_redis_reader() {
  RedisReaderPtr reader(redisReaderCreate());
  if (!reader) throw std::bad_alloc();
  return reader;
}

std::string_view text_of(const redisReply& reply) { return {reply.str, reply.len}; }

// Feeds `in` to hiredis's reader, which keeps what it cannot parse yet. Fails when that exceeds
// a frame: a broken length must not make the reader buffer without bound.
error_code feed(redisReader& reader, std::string_view in) {
  if (redisReaderFeed(&reader, in.data(), in.size()) != REDIS_OK) return PeerError::kBrokenFrame;
  if (reader.len - reader.pos > kMaxFrameBytes) return PeerError::kFrameTooLarge;
  return {};
}

// The next complete reply the reader holds: null when it needs more bytes, false when the bytes
// are not RESP.
bool next_reply(redisReader& reader, RedisReplyPtr& reply) {
  void* raw = nullptr;
  if (redisReaderGetReply(&reader, &raw) != REDIS_OK) return false;
  reply.reset(static_cast<redisReply*>(raw));
  return true;
}

class RedisSubscriberProtocol final : public SubscriberProtocol {
 public:
  explicit RedisSubscriberProtocol(const SubscriberOptions& options)
      : unicast_topic_(unicast_topic(options.kind, options.index)),
        broadcast_topic_(broadcast_topic(options.kind)),
        reader_(make_redis_reader()) {}

  void append_greeting(std::string& out) override {
    resp::append_command(out, {"SUBSCRIBE", unicast_topic_, broadcast_topic_});
  }

  boost::system::result<std::size_t> consume(std::string_view in, std::string& /*out*/,
                                             SubscriberEvents& events) override {
    if (const error_code ec = feed(*reader_, in)) return ec;
    RedisReplyPtr reply;
    while (!events.stopped()) {
      if (!next_reply(*reader_, reply)) return PeerError::kBrokenFrame;
      if (!reply) break;
      if (const error_code ec = handle(*reply, events)) return ec;
    }
    return in.size();
  }

 private:
  // Pushed replies: *3 subscribe <channel> <count>, or *3 message <channel> <payload>.
  error_code handle(const redisReply& reply, SubscriberEvents& events) {
    if (reply.type == REDIS_REPLY_ERROR) return PeerError::kErrorReply;
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 3) return PeerError::kBrokenFrame;
    const redisReply& kind = *reply.element[0];
    const redisReply& last = *reply.element[2];
    if (kind.type != REDIS_REPLY_STRING) return PeerError::kBrokenFrame;
    if (text_of(kind) == "message" && last.type == REDIS_REPLY_STRING) {
      events.on_message(text_of(last));
    } else if (text_of(kind) == "subscribe") {
      if (++subscribed_ == 2) events.on_ready();
    } else {
      return PeerError::kBrokenFrame;
    }
    return {};
  }

  std::string unicast_topic_;
  std::string broadcast_topic_;
  RedisReaderPtr reader_;
  int subscribed_ = 0;
};

std::unique_ptr<SubscriberProtocol> make_subscriber_protocol(const SubscriberOptions& options) {
  switch (options.kind) {
    case PeerKind::kMqttQos0:
    case PeerKind::kMqttQos1:
      return std::make_unique<MqttSubscriberProtocol>(options);
    case PeerKind::kNats:
      return std::make_unique<NatsSubscriberProtocol>(options);
    case PeerKind::kRedis:
      return std::make_unique<RedisSubscriberProtocol>(options);
  }
  throw std::invalid_argument("unknown peer kind");
}

using BindAddressNoPort = asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>;

// One connection of a subscriber, from connect to close. Its pending operations hold it alive
// (shared_from_this), so it may outlive the PeerSubscriber that started it; the subscriber's
// handlers run only until close(), or until the one on_ready or on_lost that ends it.
//
// States: kConnecting -> kSubscribing (greeting sent) -> kReady (subscriptions confirmed); any
// -> kClosing (close(): goodbye being sent, the peer's bytes drained until it hangs up) ->
// kClosed (socket closed).
class SubscriberSession final : public std::enable_shared_from_this<SubscriberSession>,
                                private SubscriberEvents {
 public:
  SubscriberSession(asio::io_context& io, SubscriberOptions options,
                    PeerSubscriber::MessageHandler on_message, PeerSubscriber::LostHandler on_lost,
                    PeerSubscriber::ReadyHandler on_ready)
      : options_(std::move(options)),
        protocol_(make_subscriber_protocol(options_)),
        socket_(io),
        timer_(io),
        on_message_(std::move(on_message)),
        on_lost_(std::move(on_lost)),
        on_ready_(std::move(on_ready)) {}

  void start() {
    timer_.expires_after(kReadyTimeout);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->on_timer();
    });
    error_code ec = open_socket();
    if (ec) {
      // on_ready never runs inside start().
      asio::post(socket_.get_executor(), [self = shared_from_this(), ec] { self->fail(ec); });
      return;
    }
    socket_.async_connect(
        loopback(options_.port),
        [self = shared_from_this()](error_code connect_ec) { self->on_connected(connect_ec); });
  }

  void close() {
    switch (state_) {
      case State::kConnecting:
        shut();
        return;
      case State::kSubscribing:
      case State::kReady:
        break;
      case State::kClosing:
      case State::kClosed:
        return;
    }
    state_ = State::kClosing;
    protocol_->append_goodbye(out_);
    if (out_.empty() && !send_active_) {
      shut();
      return;
    }
    timer_.expires_after(kCloseGrace);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->on_timer();
    });
    send();
  }

 private:
  enum class State { kConnecting, kSubscribing, kReady, kClosing, kClosed };

  error_code open_socket() {
    error_code ec;
    socket_.open(tcp::v4(), ec);
    // Our writes are coalesced already; let them go out at once.
    if (!ec) socket_.set_option(tcp::no_delay(true), ec);
    // Reads are attempted only when the socket is readable; never block the io thread.
    if (!ec) socket_.non_blocking(true, ec);
    if (!ec && !options_.source_address.empty()) {
      const auto address = asio::ip::make_address(options_.source_address, ec);
      if (!ec) socket_.set_option(BindAddressNoPort(true), ec);
      if (!ec) socket_.bind(tcp::endpoint(address, 0), ec);
    }
    return ec;
  }

  void on_timer() {
    if (state_ == State::kClosing) {
      shut();
    } else if (state_ == State::kConnecting || state_ == State::kSubscribing) {
      fail(PeerError::kTimedOut);
    }
  }

  void on_connected(error_code ec) {
    if (state_ != State::kConnecting) return;
    if (ec) {
      fail(ec);
      return;
    }
    state_ = State::kSubscribing;
    protocol_->append_greeting(out_);
    send();
    wait_readable();
  }

  // Waiting for readability rather than reading into a buffer keeps idle subscribers free of
  // read buffers.
  void wait_readable() {
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](error_code ec) { self->on_readable(ec); });
  }

  void on_readable(error_code ec) {
    if (state_ == State::kClosed) return;
    if (state_ == State::kClosing) {
      drain(ec);
      return;
    }
    if (ec) {
      fail(ec);
      return;
    }
    // Nothing available with the socket readable: EOF or an error, which read_some reports.
    const std::size_t want = std::clamp<std::size_t>(socket_.available(ec), 1, kMaxReadBytes);
    const std::size_t old_size = in_.size();
    in_.resize(old_size + want);
    const std::size_t n = socket_.read_some(asio::buffer(in_.data() + old_size, want), ec);
    in_.resize(old_size + n);
    if (ec == asio::error::would_block) {
      wait_readable();
      return;
    }
    if (ec) {
      fail(ec);
      return;
    }
    const boost::system::result<std::size_t> used = protocol_->consume(in_, out_, *this);
    if (stopped()) {
      // A handler closed the subscriber: drain until the peer hangs up after the goodbye.
      if (state_ == State::kClosing) wait_readable();
      return;
    }
    if (!used) {
      fail(used.error());
      return;
    }
    in_.erase(0, *used);
    if (in_.empty()) std::string().swap(in_);
    send();
    wait_readable();
  }

  // Discards what the peer still sends after our goodbye, until it hangs up.
  void drain(error_code ec) {
    std::array<char, 4096> discard;
    while (!ec) socket_.read_some(asio::buffer(discard), ec);
    if (ec == asio::error::would_block) {
      wait_readable();
    } else {
      shut();
    }
  }

  // One write at a time, of everything queued when it starts.
  void send() {
    if (send_active_ || out_.empty() || state_ == State::kClosed) return;
    sending_.swap(out_);
    send_active_ = true;
    asio::async_write(
        socket_, asio::buffer(sending_),
        [self = shared_from_this()](error_code ec, std::size_t /*bytes*/) { self->on_sent(ec); });
  }

  void on_sent(error_code ec) {
    send_active_ = false;
    sending_.clear();
    if (state_ == State::kClosed) return;
    if (ec) {
      fail(ec);
      return;
    }
    if (state_ == State::kClosing && out_.empty()) {
      // Goodbye sent: a FIN after it, then drain until the peer hangs up. Closing at once could
      // reset the connection (unread bytes) and lose the goodbye.
      socket_.shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    send();
  }

  // Ends the connection with `ec`, reported to on_ready or on_lost unless close() came first.
  void fail(error_code ec) {
    const State was = state_;
    if (was == State::kClosed) return;
    shut();
    if (was == State::kClosing) return;
    auto handler = was == State::kReady ? std::move(on_lost_) : std::move(on_ready_);
    if (handler) handler(ec);
  }

  void shut() {
    state_ = State::kClosed;
    error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

  void on_ready() override {
    if (state_ != State::kSubscribing) return;
    state_ = State::kReady;
    timer_.cancel();
    auto handler = std::move(on_ready_);
    if (handler) handler(error_code());
  }

  // A persistent MQTT session may deliver what it queued before our SUBACK: delivered too.
  void on_message(std::string_view payload) override {
    if (!stopped() && on_message_) on_message_(payload);
  }

  bool stopped() const override { return state_ == State::kClosing || state_ == State::kClosed; }

  const SubscriberOptions options_;
  const std::unique_ptr<SubscriberProtocol> protocol_;
  tcp::socket socket_;
  asio::steady_timer timer_;  // the ready deadline, then the close grace
  State state_ = State::kConnecting;
  std::string in_;       // received, not yet consumed: at most one partial frame after consume
  std::string out_;      // answers queued behind the write in progress
  std::string sending_;  // the write in progress
  bool send_active_ = false;
  PeerSubscriber::MessageHandler on_message_;
  PeerSubscriber::LostHandler on_lost_;
  PeerSubscriber::ReadyHandler on_ready_;
};

// A PeerSubscriber is a series of sessions: start() begins one, close() ends it.
class SessionSubscriber final : public PeerSubscriber {
 public:
  SessionSubscriber(asio::io_context& io, SubscriberOptions options, MessageHandler on_message,
                    LostHandler on_lost)
      : io_(io),
        options_(std::move(options)),
        on_message_(std::move(on_message)),
        on_lost_(std::move(on_lost)) {}
  ~SessionSubscriber() override { close(); }

  void start(ReadyHandler on_ready) override {
    close();
    session_ = std::make_shared<SubscriberSession>(io_, options_, on_message_, on_lost_,
                                                   std::move(on_ready));
    session_->start();
  }

  void close() override {
    if (!session_) return;
    session_->close();
    session_.reset();
  }

 private:
  asio::io_context& io_;
  const SubscriberOptions options_;
  const MessageHandler on_message_;
  const LostHandler on_lost_;
  std::shared_ptr<SubscriberSession> session_;
};

}  // namespace

std::unique_ptr<PeerSubscriber> PeerSubscriber::make(asio::io_context& io,
                                                     SubscriberOptions options,
                                                     MessageHandler on_message,
                                                     LostHandler on_lost) {
  return std::make_unique<SessionSubscriber>(io, std::move(options), std::move(on_message),
                                             std::move(on_lost));
}

// ---------------------------------------------------------------------------------------------
// PeerPublisher

namespace {

constexpr auto kPublisherConnectTimeout = 10s;
// publish() blocks while this many messages are unanswered.
constexpr std::int64_t kMaxUnanswered = 10'000;

// What a publisher's protocol driver reports. Called with the publisher's mutex held.
class PublisherEvents {
 public:
  // The peer accepted the greeting.
  virtual void on_ready() = 0;
  // The answer to the oldest unanswered message (Redis) or to a given one (MQTT PUBACK).
  virtual void on_answer(bool ok) = 0;
  // The answer to the oldest round trip (NATS PONG, MQTT PINGRESP).
  virtual void on_pong() = 0;

 protected:
  ~PublisherEvents() = default;
};

// The protocol side of the publisher connection, without the socket. Called only with the
// publisher's mutex held.
class PublisherProtocol {
 public:
  virtual ~PublisherProtocol() = default;
  // Appends what to send once connected; the peer's acceptance comes as on_ready.
  virtual void append_greeting(std::string& out) = 0;
  virtual void append_publish(std::string& out, std::string_view topic,
                              std::string_view payload) = 0;
  // Whether a message has no answer of its own, so that a round trip after it (append_ping)
  // confirms it.
  [[nodiscard]] virtual bool confirms_by_round_trip() const = 0;
  virtual void append_ping(std::string& out) = 0;
  // As SubscriberProtocol::consume.
  virtual boost::system::result<std::size_t> consume(std::string_view in, std::string& out,
                                                     PublisherEvents& events) = 0;
};

std::string random_client_id() {
  std::random_device random;
  std::ostringstream id;
  id << "pub-" << std::hex << random() << random();
  return id.str();
}

class MqttPublisherProtocol final : public PublisherProtocol {
 public:
  explicit MqttPublisherProtocol(PeerKind kind)
      : qos_(mqtt_qos(kind)), in_flight_(std::size_t{1} << 16) {}

  void append_greeting(std::string& out) override {
    mqtt::append_connect(out, random_client_id(), true, 0);
  }

  void append_publish(std::string& out, std::string_view topic, std::string_view payload) override {
    std::uint16_t packet_id = 0;
    if (qos_ == 1) {
      // Ids run 1..65535; at most kMaxUnanswered (< 65535) are in flight, so a free one exists.
      do {
        next_id_ = static_cast<std::uint16_t>(next_id_ % 65535 + 1);
      } while (in_flight_[next_id_]);
      packet_id = next_id_;
      in_flight_[packet_id] = true;
    }
    mqtt::append_publish(out, topic, payload, qos_, packet_id);
  }

  bool confirms_by_round_trip() const override { return qos_ == 0; }
  void append_ping(std::string& out) override { mqtt::append_pingreq(out); }

  boost::system::result<std::size_t> consume(std::string_view in, std::string& /*out*/,
                                             PublisherEvents& events) override {
    std::size_t used = 0;
    for (;;) {
      mqtt::Packet packet;
      const Parse parse = mqtt::next_packet(in.substr(used), kMaxFrameBytes, packet);
      if (parse == Parse::kNeedMore) break;
      if (parse != Parse::kComplete) return error_of(parse);
      used += packet.size;
      if (const error_code ec = handle(packet, events)) return ec;
    }
    return used;
  }

 private:
  error_code handle(const mqtt::Packet& packet, PublisherEvents& events) {
    std::uint16_t packet_id = 0;
    switch (packet.type) {
      case mqtt::kConnack:
        if (packet.body.size() != 2) return PeerError::kBrokenFrame;
        if (packet.body[1] != 0) return PeerError::kConnectRefused;
        events.on_ready();
        return {};
      case mqtt::kPuback:
        if (!mqtt::read_packet_id(packet.body, packet_id)) return PeerError::kBrokenFrame;
        // A PUBACK for an id not in flight is a duplicate: not counted twice.
        if (in_flight_[packet_id]) {
          in_flight_[packet_id] = false;
          events.on_answer(true);
        }
        return {};
      case mqtt::kPingresp:
        events.on_pong();
        return {};
      default:
        return PeerError::kBrokenFrame;
    }
  }

  std::uint8_t qos_;
  std::vector<bool> in_flight_;  // by packet id
  std::uint16_t next_id_ = 0;
};

class NatsPublisherProtocol final : public PublisherProtocol {
 public:
  // CONNECT goes out before the server's INFO arrives, which the server allows; the PONG to the
  // PING after it says the server took it.
  void append_greeting(std::string& out) override {
    out.append(R"(CONNECT {"verbose":false,"pedantic":false,"name":")" + random_client_id() +
               "\"}\r\nPING\r\n");
  }

  void append_publish(std::string& out, std::string_view topic, std::string_view payload) override {
    out.append("PUB ").append(topic).append(" ").append(std::to_string(payload.size()));
    out.append("\r\n").append(payload).append("\r\n");
  }

  bool confirms_by_round_trip() const override { return true; }
  void append_ping(std::string& out) override { out.append("PING\r\n"); }

  boost::system::result<std::size_t> consume(std::string_view in, std::string& out,
                                             PublisherEvents& events) override {
    std::size_t used = 0;
    for (;;) {
      std::string_view line;
      const Parse parse = nats::next_line(in.substr(used), line);
      if (parse == Parse::kNeedMore) break;
      if (parse != Parse::kComplete) return error_of(parse);
      used += line.size() + 2;
      if (line == "PONG") {
        if (ready_) {
          events.on_pong();
        } else {
          ready_ = true;
          events.on_ready();
        }
      } else if (line == "PING") {
        out.append("PONG\r\n");
      } else if (line.starts_with("-ERR")) {
        return PeerError::kErrorReply;
      } else if (!line.starts_with("INFO ") && line != "+OK") {
        return PeerError::kBrokenFrame;
      }
    }
    return used;
  }

 private:
  bool ready_ = false;
};

class RedisPublisherProtocol final : public PublisherProtocol {
 public:
  RedisPublisherProtocol() : reader_(make_redis_reader()) {}

  // A PING whose +PONG says a Redis server answers.
  void append_greeting(std::string& out) override { resp::append_command(out, {"PING"}); }

  void append_publish(std::string& out, std::string_view topic, std::string_view payload) override {
    resp::append_command(out, {"PUBLISH", topic, payload});
  }

  bool confirms_by_round_trip() const override { return false; }
  void append_ping(std::string& /*out*/) override {}

  boost::system::result<std::size_t> consume(std::string_view in, std::string& /*out*/,
                                             PublisherEvents& events) override {
    if (const error_code ec = feed(*reader_, in)) return ec;
    RedisReplyPtr reply;
    for (;;) {
      if (!next_reply(*reader_, reply)) return PeerError::kBrokenFrame;
      if (!reply) break;
      if (!ready_) {
        if (reply->type != REDIS_REPLY_STATUS) return PeerError::kErrorReply;
        ready_ = true;
        events.on_ready();
      } else {
        // PUBLISH answers with the number of receivers; an error reply fails the message.
        events.on_answer(reply->type == REDIS_REPLY_INTEGER);
      }
    }
    return in.size();
  }

 private:
  RedisReaderPtr reader_;
  bool ready_ = false;
};

std::unique_ptr<PublisherProtocol> make_publisher_protocol(PeerKind kind) {
  if (is_mqtt(kind)) return std::make_unique<MqttPublisherProtocol>(kind);
  if (kind == PeerKind::kNats) return std::make_unique<NatsPublisherProtocol>();
  return std::make_unique<RedisPublisherProtocol>();
}

}  // namespace

// Callers append encoded messages to `queued` under the mutex; the io thread writes them, one
// write at a time of everything queued when it starts (coalescing), and matches the peer's
// answers to them. For peers that do not answer a message (NATS, MQTT QoS 0), each write ends
// with a PING whose PONG confirms the messages in it.
struct PeerPublisher::Impl final : private PublisherEvents {
  Impl(PeerKind kind, std::uint16_t port) : protocol(make_publisher_protocol(kind)) {
    socket.async_connect(loopback(port), [this](error_code ec) {
      // Our writes are coalesced already; let them go out at once.
      if (!ec) socket.set_option(tcp::no_delay(true), ec);
      if (ec) {
        fail(ec);
        return;
      }
      {
        std::lock_guard lock(mutex);
        protocol->append_greeting(queued);
        write_active = true;
      }
      write_queued();
      read();
    });
    // Connect and greeting run on this thread; the io thread takes over once they are done.
    const auto deadline = std::chrono::steady_clock::now() + kPublisherConnectTimeout;
    while (!is_ready() && !is_broken() && std::chrono::steady_clock::now() < deadline) {
      io.run_one_until(deadline);
    }
    if (!is_ready()) {
      const std::string reason =
          is_broken() ? failure.message() : "no answer to the greeting within 10 s";
      throw std::runtime_error("cannot connect to " + std::string(name_of(kind)) +
                               " at 127.0.0.1:" + std::to_string(port) + ": " + reason);
    }
    io.restart();
    thread = std::thread([this] { io.run(); });
  }

  ~Impl() {
    // Unwritten messages are dropped: callers flush() first.
    asio::post(io, [this] {
      error_code ignored;
      socket.close(ignored);
    });
    work.reset();
    if (thread.joinable()) thread.join();
  }

  void publish(std::string_view topic, std::string_view payload) {
    std::unique_lock lock(mutex);
    changed.wait(lock, [this] { return broken || unanswered < kMaxUnanswered; });
    if (broken) {
      ++failed;
      return;
    }
    protocol->append_publish(queued, topic, payload);
    ++queued_messages;
    ++unanswered;
    if (!write_active) {
      write_active = true;
      asio::post(io, [this] { write_queued(); });
    }
  }

  bool flush(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, timeout, [this] { return broken || unanswered == 0; });
    return !broken && unanswered == 0;
  }

  bool is_ready() {
    std::lock_guard lock(mutex);
    return ready;
  }
  bool is_broken() {
    std::lock_guard lock(mutex);
    return broken;
  }

  // On the io thread, with write_active set.
  void write_queued() {
    {
      std::lock_guard lock(mutex);
      if (broken || queued.empty()) {
        write_active = false;
        return;
      }
      if (queued_messages > 0 && protocol->confirms_by_round_trip()) {
        protocol->append_ping(queued);
        round_trips.push_back(queued_messages);
      }
      queued_messages = 0;
      sending.swap(queued);
    }
    asio::async_write(socket, asio::buffer(sending), [this](error_code ec, std::size_t /*bytes*/) {
      sending.clear();
      if (ec) {
        fail(ec);
        return;
      }
      write_queued();
    });
  }

  void read() {
    socket.async_read_some(asio::buffer(read_buffer), [this](error_code ec, std::size_t n) {
      if (ec) {
        fail(ec);
        return;
      }
      in.append(read_buffer.data(), n);
      boost::system::result<std::size_t> used = 0;
      bool answers_queued = false;
      {
        std::lock_guard lock(mutex);
        used = protocol->consume(in, queued, *this);
        if (!queued.empty() && !write_active) {
          write_active = true;
          answers_queued = true;
        }
      }
      changed.notify_all();
      if (!used) {
        fail(used.error());
        return;
      }
      in.erase(0, *used);
      if (answers_queued) write_queued();
      read();
    });
  }

  void fail(error_code ec) {
    {
      std::lock_guard lock(mutex);
      if (broken) return;
      broken = true;
      failure = ec;
      failed += unanswered;
      unanswered = 0;
      round_trips.clear();
      queued.clear();
    }
    changed.notify_all();
    error_code ignored;
    socket.close(ignored);
  }

  void on_ready() override { ready = true; }

  void on_answer(bool ok) override {
    if (unanswered == 0) return;
    --unanswered;
    ++(ok ? accepted : failed);
  }

  void on_pong() override {
    if (round_trips.empty()) return;
    accepted += round_trips.front();
    unanswered -= round_trips.front();
    round_trips.pop_front();
  }

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  tcp::socket socket{io};
  const std::unique_ptr<PublisherProtocol> protocol;
  std::array<char, 64 * 1024> read_buffer;  // io thread
  std::string in;                           // io thread: received, not yet consumed
  std::string sending;                      // io thread: the write in progress
  std::thread thread;

  std::mutex mutex;
  std::condition_variable changed;  // unanswered fell, or broken
  // Guarded by mutex:
  std::string queued;                    // encoded, waiting for the next write
  std::int64_t queued_messages = 0;      // messages in `queued`
  std::int64_t unanswered = 0;           // published, neither accepted nor failed yet
  std::deque<std::int64_t> round_trips;  // messages each PING in flight confirms, oldest first
  bool write_active = false;             // a write is running or posted
  bool ready = false;
  bool broken = false;
  error_code failure;  // what broke the connection

  std::atomic<std::int64_t> accepted{0};
  std::atomic<std::int64_t> failed{0};
};

PeerPublisher::PeerPublisher(PeerKind kind, std::uint16_t port)
    : impl_(std::make_unique<Impl>(kind, port)) {}

PeerPublisher::~PeerPublisher() = default;

void PeerPublisher::publish(std::string topic, std::string payload) {
  impl_->publish(topic, payload);
}

bool PeerPublisher::flush(std::chrono::milliseconds timeout) { return impl_->flush(timeout); }

std::int64_t PeerPublisher::accepted() const { return impl_->accepted.load(); }

std::int64_t PeerPublisher::failed() const { return impl_->failed.load(); }

}  // namespace herald::bench
