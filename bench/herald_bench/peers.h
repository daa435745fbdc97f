// The peers herald-bench measures Herald against, each started from its Debian package on
// loopback and driven by a protocol driver of its own: mosquitto (MQTT 3.1.1, QoS 0 and 1),
// nats-server (the NATS text protocol) and redis-server (RESP pub/sub). A subscriber of peer
// system S, index i, listens on two topics: its own (unicast_topic) and the one every subscriber
// shares (broadcast_topic), as a Herald device has its inbox and its app's broadcast stream.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

namespace herald::bench {

enum class PeerKind { kMqttQos0, kMqttQos1, kNats, kRedis };

// "mosquitto-qos0", "mosquitto-qos1", "nats", "redis".
std::string_view name_of(PeerKind kind);
// The kind named `name`, false when none is.
bool parse_peer(std::string_view name, PeerKind& kind);

// Subscriber i's own topic ("d/17" for MQTT, "d.17" for NATS, "d:17" for Redis) and the topic
// every subscriber of the system listens on ("all").
std::string unicast_topic(PeerKind kind, int subscriber);
std::string broadcast_topic(PeerKind kind);

// A peer server process on 127.0.0.1 at a free port, with a configuration written into a fresh
// temporary directory: no persistence, no authentication, limits raised as far as the process's
// open-file limit allows, so that the peer is measured as a user would tune it for many idle
// subscribers. The destructor stops it (SIGTERM, then SIGKILL) and removes the directory.
class PeerServer {
 public:
  // Starts the server for `kind` (both MQTT kinds start mosquitto) and waits until it accepts a
  // TCP connection; throws std::runtime_error with the reason when it does not within 10 s.
  explicit PeerServer(PeerKind kind);
  ~PeerServer();
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;

  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] pid_t pid() const;
  // Resident set size of the server process, from /proc.
  [[nodiscard]] std::int64_t rss_kib() const;
  // What runs, for the report: "mosquitto 2.0.11", "nats-server 2.9.10", "redis-server 7.0.15".
  [[nodiscard]] const std::string& version() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct SubscriberOptions {
  PeerKind kind = PeerKind::kMqttQos0;
  std::uint16_t port = 0;      // on 127.0.0.1
  std::string source_address;  // bind the connection to this local address; "" = any
  int index = 0;               // unicast_topic(kind, index); MQTT client id "sub-<index>"
  // MQTT QoS 1 only: clean_session = 0, so that the broker keeps the subscriptions and queues
  // messages while the subscriber is away, and delivers them when it reconnects (at least once).
  bool persistent_session = false;
};

// One subscriber connection on an io_context (single-threaded: every handler runs on its
// thread). Not thread-safe: call it from that thread.
class PeerSubscriber {
 public:
  using MessageHandler = std::function<void(std::string_view payload)>;
  // Once, when both subscriptions are confirmed (MQTT SUBACK, NATS PONG after SUB, Redis
  // subscribe replies), or with the error that ended the attempt.
  using ReadyHandler = std::function<void(boost::system::error_code)>;
  // When the connection ends after it was ready, other than by close().
  using LostHandler = std::function<void(boost::system::error_code)>;

  static std::unique_ptr<PeerSubscriber> make(boost::asio::io_context& io,
                                              SubscriberOptions options, MessageHandler on_message,
                                              LostHandler on_lost);
  virtual ~PeerSubscriber() = default;

  // Connects, says hello (MQTT CONNECT, NATS CONNECT) and subscribes to both topics; received
  // messages go to on_message, MQTT QoS 1 ones acknowledged (PUBACK) after the handler ran.
  virtual void start(ReadyHandler on_ready) = 0;
  // Leaves politely (MQTT DISCONNECT) and closes; no handler runs afterwards. start() may be
  // called again to reconnect (a persistent MQTT session then resumes).
  virtual void close() = 0;
};

// One publisher connection with its own thread. publish() may be called from any thread.
class PeerPublisher {
 public:
  // Connects to the peer on 127.0.0.1:port; throws std::runtime_error when it cannot.
  PeerPublisher(PeerKind kind, std::uint16_t port);
  ~PeerPublisher();
  PeerPublisher(const PeerPublisher&) = delete;
  PeerPublisher& operator=(const PeerPublisher&) = delete;

  // Queues one message (MQTT QoS of the kind, NATS PUB, Redis PUBLISH). Pipelined: it does not
  // wait for the peer's answer. Bounded: blocks the caller while 10,000 are unanswered.
  void publish(std::string topic, std::string payload);
  // Waits until every message published so far is answered: MQTT QoS 1 by its PUBACK, Redis by
  // its PUBLISH reply, NATS and MQTT QoS 0 (which have no answer) by a round trip after them
  // (NATS PING/PONG; for MQTT QoS 0, PINGREQ/PINGRESP). False when `timeout` passed first or the
  // connection failed.
  bool flush(std::chrono::milliseconds timeout);
  // Messages the peer took (answered, or written before a completed flush) and messages that
  // failed (connection lost, an error reply).
  [[nodiscard]] std::int64_t accepted() const;
  [[nodiscard]] std::int64_t failed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::bench
