// AccessLoop: everything one event loop (one thread, one io_context) needs to hold device
// connections: its acceptor (SO_REUSEPORT, so the kernel spreads connections over the loops), its
// timing wheel of connection deadlines, and one scratch read buffer that every connection of the
// loop reads into — an idle connection owns no read buffer.
//
// It is also the loop's StreamFanout: an index of which of its sessions read which shared stream
// (topics, broadcast streams), through which a topic's Notify is encoded once and copied into
// every reader's output queue, a slice at a time so one large fan-out does not hold up the
// loop's other connections, or spread over a duration (paced broadcast).
//
// Owned by AccessServer. Every member function runs on the loop's own thread, except the
// constructor and those marked otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <openssl/types.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "access/access_metrics.h"
#include "access/access_options.h"
#include "access/connection_admission.h"
#include "access/drain_pacer.h"
#include "access/timing_wheel.h"
#include "distribution/router.h"
#include "logic/device_token.h"
#include "logic/message_service.h"
#include "logic/topic_service.h"
#include "logic/upstream_service.h"

namespace herald::access {

class HeartbeatAdvisor;
class Session;

// Where to send a device this node will not keep: "host:port" of a peer's device endpoint, or
// empty when no peer is known (the device then picks from its own list). `need_room`: only a peer
// below full load (an overload redirect). Called on loop threads; must be thread-safe.
using RedirectTarget = std::function<std::string(bool need_room)>;

// The collaborators of every session, shared by all loops. All outlive the server.
struct AccessContext {
  const AccessOptions& options;
  logic::MessageService& messages;
  logic::UpstreamService& upstream;
  logic::TopicService& topics;
  const logic::DeviceTokenAuthority& tokens;
  distribution::Router& router;
  AccessMetrics& metrics;
  RedirectTarget redirect;  // empty function: no peer is ever named
  // Learns starting heartbeat intervals from the Hellos' reports (docs/protocol.md section 4);
  // null: reports are ignored.
  HeartbeatAdvisor* heartbeat_advisor = nullptr;
  // Device connections are TLS with this server context (tls::make_server_context; access.tls);
  // null: plaintext.
  SSL_CTX* tls = nullptr;
};

class AccessLoop final : public distribution::StreamFanout {
 public:
  // Binds and listens on `endpoint` with SO_REUSEPORT (throws on failure: start-up only).
  // `admission` is the process's, shared by every loop; it outlives the loop.
  AccessLoop(boost::asio::io_context& io, const AccessContext& context,
             const boost::asio::ip::tcp::endpoint& endpoint, ConnectionAdmission& admission);

  // Starts accepting and ticking. Any thread.
  void start();
  // Stops accepting and asks every connection to reconnect elsewhere. Any thread.
  void stop();
  // Drains the loop: closes its listener, then asks each authenticated connection, at the pace
  // `pacer` sets for the whole process, to reconnect elsewhere (Session::drain_away); Hellos that
  // arrive meanwhile are answered the same way. Connections stay served until their devices
  // close them or stop() comes. Any thread; once per loop.
  void drain(std::shared_ptr<DrainPacer> pacer);
  // True once drain() reached the loop. Loop thread.
  [[nodiscard]] bool draining() const { return draining_; }
  // The peer to name in a Reconnect (see RedirectTarget); empty when none. Loop thread.
  [[nodiscard]] std::string redirect_target(bool need_room) const {
    return context_.redirect ? context_.redirect(need_room) : std::string();
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  boost::asio::io_context& io() { return io_; }
  const AccessContext& context() const { return context_; }
  // The process's connection-flood guards. Any thread.
  ConnectionAdmission& admission() { return admission_; }

  // Milliseconds on the steady clock, the time base of every connection deadline.
  [[nodiscard]] static std::int64_t now_ms();
  // Files a session's deadline; called when a session is created and when an expired session
  // stays open to linger.
  void watch(const std::shared_ptr<Session>& session);
  // `session`'s deadline may have moved earlier than where the wheel holds it. Loop thread.
  void refile_if_earlier(Session& session);
  // The loop's shared read buffer. Valid until the caller's next suspension point.
  std::vector<std::uint8_t>& scratch() { return scratch_; }
  // With TLS, where a session decrypts what it read into scratch(); empty otherwise. Same rules.
  std::vector<std::uint8_t>& plain_scratch() { return plain_scratch_; }
  // Calls `session->flush_deferred()` once `options.normal_notify_delay_ms` has passed. A session
  // files itself at most once per delay (when its first normal-priority notify arrives), so the
  // queue holds at most one entry per connection.
  void defer_notifies(std::shared_ptr<Session> session);

  // distribution::StreamFanout; any thread.
  void fan_out(std::shared_ptr<const distribution::StreamNotify> notify) override;
  // The index of shared-stream readers: a session files itself under each stream it reads, and
  // leaves them all before it is destroyed.
  void add_reader(std::uint64_t stream, Session* session);
  void remove_reader(std::uint64_t stream, Session* session);

 private:
  // One shared-stream notify on its way to this loop's readers.
  struct FanoutJob {
    std::shared_ptr<const distribution::StreamNotify> notify;
    std::string frame;  // the Notify, encoded once
    std::vector<std::weak_ptr<Session>> readers;
    std::size_t next = 0;  // readers before it have had their turn
    std::chrono::steady_clock::time_point start;
    std::unique_ptr<boost::asio::steady_timer> timer;  // paced jobs only
  };
  void deliver(std::shared_ptr<const distribution::StreamNotify> notify);
  // Sends the job's next slice (all that is due, for a paced job); false once it is done.
  bool run_slice(FanoutJob& job);
  void continue_job(std::shared_ptr<FanoutJob> job);

  struct Deferred {
    // Exact, not in the loop's milliseconds: a notify never goes before its full delay.
    std::chrono::steady_clock::time_point due;
    std::shared_ptr<Session> session;
  };

  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> tick_loop();
  boost::asio::awaitable<void> drain_loop(std::shared_ptr<DrainPacer> pacer);
  void arm_defer_timer();
  void flush_due();

  boost::asio::io_context& io_;
  AccessContext context_;
  ConnectionAdmission& admission_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer tick_timer_;
  TimingWheel<Session> wheel_;
  // Sessions holding normal-priority notifies, in the order they filed: the delay is the same for
  // all, so the front is always the next one due.
  std::deque<Deferred> deferred_;
  boost::asio::steady_timer defer_timer_;
  std::vector<std::uint8_t> scratch_;
  std::vector<std::uint8_t> plain_scratch_;
  std::unordered_map<std::uint64_t, std::unordered_set<Session*>> readers_;
  std::size_t paced_jobs_ = 0;
  // The connections a drain has yet to send away, as they were when it began (bounded by the
  // loop's connections); emptied as the drain goes.
  std::vector<std::weak_ptr<Session>> drain_queue_;
  std::uint16_t port_ = 0;
  bool stopping_ = false;
  bool draining_ = false;
};

}  // namespace herald::access
