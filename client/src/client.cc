// Client: the connection loop of one device.
//
//   run ──▶ race(endpoints_to_try()) ──▶ attempts, spawned, staggered: session(endpoint) =
//    ▲         │ all failed                 connect (deadline) ──▶ Hello ──▶ reader until HelloOk,
//    │         ▼                            + spawned writer and watchdog; the first HelloOk wins,
//    ├──── backoff ◀── kDisconnected        the others are closed
//    │
//    │     the winner ──▶ run() reads on (reader) ──▶ ended ──▶ run() waits for its children
//    └──── backoff / Reconnect delay ◀────────────────────────────────────────┘
//
// Racing (client/README.md "Racing"): race() owns a Round, the candidates and their attempts, and
// starts an attempt every race_stagger (at once after a failure), at most race_width in flight,
// each a Connection with its own session coroutine and deadlines. win_race() (from on_hello_ok)
// picks the first attempt that gets HelloOk, closes the others at once and makes it conn_; race()
// returns it once every loser's coroutines have finished, and the Round goes with race()'s frame:
// the connected client keeps nothing of the race. Every Hello of a round carries the round's
// race_id, so that a loser's late Hello cannot supersede the winner on a node (docs/protocol.md
// section 3). With race_width 1 a round is one endpoint, race_id 0: the sequential client of old.
//
// Everything of one client runs on its strand: the coroutines, the message, recall, gap, state
// and streams handlers, the upstream and subscribe callbacks, the Delivery, UpstreamQueue and
// SubscribeQueue state machines and the CursorStore calls. Per connection:
//
//   - reader:   runs inside the attempt's session() until HelloOk, then inside run() (a
//               spawned coroutine would cost its frames for the connection's whole life); waits
//               for readability without a buffer, reads into a per-thread scratch buffer,
//               parses whole frames (a partial frame is kept in Connection::in, usually empty)
//               and handles them, handlers included, before reading again;
//   - writer:   spawned; the only one writing the socket; sends what Connection::out holds
//               (bounded);
//   - watchdog: spawned; the deadlines: HelloOk after Hello, then a Ping every heartbeat interval
//               and a Pong (or any frame) within response_timeout of it, an UpstreamAck within
//               response_timeout of its Upstream, the Streams answer within response_timeout of
//               its Subscribe; and the retries of failed pulls, upstreams and subscribes.
//
// Whichever of the three meets the end first calls Connection::end, which closes the socket and
// wakes the others; each sees `ended` and returns, and run() waits until the spawned ones (the
// writer, the watchdog, the attempt's session) have (Connection::children) before it goes on.
// Spawning plain coroutines rather than awaiting `reader || writer || watchdog` keeps a connected
// idle client at about 6 KB of heap instead of 10 KB: the parallel-group machinery is costly for
// something that lives for hours.
//
// stop() sets stopping_, emits terminal cancellation into run() (aborting whatever it awaits:
// race()'s wait for its attempts, the wait for the connection's end, the backoff) and ends the
// current connection; race() ends its attempts itself (Connection::end also cancels a connect or
// a name resolution in flight) and waits for them. run() then fails the upstream messages and
// subscribe requests still queued, reports kStopped and returns, which is what stop() waits
// for.
//
// send_upstream(), subscribe() and unsubscribe() run on the caller's thread: they check their
// queue's bounds under mu_ (so they hold however fast callers are) and post the request to the
// strand, where the UpstreamQueue keeps it until its UpstreamAck, or the SubscribeQueue until its
// Streams answer, or the stop.
//
// TLS (ClientOptions::tls): a Connection then carries a tls::TlsChannel, a byte transformer
// without a socket. The reader feeds it what the socket had and parses the plaintext it gives
// back; the writer encrypts what `out` holds (one write per batch) and sends the channel's
// output(), which also carries the handshake and alerts. The Hello waits in `out` until the
// channel is established, so it never leaves in the clear; the TLS handshake runs within the
// attempt's HelloOk deadline (response_timeout, from the TCP connect). The newest session ticket
// any connection received (tls_session_) is offered by every later attempt.
//
// A Streams frame is either a refusal (error_code, for the SubscribeQueue only) or a part of a
// list; Connection::list gathers the parts until the one with more = false, then the complete
// list goes to the Delivery (which pulls what has news), to on_streams, and completes the
// requests it answers.
#include "herald/client.h"

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>

#include "backoff.h"
#include "delivery.h"
#include "endpoint_directory.h"
#include "event_loop_impl.h"
#include "heartbeat_policy.h"
#include "protocol/frame_codec.h"
#include "protocol/network_id.h"
#include "subscribe_queue.h"
#include "tls/tls_channel.h"
#include "tls/tls_context.h"
#include "upstream_queue.h"

namespace herald {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;  // connect(): op || deadline
using Clock = std::chrono::steady_clock;
using protocol::ErrorCode;
using protocol::FrameType;

namespace {

constexpr auto kUseAwaitable = asio::as_tuple(asio::use_awaitable);

// Frames we send are tiny (pulls, acks, pings), upstream messages aside, which are bounded by
// their own queue; more than this plus those queued means the server stopped reading, and the
// watchdog would soon say so anyway.
constexpr std::size_t kMaxQueuedBytes = 64 * 1024;
// The server's rule for app ids (docs/configuration.md).
constexpr std::size_t kMaxAppIdBytes = 64;
// How long a connection we close for a protocol error may take to flush its Error frame.
constexpr auto kCloseLinger = std::chrono::seconds(1);
// race_stagger beyond this is taken as this (a time point must not overflow).
constexpr std::chrono::milliseconds kMaxRaceStagger = std::chrono::hours(24);
// A Reconnect frame cannot park the client for longer than this.
constexpr std::uint32_t kMaxReconnectDelayMs = 10 * 60 * 1000;
constexpr std::uint32_t kFallbackHeartbeatS = 60;
// Networks whose heartbeat interval the client remembers (set_network()).
constexpr std::size_t kMaxHeartbeatNetworks = 32;
constexpr std::size_t kScratchBytes = 64 * 1024;
constexpr std::size_t kKeepInputCapacity = 4 * 1024;

// Reads land here and only the unparsed tail of a frame is copied into the connection, so an
// idle client holds no read buffer. Used synchronously between two awaits: one per thread is
// enough for every client on it.
std::span<std::uint8_t> scratch_buffer() {
  thread_local std::array<std::uint8_t, kScratchBytes> buffer;
  return buffer;
}

// With TLS, the plaintext the channel decrypts from scratch_buffer(); same rules.
std::span<std::uint8_t> plain_buffer() {
  thread_local std::array<std::uint8_t, kScratchBytes> buffer;
  return buffer;
}

std::string to_text(const Endpoint& ep) {
  if (ep.host.find(':') != std::string::npos) {
    return "[" + ep.host + "]:" + std::to_string(ep.port);
  }
  return ep.host + ":" + std::to_string(ep.port);
}

std::string ms_text(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

// "connecting to A" or, racing, "racing A, B, C (3 at once, 250 ms apart)".
std::string connecting_text(const std::vector<Endpoint>& candidates, std::size_t width,
                            std::chrono::milliseconds stagger) {
  if (width <= 1 || candidates.size() <= 1) return "connecting to " + to_text(candidates.front());
  std::string text = "racing ";
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (i > 0) text += ", ";
    text += to_text(candidates[i]);
  }
  return text + " (" + std::to_string(std::min(width, candidates.size())) + " at once, " +
         ms_text(stagger) + " apart)";
}

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24  // Linux 4.2; older C libraries lack the name
#endif
// bind() leaves the port to connect(), which picks one unused towards that destination.
using BindAddressNoPort = asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>;

// Opens `socket` (closed first if open) for `remote`'s address family and binds it to `local`
// (ClientOptions::local_address), port 0. Returns why that failed, or empty.
std::string bind_local(tcp::socket& socket, const asio::ip::address& local,
                       const tcp::endpoint& remote) {
  if (local.is_v4() != remote.address().is_v4()) {
    return "bind to " + local.to_string() + ": not the address family of " +
           remote.address().to_string();
  }
  boost::system::error_code ec;
  socket.close(ec);
  socket.open(remote.protocol(), ec);
  if (ec) return "socket: " + ec.message();
  // Without it bind() takes an ephemeral port at once, unused towards every destination, so the
  // ~28k ports of an address would be shared by all servers instead of available per server. A
  // kernel without the option (before 4.2) binds all the same: not a failure.
  boost::system::error_code ignored;
  socket.set_option(BindAddressNoPort(true), ignored);
  socket.bind(tcp::endpoint(local, 0), ec);
  if (ec) return "bind to " + local.to_string() + ": " + ec.message();
  return {};
}

}  // namespace

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      value == 0 || value > 65535) {
    return std::nullopt;
  }
  return Endpoint{std::string(host), static_cast<std::uint16_t>(value)};
}

struct Connection;

// One round of connection racing (client/README.md, "Racing"): the candidates, best first, the
// attempts started so far and the winner. Owned by race(), which returns only once every losing
// attempt has finished, so nothing of a round outlives it; the attempts point back at it until
// then. Strand only.
//
//   t=0        attempt 0 ──connect──Hello──────────────────────────▶ (no answer: blackholed)
//   t=stagger  attempt 1 ──connect──Hello───── HelloOk ✓ wins: 0 and 2 are closed at once
//   t=2 stagger (or at once when an attempt fails) attempt 2 ... at most race_width in flight
struct Round {
  explicit Round(const asio::any_io_executor& ex) : wake(ex) {}

  std::vector<Endpoint> candidates;
  std::uint64_t race_id = 0;  // Hello.race_id of every attempt; 0 when not racing
  // attempts[i] connects to candidates[i]; at most candidates.size().
  std::vector<std::shared_ptr<Connection>> attempts;
  std::shared_ptr<Connection> winner;  // the first attempt that got HelloOk
  asio::steady_timer wake;             // race() sleeps on it; attempts cancel it when they change
};

// One TCP connection attempt and, if it succeeds, its life. Shared by session() (and its reader)
// and the two spawned children; strand only.
struct Connection {
  explicit Connection(const asio::any_io_executor& ex)
      : socket(ex), watchdog(ex), write_signal(ex), linger(ex), join(ex) {}

  // Ends the connection once, keeping the first reason: closes the socket (aborting the reader
  // and the writer) and wakes the watchdog and the writer so they see `ended`.
  void end(std::string why, std::uint32_t code = 0) {
    if (!ended) {
      ended = true;
      reason = std::move(why);
      error_code = code;
    }
    boost::system::error_code ignored;
    socket.close(ignored);
    watchdog.cancel();
    write_signal.cancel();
    linger.cancel();
    if (round != nullptr) round->wake.cancel();
  }

  // A spawned child (session, writer, watchdog) returned.
  void child_done() {
    --children;
    join.cancel();
    if (round != nullptr) round->wake.cancel();
  }

  tcp::socket socket;
  // With ClientOptions::tls: the connection's TLS, from the TCP connect on; null otherwise.
  std::unique_ptr<tls::TlsChannel> tls;
  asio::steady_timer watchdog;      // the next deadline or ping
  asio::steady_timer write_signal;  // the writer sleeps on it; cancel() wakes it
  asio::steady_timer linger;        // bounds the flush of a last Error frame
  asio::steady_timer join;          // session() sleeps on it until `children` is 0
  int children = 0;                 // spawned coroutines still running

  // The round this connection is an attempt of, while it lasts (race() clears it).
  Round* round = nullptr;

  std::string in;        // the start of a frame not complete yet; usually empty
  std::string out;       // frames waiting for the writer (plaintext; the Hello until TLS is up)
  std::string inflight;  // bytes being written (with TLS: ciphertext)

  std::uint32_t max_body_bytes = protocol::kDefaultMaxHelloBodyBytes;  // until HelloOk
  std::uint32_t server_max_body_bytes = 0;  // what the server accepts; from HelloOk
  // The interval the server holds us to: its HelloOk answer, then each one announced in a Ping.
  std::uint32_t heartbeat_s = kFallbackHeartbeatS;
  std::uint32_t hello_heartbeat_s = 0;  // what the Hello announced
  std::uint32_t heartbeat_min_s = 0;    // the server's range from HelloOk; 0 = not said
  std::uint32_t heartbeat_max_s = 0;
  // The network (Impl::network_epoch_) of the idle period running now, and of the one the
  // outstanding ping ended: only an idle period spent on one network says something about it.
  std::uint64_t idle_network = 0;
  std::uint64_t ping_network = 0;
  std::uint32_t ping_idle_s = 0;  // the length of the idle period the outstanding ping ended
  Clock::time_point hello_deadline;
  Clock::time_point last_rx;
  Clock::time_point next_ping;
  Clock::time_point ping_sent_at;
  // While pulls wait for their answers: the last sign that answers are coming (the first pull
  // sent, an answer, part of a large frame). None for response_timeout means a lost answer.
  bool awaiting_pulls = false;
  Clock::time_point pull_progress_at;
  bool hello_ok = false;
  bool ping_outstanding = false;
  bool closing = false;       // we found a protocol error: an Error frame is queued, close after it
  bool flush_waiter = false;  // the reader waits on `linger` for the writer to drain `out`

  std::optional<Clock::time_point> retry_at;  // when to pull again after a non-fatal Error

  // A Streams list arriving in several frames: the entries so far (bounded by
  // Delivery::kMaxStreams), and the Subscribe it answers (0: none).
  std::vector<wire::v1::StreamInfo> list;
  std::uint64_t list_request_id = 0;

  // How it ended.
  bool ended = false;
  std::uint32_t error_code = 0;  // the server's, from a fatal Error frame
  std::string reason;
  std::optional<std::chrono::milliseconds> reconnect_delay;  // set by a Reconnect frame
  std::optional<Endpoint> reconnect_to;
  bool reconnect_elsewhere = false;  // the node asked us to go (shutdown, drain, overload)
};

struct Client::Impl : std::enable_shared_from_this<Impl> {
  Impl(EventLoop& loop, ClientOptions options, std::shared_ptr<CursorStore> cursors);

  void start();
  void stop();

  // How a round ended: its winner, or (none) the delay before the next round.
  struct RaceOutcome {
    std::shared_ptr<Connection> winner;
    std::chrono::milliseconds delay{0};
  };

  asio::awaitable<void> run(std::shared_ptr<Impl> self);
  // One round: starts attempts on the candidates, staggered, and returns the first to get HelloOk
  // (already handled: the connection is live, its children running) once every other attempt
  // finished; or, when all failed or the client stops, no winner and the delay before the next.
  asio::awaitable<RaceOutcome> race();
  // The endpoints to try in the next round, best first. The one place the list comes from.
  std::vector<Endpoint> endpoints_to_try() const;
  // Before a round: starts fetching the endpoint list when it is due, and waits for that fetch
  // when there is no list to connect with yet (neither fetched nor cached).
  asio::awaitable<void> update_endpoints();
  // Fetches the list beside the connection; refreshing_ counts it until it is done.
  void spawn_refresh();
  asio::awaitable<void> refresh_endpoints();
  // The list names a starting heartbeat for the current network: offer it to the policy.
  void apply_heartbeat_hint();
  // Starts attempt number round.attempts.size() of the round.
  void start_attempt(Round& round);
  // The round failed: reports it and returns the delay before the next one.
  std::chrono::milliseconds after_failed_round(const Round& round);
  // `c` got HelloOk: true when it wins its round (or is not racing). A loser is ended.
  bool win_race(Connection& c);
  asio::awaitable<void> session(std::shared_ptr<Connection> c, Endpoint ep);
  asio::awaitable<bool> connect(std::shared_ptr<Connection> c, Endpoint ep);
  // connect() of a name with a local_address: its addresses of the local address's family in
  // order, each on a socket bound to it; `where` names the endpoint in reasons.
  asio::awaitable<bool> connect_bound(std::shared_ptr<Connection> c,
                                      tcp::resolver::results_type results, std::string where);
  // Reads and handles frames until the connection ends; with `until_hello_ok`, returns early once
  // the HelloOk was handled (an attempt that won: run() reads on).
  asio::awaitable<void> reader(std::shared_ptr<Connection> c, bool until_hello_ok);
  asio::awaitable<void> writer(std::shared_ptr<Connection> c);
  asio::awaitable<void> watchdog(std::shared_ptr<Connection> c);
  void spawn_child(std::shared_ptr<Connection> c, asio::awaitable<void> child);
  // Socket options, the TLS channel (its ClientHello) and the Hello frame; false (and `c` ended)
  // on failure.
  bool begin_handshake(Connection& c);
  // Reports the end of the live connection `c` and returns the delay before the next round,
  // updating first_ and last_.
  std::chrono::milliseconds after_connection(const Connection& c);
  // The part of both that follows a Reconnect frame `c` got from `ep`, if it got one.
  std::optional<std::chrono::milliseconds> obey_reconnect(const Connection& c, const Endpoint& ep);

  // Reads what the socket has (it is readable) and handles it; false once the connection is
  // ending.
  bool read_available(Connection& c);
  // With TLS: decrypts `cipher` and handles the plaintext; false once the connection is ending.
  bool consume_tls(Connection& c, std::span<const std::uint8_t> cipher);
  // Moves what is ready for the socket into c.inflight (with TLS: encrypts `out` once the
  // channel is established, then takes its output()); false when there is nothing to write.
  bool take_output(Connection& c);
  // Sends a ping when due and checks the HelloOk and Pong deadlines; returns when to look again,
  // or nullopt once the connection ended.
  std::optional<Clock::time_point> check_deadlines(Connection& c);
  // Handles the frames at the front of `bytes`; false once the connection is ending.
  bool consume(Connection& c, std::span<const std::uint8_t> bytes);
  bool on_frame(Connection& c, const protocol::FrameView& frame);
  bool on_hello_ok(Connection& c, std::span<const std::uint8_t> body);
  bool on_error(Connection& c, std::span<const std::uint8_t> body);
  bool on_reconnect(Connection& c, std::span<const std::uint8_t> body);
  bool on_messages(Connection& c, std::span<const std::uint8_t> body);
  // A pull was answered: the answer clock starts over, or stops when none is waiting.
  void pull_answered(Connection& c);
  bool on_upstream_ack(Connection& c, std::span<const std::uint8_t> body);
  bool on_streams(Connection& c, std::span<const std::uint8_t> body);
  // Queues an Error frame for the server and closes once it is flushed.
  bool protocol_error(Connection& c, ErrorCode code, std::string what);
  // Heartbeat: queues a Ping, announcing the next interval when it changes; and the outcome of
  // the idle period the outstanding ping ended, for the adaptive policy.
  void send_ping(Connection& c, Clock::time_point now);
  void ping_answered(Connection& c, Clock::time_point now);
  void ping_failed(Connection& c, Clock::time_point now);
  void set_heartbeat(Connection& c, std::uint32_t heartbeat_s);
  // The handler or the CursorStore failed: delivery cannot be promised any more.
  bool fail_stop(Connection& c, std::string what);

  void send(Connection& c, const detail::Outbound& out);
  void queue(Connection& c, std::string_view frames);
  void deliver(const Message& m);
  void deliver_recall(const Recall& r);
  void deliver_gap(const Gap& g);
  void report(ConnectionState state, std::uint32_t code, std::string reason);
  void report_streams(const std::vector<wire::v1::StreamInfo>& list);

  // Upstream. send_upstream() on any thread; the rest on the strand.
  std::uint64_t send_upstream(std::string app, std::string data, bool binary,
                              UpstreamCallback done);
  void enqueue_upstream(detail::UpstreamMessage m);
  // Sends what the queue lets go now, if `c` is past HelloOk.
  void flush_upstream(Connection& c);
  // Releases the message's share of the bounds, then runs its callback.
  void complete_upstream(detail::UpstreamCompletion done);
  // The client is done: every queued message fails with kStopped, and later ones at once.
  void finish_upstream();

  // Subscribe requests. request_subscription() on any thread; the rest on the strand.
  std::uint64_t request_subscription(std::string app, std::vector<std::string> topics,
                                     bool unsubscribe, std::uint32_t history,
                                     SubscribeCallback done);
  void enqueue_subscribe(detail::SubscribeRequest r);
  // Sends the next request if the queue lets it go now and `c` is past HelloOk.
  void flush_subscribe(Connection& c);
  // Streams{request_id, error_code} completed the request `id` (if it is the one in flight).
  void answer_subscribe(Connection& c, std::uint64_t id, std::uint32_t error_code);
  // Releases the request's place in the bound, then runs its callback.
  void complete_subscribe(detail::SubscribeCompletion done);
  // The client is done: every queued request fails with kStopped, and later ones at once.
  void finish_subscribe();

  EventLoop::Impl& loop_;
  asio::strand<asio::io_context::executor_type> strand_;
  const ClientOptions options_;
  const std::optional<asio::ip::address> local_address_;  // options_.local_address, parsed
  // ClientOptions::tls: the context of every connection's channel; null without TLS.
  const std::shared_ptr<asio::ssl::context> tls_context_;
  const std::shared_ptr<CursorStore> cursors_;
  detail::Delivery delivery_;
  detail::Backoff backoff_;        // between connection attempts
  detail::Backoff retry_backoff_;  // between retries of failed pulls, per connection
  const detail::Delivery::Deliver deliver_fn_;
  const detail::Delivery::DeliverRecall deliver_recall_fn_;
  const detail::Delivery::DeliverGap deliver_gap_fn_;
  // The most bytes the connection's outbound queue may hold: control frames plus a full upstream
  // queue.
  const std::size_t max_queued_bytes_;

  // Set before start(), read-only afterwards.
  std::unordered_map<std::string, MessageHandler> handlers_;
  MessageHandler other_handler_;
  std::unordered_map<std::string, RecallHandler> recall_handlers_;
  RecallHandler other_recall_handler_;
  GapHandler gap_handler_;
  StateHandler state_handler_;
  StreamsHandler streams_handler_;

  // Strand only.
  detail::HeartbeatPolicy heartbeat_;
  // The endpoint list, with endpoint_list_urls only. A fetch runs as its own coroutine (at most
  // one: refreshing_), cancelled through refresh_signal_ when the client stops; run() waits on
  // refresh_wake_ for it to finish before it returns.
  std::optional<detail::EndpointDirectory> directory_;
  bool refreshing_ = false;
  asio::cancellation_signal refresh_signal_;
  asio::steady_timer refresh_wake_;
  std::uint64_t network_epoch_ = 0;  // counts set_network() calls that changed the network
  bool stopping_ = false;
  std::string stop_reason_;
  asio::cancellation_signal stop_signal_;
  std::shared_ptr<Connection> conn_;  // the live connection, from its HelloOk to its end
  // The newest TLS session any connection received, offered by every later attempt (all of a
  // race's attempts alike); in memory, for the client's lifetime.
  tls::Session tls_session_;
  // Where the next round starts (endpoints_to_try()): the endpoint to try first (the last one
  // that reached HelloOk, or a Reconnect's target) and the one to try last (the one that failed,
  // or that the server asked us to leave).
  std::optional<Endpoint> first_;
  std::optional<Endpoint> last_;
  detail::UpstreamQueue upstream_;
  bool upstream_closed_ = false;  // finish_upstream() ran: no message is queued any more
  detail::SubscribeQueue subscribe_;
  bool subscribe_closed_ = false;  // finish_subscribe() ran: no request is queued any more

  // Any thread, under mu_.
  std::mutex mu_;
  std::condition_variable done_cv_;
  bool started_ = false;
  bool stop_requested_ = false;
  // Any thread: the interval of the current connection, for Client::heartbeat_interval_s().
  std::atomic<std::uint32_t> heartbeat_interval_s_{0};
  bool done_ = false;
  // Upstream messages accepted by send_upstream() and not completed yet.
  std::size_t upstream_count_ = 0;
  std::size_t upstream_bytes_ = 0;
  // Subscribe requests accepted and not completed yet.
  std::size_t subscribe_count_ = 0;
};

namespace {

ClientOptions validated(ClientOptions o) {
  if (o.endpoints.empty() && o.endpoint_list_urls.empty()) {
    throw std::invalid_argument(
        "herald: ClientOptions.endpoints and ClientOptions.endpoint_list_urls are both empty");
  }
  // The server's rule (docs/protocol.md): 1..128 bytes of [A-Za-z0-9._:-].
  const bool id_ok = !o.device_id.empty() && o.device_id.size() <= 128 &&
                     std::all_of(o.device_id.begin(), o.device_id.end(), [](char ch) {
                       return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' ||
                              ch == '_' || ch == ':' || ch == '-';
                     });
  if (!id_ok) {
    throw std::invalid_argument("herald: ClientOptions.device_id \"" + o.device_id +
                                "\" is not 1..128 bytes of [A-Za-z0-9._:-]");
  }
  if (!o.local_address.empty()) {
    boost::system::error_code ec;
    (void)asio::ip::make_address(o.local_address, ec);
    if (ec) {
      throw std::invalid_argument("herald: ClientOptions.local_address \"" + o.local_address +
                                  "\" is not an IP address");
    }
  }
  if (o.tls.enabled && o.tls.verify_peer && o.tls.server_name.empty()) {
    throw std::invalid_argument(
        "herald: ClientOptions.tls.server_name is required to verify the servers' certificate "
        "(endpoints are addresses; the name comes from here)");
  }
  return o;
}

// The context of the device connections' TLS (ClientOptions::tls), or null without it. A CA
// file that cannot be loaded is a bad option: std::invalid_argument.
//
// Clients with the same TLS options share one context while any of them lives: each context
// holds its own parsed copy of the CA file, and a load tool runs thousands of clients. Sharing is
// safe: a client context keeps no sessions (each channel keeps the ticket it got, and the client
// its newest), and OpenSSL allows SSL_new on one context from several threads.
std::shared_ptr<asio::ssl::context> tls_context(const ClientOptions& o) {
  if (!o.tls.enabled) return nullptr;
  static std::mutex mu;
  static std::map<std::tuple<std::string, std::string, bool>, std::weak_ptr<asio::ssl::context>>
      contexts;
  std::lock_guard lock(mu);
  std::weak_ptr<asio::ssl::context>& shared =
      contexts[{o.tls.ca_file, o.tls.server_name, o.tls.verify_peer}];
  if (auto ctx = shared.lock()) return ctx;
  try {
    auto ctx = tls::make_client_context({o.tls.ca_file, o.tls.server_name, o.tls.verify_peer});
    shared = ctx;
    return ctx;
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(std::string("herald: ClientOptions.tls: ") + e.what());
  }
}

// ClientOptions::local_address (validated()), or nullopt when the system chooses.
std::optional<asio::ip::address> local_address(const ClientOptions& o) {
  if (o.local_address.empty()) return std::nullopt;
  return asio::ip::make_address(o.local_address);
}

// Why `app` is not an app id, or empty when it is.
std::string app_problem(const std::string& app) {
  // The server's rule: 1..64 bytes of [a-z0-9._-]. Anything else would be refused; invalid
  // UTF-8 would even make the server close the connection (malformed_frame) on every resend.
  const bool app_ok = !app.empty() && app.size() <= kMaxAppIdBytes &&
                      std::all_of(app.begin(), app.end(), [](char ch) {
                        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                               ch == '_' || ch == '-';
                      });
  if (!app_ok) return "app \"" + app + "\" is not 1..64 bytes of [a-z0-9._-]";
  return {};
}

// Why send_upstream() cannot take a message, or empty when it can.
std::string upstream_problem(const std::string& app, const std::string& data, bool binary,
                             std::size_t max_bytes) {
  if (std::string problem = app_problem(app); !problem.empty()) return problem;
  if (app.size() + data.size() > max_bytes) {
    return std::to_string(app.size() + data.size()) +
           " bytes of app and data exceed ClientOptions::max_upstream_bytes " +
           std::to_string(max_bytes);
  }
  if (!binary) {
    boost::system::error_code ec;
    (void)boost::json::parse(data, ec);
    if (ec) return "data is not valid JSON (" + ec.message() + "); send bytes as binary";
  }
  return {};
}

// A random, non-zero 64-bit id for an upstream message or a subscribe request. One engine per
// thread (send_upstream and subscribe run on the caller's), seeded with 256 bits: two runs of the
// same device must not draw the same ids, or the server would take a new message for a resend of
// an old one and drop it.
std::uint64_t random_request_id() {
  thread_local std::mt19937_64 engine = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(),
                       device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  std::uint64_t id = 0;
  while (id == 0) id = engine();
  return id;
}

// Adds without wrapping, for limits derived from options a user may set very high.
std::size_t saturating_add(std::size_t a, std::size_t b) {
  constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
  return a > kMax - b ? kMax : a + b;
}

std::size_t saturating_mul(std::size_t a, std::size_t b) {
  constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
  return b != 0 && a > kMax / b ? kMax : a * b;
}

// The adaptive heartbeat's settings (ClientOptions documents them). The bounds are widened to
// include heartbeat_s, so that the interval asked for is where every network starts.
std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The endpoint directory of `o`, with endpoint_list_urls; it validates the URLs and the key
// (std::invalid_argument) and loads the cache file.
std::optional<detail::EndpointDirectory> make_directory(const ClientOptions& o) {
  if (o.endpoint_list_urls.empty()) return std::nullopt;
  detail::EndpointDirectorySettings settings;
  settings.list_urls = o.endpoint_list_urls;
  settings.public_key_base64 = o.endpoint_list_public_key;
  settings.cache_file = o.endpoint_list_cache_file;
  settings.embedded = o.endpoints;
  settings.fetch_timeout = o.endpoint_list_timeout;
  settings.tls_ca_file = o.tls.ca_file;
  settings.tls_server_name = o.tls.server_name;
  settings.tls_verify_peer = o.tls.verify_peer;
  settings.seed = std::random_device{}();
  settings.seed = (settings.seed << 32) ^ std::random_device{}();
  return std::optional<detail::EndpointDirectory>(std::in_place, std::move(settings));
}

detail::HeartbeatSettings heartbeat_settings(const ClientOptions& o) {
  const std::uint32_t initial_s = o.heartbeat_s != 0 ? o.heartbeat_s : kFallbackHeartbeatS;
  detail::HeartbeatSettings s;
  s.initial = std::chrono::seconds(initial_s);
  s.min = std::chrono::seconds(std::min(o.heartbeat_min_s, initial_s));
  s.max = std::chrono::seconds(std::max(o.heartbeat_max_s, initial_s));
  s.step = std::chrono::seconds(o.heartbeat_step_s);
  s.probe_after = o.heartbeat_probe_after;
  s.probe_after_max = o.heartbeat_probe_after_max;
  s.max_networks = kMaxHeartbeatNetworks;
  return s;
}

template <class Callback, class Result>
void run_callback(const Callback& done, const Result& result) {
  if (!done) return;
  try {
    done(result);
  } catch (...) {
    // Documented: the callback only observes; its failure must not take the client down.
  }
}

}  // namespace

Client::Impl::Impl(EventLoop& loop, ClientOptions options, std::shared_ptr<CursorStore> cursors)
    : loop_(loop.impl()),
      strand_(asio::make_strand(loop_.io)),
      options_(validated(std::move(options))),
      local_address_(local_address(options_)),
      tls_context_(tls_context(options_)),
      cursors_(cursors ? std::move(cursors)
                       : throw std::invalid_argument("herald: Client needs a CursorStore")),
      delivery_(*cursors_, options_.pull_limit),
      backoff_(options_.backoff_initial, options_.backoff_max),
      retry_backoff_(options_.backoff_initial, options_.backoff_max),
      deliver_fn_([this](const Message& m) { deliver(m); }),
      deliver_recall_fn_([this](const Recall& r) { deliver_recall(r); }),
      deliver_gap_fn_([this](const Gap& g) { deliver_gap(g); }),
      // Control frames, a full upstream queue in flight, and the one Subscribe in flight.
      max_queued_bytes_(saturating_add(
          kMaxQueuedBytes + detail::SubscribeQueue::kMaxFrameBytes,
          saturating_add(options_.max_upstream_bytes,
                         saturating_mul(options_.max_upstream_messages,
                                        detail::UpstreamQueue::kMaxFrameOverheadBytes)))),
      heartbeat_(heartbeat_settings(options_)),
      directory_(make_directory(options_)),
      refresh_wake_(strand_),
      upstream_(detail::Backoff(options_.backoff_initial, options_.backoff_max)),
      subscribe_(detail::Backoff(options_.backoff_initial, options_.backoff_max)) {}

void Client::Impl::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
  }
  auto self = shared_from_this();
  asio::co_spawn(strand_, run(self),
                 asio::bind_cancellation_slot(stop_signal_.slot(), [self](std::exception_ptr) {
                   std::lock_guard lock(self->mu_);
                   self->done_ = true;
                   self->done_cv_.notify_all();
                 }));
}

void Client::Impl::stop() {
  std::unique_lock lock(mu_);
  if (!started_) {
    started_ = stop_requested_ = true;  // a later start() does nothing
    // run() never ran, but send_upstream() may have queued messages: they fail on the strand,
    // after every message posted before this.
    asio::post(strand_, [self = shared_from_this()] {
      self->stopping_ = true;
      self->stop_reason_ = "stopped";
      self->finish_upstream();
      self->finish_subscribe();
      std::lock_guard done_lock(self->mu_);
      self->done_ = true;
      self->done_cv_.notify_all();
    });
  } else if (!stop_requested_) {
    stop_requested_ = true;
    asio::post(strand_, [self = shared_from_this()] {
      self->stopping_ = true;
      if (self->stop_reason_.empty()) self->stop_reason_ = "stopped";
      self->stop_signal_.emit(asio::cancellation_type::terminal);
      if (self->conn_) self->conn_->end("stopped");
    });
  }
  if (loop_.in_loop_thread()) return;  // waiting here would block the thread run() needs
  done_cv_.wait(lock, [this] { return done_; });
}

void Client::Impl::report(ConnectionState state, std::uint32_t code, std::string reason) {
  if (!state_handler_) return;
  try {
    state_handler_(StateChange{state, code, std::move(reason)});
  } catch (...) {
    // A state handler only observes; its failure must not take the connection down.
  }
}

void Client::Impl::report_streams(const std::vector<wire::v1::StreamInfo>& list) {
  if (!streams_handler_) return;
  std::vector<StreamInfo> streams;
  streams.reserve(list.size());
  for (const auto& info : list) {
    if (info.stream() == protocol::kInboxStream) continue;  // not a stream of the list
    streams.push_back({info.stream(), info.app(), info.topic(), info.topic().empty()});
  }
  try {
    streams_handler_(streams);
  } catch (...) {
    // A streams handler only observes; its failure must not take the connection down.
  }
}

void Client::Impl::deliver(const Message& m) {
  if (auto it = handlers_.find(m.app); it != handlers_.end()) {
    it->second(m);
  } else if (other_handler_) {
    other_handler_(m);
  }
}

void Client::Impl::deliver_recall(const Recall& r) {
  if (auto it = recall_handlers_.find(r.app); it != recall_handlers_.end()) {
    it->second(r);
  } else if (other_recall_handler_) {
    other_recall_handler_(r);
  }
}

void Client::Impl::deliver_gap(const Gap& g) {
  if (gap_handler_) gap_handler_(g);
}

std::uint64_t Client::Impl::send_upstream(std::string app, std::string data, bool binary,
                                          UpstreamCallback done) {
  const std::string problem = upstream_problem(app, data, binary, options_.max_upstream_bytes);
  detail::UpstreamMessage m{random_request_id(), std::move(app), std::move(data), binary,
                            std::move(done)};
  const std::uint64_t id = m.id;
  const std::size_t bytes = m.bytes();
  UpstreamResult refused{id, UpstreamStatus::kInvalid, 0, problem};
  std::lock_guard lock(mu_);
  if (problem.empty()) {
    if (stop_requested_) {
      refused.status = UpstreamStatus::kStopped;
      refused.reason = "the client is stopped";
    } else if (upstream_count_ >= options_.max_upstream_messages ||
               upstream_bytes_ + bytes > options_.max_upstream_bytes) {
      refused.status = UpstreamStatus::kQueueFull;
      refused.reason = "upstream queue full: " + std::to_string(upstream_count_) + " of " +
                       std::to_string(options_.max_upstream_messages) + " messages, " +
                       std::to_string(upstream_bytes_) + " of " +
                       std::to_string(options_.max_upstream_bytes) + " bytes taken";
    } else {
      ++upstream_count_;
      upstream_bytes_ += bytes;
      // Posted under the lock: the strand takes messages in the order the calls took the lock,
      // and before the stop that a later stop() posts.
      asio::post(strand_, [self = shared_from_this(), m = std::move(m)]() mutable {
        self->enqueue_upstream(std::move(m));
      });
      return id;
    }
  }
  // Completed on the strand as every other outcome, never inside this call (Asio's rule).
  asio::post(strand_, [done = std::move(m.done), refused = std::move(refused)] {
    run_callback(done, refused);
  });
  return id;
}

void Client::Impl::enqueue_upstream(detail::UpstreamMessage m) {
  if (upstream_closed_) {
    // The client stopped by itself (a delivery failure) after the call was accepted.
    detail::UpstreamCompletion c;
    c.bytes = m.bytes();
    c.result = {m.id, UpstreamStatus::kStopped, 0, stop_reason_};
    c.done = std::move(m.done);
    complete_upstream(std::move(c));
    return;
  }
  upstream_.push(std::move(m));
  if (conn_) flush_upstream(*conn_);
}

void Client::Impl::flush_upstream(Connection& c) {
  if (!c.hello_ok || c.ended || c.closing) return;
  std::string frames;
  std::vector<detail::UpstreamCompletion> failed;
  upstream_.take_sendable(Clock::now(), c.server_max_body_bytes, frames, failed);
  if (!frames.empty()) {
    queue(c, frames);
    c.watchdog.cancel();  // to watch for the ack
  }
  for (auto& f : failed) complete_upstream(std::move(f));
}

void Client::Impl::complete_upstream(detail::UpstreamCompletion done) {
  {
    std::lock_guard lock(mu_);
    assert(upstream_count_ > 0 && upstream_bytes_ >= done.bytes);
    --upstream_count_;
    upstream_bytes_ -= done.bytes;
  }
  run_callback(done.done, done.result);
}

void Client::Impl::finish_upstream() {
  upstream_closed_ = true;
  const std::string reason = stop_reason_.empty() ? "stopped" : stop_reason_;
  for (auto& c : upstream_.fail_all(reason)) complete_upstream(std::move(c));
}

std::uint64_t Client::Impl::request_subscription(std::string app, std::vector<std::string> topics,
                                                 bool unsubscribe, std::uint32_t history,
                                                 SubscribeCallback done) {
  std::string problem = app_problem(app);
  if (problem.empty()) problem = detail::SubscribeQueue::problem(topics, history);
  detail::SubscribeRequest r;
  r.id = random_request_id();
  r.app = std::move(app);
  r.topics = std::move(topics);
  r.unsubscribe = unsubscribe;
  r.history = history;
  r.done = std::move(done);
  const std::uint64_t id = r.id;
  SubscribeResult refused{id, SubscribeStatus::kInvalid, 0, problem};
  std::lock_guard lock(mu_);
  if (problem.empty()) {
    if (stop_requested_) {
      refused.status = SubscribeStatus::kStopped;
      refused.reason = "the client is stopped";
    } else if (subscribe_count_ >= options_.max_subscribe_requests) {
      refused.status = SubscribeStatus::kQueueFull;
      refused.reason = "subscribe queue full: " + std::to_string(subscribe_count_) + " of " +
                       std::to_string(options_.max_subscribe_requests) + " requests taken";
    } else {
      ++subscribe_count_;
      // Posted under the lock, as for send_upstream(): call order, and before a later stop().
      asio::post(strand_, [self = shared_from_this(), r = std::move(r)]() mutable {
        self->enqueue_subscribe(std::move(r));
      });
      return id;
    }
  }
  asio::post(strand_, [done = std::move(r.done), refused = std::move(refused)] {
    run_callback(done, refused);
  });
  return id;
}

void Client::Impl::enqueue_subscribe(detail::SubscribeRequest r) {
  if (subscribe_closed_) {
    // The client stopped by itself (a delivery failure) after the call was accepted.
    detail::SubscribeCompletion c;
    c.result = {r.id, SubscribeStatus::kStopped, 0, stop_reason_};
    c.done = std::move(r.done);
    complete_subscribe(std::move(c));
    return;
  }
  subscribe_.push(std::move(r));
  if (conn_) flush_subscribe(*conn_);
}

void Client::Impl::flush_subscribe(Connection& c) {
  if (!c.hello_ok || c.ended || c.closing) return;
  std::string frames;
  std::vector<detail::SubscribeCompletion> failed;
  subscribe_.take_sendable(Clock::now(), c.server_max_body_bytes, frames, failed);
  if (!frames.empty()) {
    queue(c, frames);
    c.watchdog.cancel();  // to watch for the answer
  }
  for (auto& f : failed) complete_subscribe(std::move(f));
}

void Client::Impl::answer_subscribe(Connection& c, std::uint64_t id, std::uint32_t error_code) {
  // An id not in flight is a late answer (the request completed already) or a stray: ignored.
  if (auto done = subscribe_.on_answer(id, error_code, Clock::now())) {
    complete_subscribe(std::move(*done));
  }
  flush_subscribe(c);   // the next request
  c.watchdog.cancel();  // a retry to schedule, or one deadline less
}

void Client::Impl::complete_subscribe(detail::SubscribeCompletion done) {
  {
    std::lock_guard lock(mu_);
    assert(subscribe_count_ > 0);
    --subscribe_count_;
  }
  run_callback(done.done, done.result);
}

void Client::Impl::finish_subscribe() {
  subscribe_closed_ = true;
  const std::string reason = stop_reason_.empty() ? "stopped" : stop_reason_;
  for (auto& c : subscribe_.fail_all(reason)) complete_subscribe(std::move(c));
}

asio::awaitable<void> Client::Impl::run(std::shared_ptr<Impl> self) {
  // stopping_ is checked after every wait instead: a cancelled wait just returns.
  co_await asio::this_coro::throw_if_cancelled(false);
  asio::steady_timer delay_timer(strand_);
  while (!stopping_) {
    co_await update_endpoints();
    if (stopping_) break;
    RaceOutcome outcome = co_await race();
    std::chrono::milliseconds delay = outcome.delay;
    if (const std::shared_ptr<Connection> c = std::move(outcome.winner)) {
      // The winner is live, its writer and watchdog running; its reader goes on here. (Reading in
      // run() rather than in the attempt's spawned coroutine saves the spawn's frames for as long
      // as the connection lives: about 800 bytes per idle client.)
      if (stopping_) c->end(stop_reason_.empty() ? "stopped" : stop_reason_);
      try {
        co_await reader(c, /*until_hello_ok=*/false);
      } catch (const std::exception& e) {
        c->end(std::string("internal error: ") + e.what());
      } catch (...) {
        c->end("internal error");
      }
      c->end("closed");  // keeps the first reason; wakes the children
      while (c->children > 0) {
        c->join.expires_at(Clock::time_point::max());
        co_await c->join.async_wait(kUseAwaitable);
      }
      conn_.reset();
      delivery_.on_disconnected();
      upstream_.on_disconnected();
      subscribe_.on_disconnected();
      if (stopping_) break;
      delay = after_connection(*c);
    }
    if (stopping_) break;
    delay_timer.expires_after(delay);
    co_await delay_timer.async_wait(kUseAwaitable);
  }
  // A list fetch still running is abandoned.
  while (refreshing_) {
    refresh_signal_.emit(asio::cancellation_type::terminal);
    refresh_wake_.expires_at(Clock::time_point::max());
    co_await refresh_wake_.async_wait(kUseAwaitable);
  }
  finish_upstream();
  finish_subscribe();
  report(ConnectionState::kStopped, 0, stop_reason_);
  (void)self;  // kept alive until here
}

asio::awaitable<void> Client::Impl::update_endpoints() {
  if (!directory_) co_return;
  if (!refreshing_ && directory_->due(wall_ms())) spawn_refresh();
  // The embedded endpoints are the last resort: without a list, the fetch is worth its wait
  // (at most endpoint_list_timeout per URL). With one, the fetch runs beside the connection.
  while (refreshing_ && !stopping_ && !directory_->has_list(wall_ms())) {
    refresh_wake_.expires_at(Clock::time_point::max());
    co_await refresh_wake_.async_wait(kUseAwaitable);
  }
}

void Client::Impl::spawn_refresh() {
  refreshing_ = true;
  asio::co_spawn(strand_, refresh_endpoints(),
                 asio::bind_cancellation_slot(refresh_signal_.slot(),
                                              [self = shared_from_this()](std::exception_ptr) {
                                                self->refreshing_ = false;
                                                self->refresh_wake_.cancel();
                                              }));
}

asio::awaitable<void> Client::Impl::refresh_endpoints() {
  co_await directory_->refresh(heartbeat_.network());
  apply_heartbeat_hint();
}

void Client::Impl::apply_heartbeat_hint() {
  if (!options_.adaptive_heartbeat) return;
  const auto hint = directory_->heartbeat_hint(heartbeat_.network());
  if (!hint || hint->start_s == 0) return;
  // Only a network that has learned nothing yet takes it (HeartbeatPolicy::suggest); a live
  // connection announces the new interval in its next Ping, as after set_network().
  heartbeat_.suggest(hint->network, std::chrono::seconds(hint->start_s), Clock::now());
}

asio::awaitable<Client::Impl::RaceOutcome> Client::Impl::race() {
  // The round lives in this frame's shared_ptr only (attempts point at it): freed on return, so
  // a connected client keeps nothing of the race.
  auto round = std::make_shared<Round>(strand_);
  round->candidates = endpoints_to_try();
  const std::size_t width = std::max<std::size_t>(options_.race_width, 1);
  if (width > 1) {
    round->race_id = random_request_id();
  } else {
    round->candidates.resize(1);  // no racing: one endpoint per round, round-robin
  }
  report(ConnectionState::kConnecting, 0,
         connecting_text(round->candidates, width, options_.race_stagger));

  // Happy Eyeballs v2 (RFC 8305): the next attempt starts a stagger after the previous one, or at
  // once when an attempt fails, with at most `width` in flight.
  Clock::time_point next_start = Clock::now();
  std::size_t failed_seen = 0;
  while (!stopping_ && !round->winner) {
    std::size_t failed = 0;
    for (const auto& a : round->attempts) failed += a->ended ? 1 : 0;
    const std::size_t in_flight = round->attempts.size() - failed;
    if (failed > failed_seen) {
      failed_seen = failed;
      next_start = Clock::now();
    }
    const bool more = round->attempts.size() < round->candidates.size() && in_flight < width;
    if (more && Clock::now() >= next_start) {
      start_attempt(*round);
      next_start = Clock::now() +
                   std::clamp(options_.race_stagger, std::chrono::milliseconds(0), kMaxRaceStagger);
      continue;
    }
    if (!more && in_flight == 0) break;  // every candidate failed
    round->wake.expires_at(more ? next_start : Clock::time_point::max());
    co_await round->wake.async_wait(kUseAwaitable);  // early when an attempt changes
  }

  // The losers (all attempts when there is no winner) are closed at once; the round ends when
  // their coroutines have.
  const std::string why = stopping_ ? (stop_reason_.empty() ? std::string("stopped") : stop_reason_)
                                    : std::string("another attempt of the race won");
  for (const auto& a : round->attempts) {
    if (a != round->winner) a->end(why);
  }
  for (;;) {
    bool running = false;
    for (const auto& a : round->attempts) {
      running = running || (a != round->winner && a->children > 0);
    }
    if (!running) break;
    round->wake.expires_at(Clock::time_point::max());
    co_await round->wake.async_wait(kUseAwaitable);
  }
  for (const auto& a : round->attempts) a->round = nullptr;

  RaceOutcome outcome;
  outcome.winner = round->winner;  // when stopping, run() ends it and waits for it
  if (!outcome.winner && !stopping_) outcome.delay = after_failed_round(*round);
  co_return outcome;
}

// Plain functions hold what does not need to be in a coroutine: coroutine frames keep every local
// for as long as the coroutine lives, and run() lives as long as the client.
std::vector<Endpoint> Client::Impl::endpoints_to_try() const {
  // The source of the list: the endpoint directory's (the signed list, least loaded first, then
  // the embedded endpoints), or the application's endpoints alone.
  std::vector<Endpoint> list = directory_ ? directory_->candidates(wall_ms()) : options_.endpoints;
  // The endpoint to leave (it failed, or its server asked us to go) goes last. Racing, the others
  // keep their order, best first: leaving b, [a b c] is [a c b]. One attempt at a time, the list
  // turns round it instead, [c a b], so that the attempts walk the list round-robin.
  if (last_) {
    const auto it = std::find(list.begin(), list.end(), *last_);
    if (it != list.end()) {
      if (options_.race_width > 1) {
        std::rotate(it, std::next(it), list.end());
      } else {
        std::rotate(list.begin(), std::next(it), list.end());
      }
    }
  }
  // The endpoint to try first: the one that worked last, or where a Reconnect sent us.
  if (first_) {
    const auto it = std::find(list.begin(), list.end(), *first_);
    if (it != list.end()) {
      std::rotate(list.begin(), it, std::next(it));
    } else {
      list.insert(list.begin(), *first_);
    }
  }
  return list;
}

void Client::Impl::start_attempt(Round& round) {
  const std::size_t index = round.attempts.size();
  auto c = std::make_shared<Connection>(strand_);
  c->round = &round;
  round.attempts.push_back(c);
  ++c->children;
  // The session is the attempt: connect, Hello, read until HelloOk. Unless it won (run() then
  // reads on), its end ends the connection (keeping the first reason), which wakes the writer
  // and the watchdog.
  asio::co_spawn(strand_, session(c, round.candidates[index]),
                 [c, self = shared_from_this()](std::exception_ptr e) {
                   if (e || !c->hello_ok) {
                     std::string why = "closed";
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& x) {
                         why = std::string("internal error: ") + x.what();
                       } catch (...) {
                         why = "internal error";
                       }
                     }
                     c->end(std::move(why));
                   }
                   c->child_done();
                 });
}

bool Client::Impl::win_race(Connection& c) {
  Round* round = c.round;
  if (round == nullptr) return true;
  if (round->winner || stopping_) {
    c.end(stopping_ ? "stopped" : "another attempt of the race won");
    return false;
  }
  std::size_t index = 0;
  while (index < round->attempts.size() && round->attempts[index].get() != &c) ++index;
  assert(index < round->attempts.size());
  round->winner = round->attempts[index];
  // The others are closed at once: a late HelloOk on one of them would be a second connection.
  for (const auto& a : round->attempts) {
    if (a != round->winner) a->end("another attempt of the race won");
  }
  round->wake.cancel();
  conn_ = round->winner;
  first_ = round->candidates[index];  // the next round starts here (after_connection)
  last_.reset();
  return true;
}

std::optional<std::chrono::milliseconds> Client::Impl::obey_reconnect(const Connection& c,
                                                                      const Endpoint& ep) {
  if (!c.reconnect_delay) return std::nullopt;
  // The server asked; not a failure. Its delay plus a little jitter of our own, so the clients
  // it sends away together do not all come back in the same millisecond.
  first_ = c.reconnect_to;
  if (c.reconnect_elsewhere) {
    last_ = ep;  // tried last (and first_ set above, if any, before everything else)
  } else if (!first_) {
    first_ = ep;
  }
  backoff_.reset();
  return *c.reconnect_delay + backoff_.next();
}

std::chrono::milliseconds Client::Impl::after_connection(const Connection& c) {
  report(ConnectionState::kDisconnected, c.error_code, c.reason);
  assert(first_);  // win_race() set it to the connection's endpoint
  const Endpoint ep = first_ ? *first_ : options_.endpoints.front();
  if (auto delay = obey_reconnect(c, ep)) return *delay;
  // It stayed up: reconnect quickly, to the same endpoint first (first_ already says so), unless
  // the client closed it for a protocol error (a server that keeps sending something the client
  // rejects is retried at a growing interval).
  if (!c.closing) backoff_.reset();
  return backoff_.next();
}

std::chrono::milliseconds Client::Impl::after_failed_round(const Round& round) {
  // One report for the round: the attempts' reasons (a single attempt's as it is), and the first
  // error code a server sent, so that bad_credentials reaches the application.
  std::uint32_t code = 0;
  std::string reason;
  for (std::size_t i = 0; i < round.attempts.size(); ++i) {
    const Connection& a = *round.attempts[i];
    if (code == 0 && a.error_code != static_cast<std::uint32_t>(ErrorCode::kRaceLost)) {
      code = a.error_code;
    }
    if (round.attempts.size() == 1) {
      reason = a.reason;
    } else {
      if (!reason.empty()) reason += "; ";
      reason += to_text(round.candidates[i]) + ": " + a.reason;
    }
  }
  if (round.attempts.size() > 1) reason = "every endpoint failed: " + reason;
  report(ConnectionState::kDisconnected, code, std::move(reason));
  // A Reconnect during a handshake (overload) is obeyed as after a connection.
  for (std::size_t i = 0; i < round.attempts.size(); ++i) {
    if (auto delay = obey_reconnect(*round.attempts[i], round.candidates[i])) return *delay;
  }
  // One attempt at a time (race_width 1): the next round tries the next endpoint, round-robin.
  // Racing: the next round starts over from the best.
  first_.reset();
  last_.reset();
  if (round.attempts.size() == 1) last_ = round.candidates.front();
  return backoff_.next();
}

asio::awaitable<bool> Client::Impl::connect(std::shared_ptr<Connection> c, Endpoint ep) {
  // The deadline is the connection's watchdog timer (its watchdog starts only after this), so
  // that end() (a race lost, a stop) cancels it and with it the resolve or connect it races.
  if (c->ended) co_return false;
  asio::steady_timer& timer = c->watchdog;
  timer.expires_after(options_.connect_timeout);
  const std::string where = to_text(ep);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(ep.host, ec);
  if (!ec) {
    const tcp::endpoint remote(address, ep.port);
    if (local_address_) {
      if (std::string problem = bind_local(c->socket, *local_address_, remote); !problem.empty()) {
        c->end(std::move(problem));
        co_return false;
      }
    }
    // async_connect() uses the socket as it is when open (bound above), else opens it.
    auto r = co_await (c->socket.async_connect(remote, kUseAwaitable) ||
                       timer.async_wait(kUseAwaitable));
    if (r.index() == 1) {
      c->end("connect to " + where + ": no answer within " + ms_text(options_.connect_timeout));
      co_return false;
    }
    if (auto [cec] = std::get<0>(r); cec) {
      c->end("connect to " + where + ": " + cec.message());
      co_return false;
    }
    co_return true;
  }
  // A name: resolve, then try its addresses in order, all within the same deadline.
  tcp::resolver resolver(strand_);
  auto resolved =
      co_await (resolver.async_resolve(ep.host, std::to_string(ep.port), kUseAwaitable) ||
                timer.async_wait(kUseAwaitable));
  if (resolved.index() == 1) {
    c->end("resolve " + where + ": no answer within " + ms_text(options_.connect_timeout));
    co_return false;
  }
  auto [rec, results] = std::get<0>(std::move(resolved));
  if (rec) {
    c->end("resolve " + where + ": " + rec.message());
    co_return false;
  }
  if (local_address_) co_return co_await connect_bound(c, std::move(results), where);
  auto r = co_await (asio::async_connect(c->socket, results, kUseAwaitable) ||
                     timer.async_wait(kUseAwaitable));
  if (r.index() == 1) {
    c->end("connect to " + where + ": no answer within " + ms_text(options_.connect_timeout));
    co_return false;
  }
  if (auto [cec, endpoint] = std::get<0>(r); cec) {
    c->end("connect to " + where + ": " + cec.message());
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Client::Impl::connect_bound(std::shared_ptr<Connection> c,
                                                  tcp::resolver::results_type results,
                                                  std::string where) {
  // asio::async_connect(socket, results) closes and reopens the socket for each address, which
  // would drop the bind: one address at a time here, each bound, within connect()'s deadline
  // (c->watchdog, already running). The reason of a failure is the last address's.
  asio::steady_timer& timer = c->watchdog;
  std::string failure = "connect to " + where + ": no " +
                        (local_address_->is_v4() ? "IPv4" : "IPv6") + " address to reach from " +
                        local_address_->to_string();
  for (const auto& entry : results) {
    // end() (a race lost, a stop) closed the socket: reopening it for the next address would
    // outlive the attempt.
    if (c->ended) co_return false;
    const tcp::endpoint remote = entry.endpoint();
    if (remote.address().is_v4() != local_address_->is_v4()) continue;
    if (std::string problem = bind_local(c->socket, *local_address_, remote); !problem.empty()) {
      failure = std::move(problem);
      continue;
    }
    auto r = co_await (c->socket.async_connect(remote, kUseAwaitable) ||
                       timer.async_wait(kUseAwaitable));
    if (r.index() == 1) {
      c->end("connect to " + where + ": no answer within " + ms_text(options_.connect_timeout));
      co_return false;
    }
    const boost::system::error_code cec = std::get<0>(std::get<0>(r));
    if (!cec) co_return true;
    failure = "connect to " + where + ": " + cec.message();
  }
  c->end(std::move(failure));
  co_return false;
}

asio::awaitable<void> Client::Impl::session(std::shared_ptr<Connection> c, Endpoint ep) {
  const bool connected = co_await connect(c, ep);
  // stop() may have run while connect() completed: it ended `c`.
  if (!connected || c->ended || stopping_) co_return;

  if (!begin_handshake(*c)) co_return;
  spawn_child(c, writer(c));
  spawn_child(c, watchdog(c));
  co_await reader(c, /*until_hello_ok=*/true);
}

bool Client::Impl::begin_handshake(Connection& c) {
  boost::system::error_code ec;
  c.socket.set_option(tcp::no_delay(true), ec);
  c.socket.non_blocking(true, ec);  // the reader reads synchronously after a readiness wait
  if (ec) {
    c.end("socket: " + ec.message());
    return false;
  }
  if (tls_context_) {
    // The ClientHello goes first (the writer sends output() before anything else); the Hello
    // below waits in `out` until the channel is established.
    c.tls = std::make_unique<tls::TlsChannel>(tls_context_->native_handle(),
                                              tls::TlsChannel::Role::kClient,
                                              options_.tls.server_name, tls_session_);
    c.tls->start();
    if (!c.tls->error().empty()) {
      c.end("tls: " + c.tls->error());
      return false;
    }
  }
  wire::v1::Hello hello;
  hello.set_protocol_version(protocol::kProtocolVersion);
  hello.set_device_id(options_.device_id);
  hello.set_token(options_.token);
  c.hello_heartbeat_s = options_.adaptive_heartbeat
                            ? static_cast<std::uint32_t>(heartbeat_.interval().count())
                            : options_.heartbeat_s;
  hello.set_heartbeat_s(c.hello_heartbeat_s);
  hello.set_client(options_.client_name);
  if (c.round != nullptr) hello.set_race_id(c.round->race_id);
  if (options_.adaptive_heartbeat) {
    // What this network taught us, for the server's hints to other devices on it.
    if (protocol::valid_network_id(heartbeat_.network())) hello.set_network(heartbeat_.network());
    hello.set_settled_heartbeat_s(
        static_cast<std::uint32_t>(heartbeat_.settled_interval().count()));
  }
  protocol::append_frame(FrameType::kHello, hello, c.out);  // the writer sends it first
  const auto now = Clock::now();
  c.hello_deadline = now + options_.response_timeout;
  c.last_rx = now;
  retry_backoff_.reset();
  return true;
}

void Client::Impl::spawn_child(std::shared_ptr<Connection> c, asio::awaitable<void> child) {
  ++c->children;
  // The completion runs on the strand, also when the child threw. It holds the Impl too: the
  // child is a member coroutine. run() joins the children before it goes on.
  asio::co_spawn(strand_, std::move(child), [c, self = shared_from_this()](std::exception_ptr e) {
    if (e) c->end("internal error in a connection coroutine");
    c->child_done();
  });
}

asio::awaitable<void> Client::Impl::reader(std::shared_ptr<Connection> c, bool until_hello_ok) {
  for (;;) {
    auto [ec] = co_await c->socket.async_wait(tcp::socket::wait_read, kUseAwaitable);
    if (c->ended) co_return;
    if (ec) {
      c->end("read: " + ec.message());
      co_return;
    }
    if (!read_available(*c)) break;
    // Frames after the HelloOk in the same read were handled already; a partial one waits in
    // `in` for the next read, whoever does it.
    if (until_hello_ok && c->hello_ok) co_return;
  }
  if (c->closing && !c->ended) {
    // Give the writer a moment to send the Error frame queued by protocol_error().
    c->flush_waiter = true;
    c->linger.expires_after(kCloseLinger);
    c->write_signal.cancel();
    if (!c->out.empty() || !c->inflight.empty() || (c->tls && !c->tls->output().empty())) {
      co_await c->linger.async_wait(kUseAwaitable);
    }
    c->end(c->reason);
  }
}

bool Client::Impl::read_available(Connection& c) {
  const std::span<std::uint8_t> buffer = scratch_buffer();
  boost::system::error_code ec;
  const std::size_t n = c.socket.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return true;
  if (ec) {
    // Lost without an Error frame while waiting for a Pong: what a NAT that forgot the mapping
    // looks like when it answers with a reset.
    if (c.ping_outstanding) ping_failed(c, Clock::now());
    std::string why =
        ec == asio::error::eof ? "the server closed the connection" : "read: " + ec.message();
    if (c.tls && !c.tls->established()) why = "tls handshake: " + why;
    c.end(std::move(why));
    return false;
  }
  c.last_rx = Clock::now();
  const bool ping_was_outstanding = c.ping_outstanding;
  try {
    if (c.tls) {
      if (!consume_tls(c, buffer.first(n))) return false;
    } else if (!consume(c, buffer.first(n))) {
      return false;
    }
  } catch (const std::exception& e) {
    // From CursorStore::load (handlers and save() are caught in on_messages): delivery cannot be
    // promised any more.
    return fail_stop(c, e.what());
  }
  // Part of a frame still coming: a large answer on a slow link is progress, not a lost one.
  if (c.awaiting_pulls && !c.in.empty()) c.pull_progress_at = c.last_rx;
  // Any frame answers a ping: let the watchdog schedule the next one now.
  if (ping_was_outstanding) c.watchdog.cancel();
  return true;
}

bool Client::Impl::consume_tls(Connection& c, std::span<const std::uint8_t> cipher) {
  tls::TlsChannel& channel = *c.tls;
  const bool was_established = channel.established();
  // Invariant: `cipher` (the scratch buffer) stays untouched until read() returned 0 bytes:
  // consume() runs handlers, but nothing in them reads a socket on this thread.
  channel.feed(cipher);
  const std::span<std::uint8_t> plain = plain_buffer();
  for (;;) {
    const tls::TlsChannel::ReadResult r = channel.read(plain);
    // A ticket (TLS 1.3 sends it after the handshake) is kept even if this connection ends now.
    if (channel.session() && channel.session() != tls_session_) tls_session_ = channel.session();
    if (r.status == tls::TlsChannel::Status::kFailed) {
      // An alert for the server may wait in output(); the socket closes at once all the same.
      c.end("tls: " + channel.error());
      return false;
    }
    if (r.status == tls::TlsChannel::Status::kClosed) {
      c.end("tls: the server closed the connection (close_notify)");
      return false;
    }
    if (r.bytes == 0) break;
    if (!consume(c, plain.first(r.bytes))) return false;
  }
  // The handshake's next flight, a just-established channel's Hello, an alert: the writer's.
  if (!channel.output().empty() || (!was_established && channel.established() && !c.out.empty())) {
    c.write_signal.cancel();
  }
  return true;
}

bool Client::Impl::consume(Connection& c, std::span<const std::uint8_t> bytes) {
  // Parse straight from the scratch buffer unless a partial frame is waiting in `in`.
  std::span<const std::uint8_t> input = bytes;
  if (!c.in.empty()) {
    c.in.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    input = {reinterpret_cast<const std::uint8_t*>(c.in.data()), c.in.size()};
  }
  std::size_t used = 0;
  bool alive = true;
  while (alive && used < input.size()) {
    const protocol::ParseResult r = protocol::parse_frame(input.subspan(used), c.max_body_bytes);
    if (r.status == protocol::ParseStatus::kNeedMore) break;
    if (r.status == protocol::ParseStatus::kBroken) {
      return protocol_error(c, r.error,
                            std::string("broken frame from the server: ") +
                                std::string(protocol::to_string(r.error)));
    }
    used += r.frame.frame_bytes;
    alive = on_frame(c, r.frame);
  }
  if (!alive) return false;
  // Invariant: `in` holds exactly the bytes not parsed yet.
  if (c.in.empty()) {
    c.in.assign(reinterpret_cast<const char*>(input.data()) + used, input.size() - used);
  } else {
    c.in.erase(0, used);
  }
  if (c.in.empty() && c.in.capacity() > kKeepInputCapacity) std::string().swap(c.in);
  return true;
}

bool Client::Impl::on_frame(Connection& c, const protocol::FrameView& frame) {
  switch (frame.type) {
    case FrameType::kError:
      return on_error(c, frame.body);
    case FrameType::kReconnect:
      return on_reconnect(c, frame.body);
    case FrameType::kHelloOk:
      if (c.hello_ok) return protocol_error(c, ErrorCode::kUnexpectedFrame, "a second HelloOk");
      return on_hello_ok(c, frame.body);
    default:
      break;
  }
  if (!c.hello_ok) {
    return protocol_error(c, ErrorCode::kUnexpectedFrame, "a data frame before HelloOk");
  }
  switch (frame.type) {
    case FrameType::kPong: {
      auto pong = protocol::decode_body<wire::v1::Pong>(frame.body);
      if (!pong) return protocol_error(c, ErrorCode::kMalformedFrame, "a malformed Pong");
      send(c, delivery_.on_pong(pong->resync()));
      return true;
    }
    case FrameType::kNotify: {
      auto notify = protocol::decode_body<wire::v1::Notify>(frame.body);
      if (!notify) return protocol_error(c, ErrorCode::kMalformedFrame, "a malformed Notify");
      send(c, delivery_.on_notify(notify->stream(), notify->head_seq()));
      return true;
    }
    case FrameType::kMessages:
      return on_messages(c, frame.body);
    case FrameType::kUpstreamAck:
      return on_upstream_ack(c, frame.body);
    case FrameType::kStreams:
      return on_streams(c, frame.body);
    default:
      return protocol_error(c, ErrorCode::kUnexpectedFrame, "a client-only frame type");
  }
}

bool Client::Impl::on_hello_ok(Connection& c, std::span<const std::uint8_t> body) {
  auto ok = protocol::decode_body<wire::v1::HelloOk>(body);
  if (!ok) return protocol_error(c, ErrorCode::kMalformedFrame, "a malformed HelloOk");
  // Only the first attempt of a round to get here goes on; the HelloOk of a loser is not
  // processed at all (it is closed).
  if (!win_race(c)) return false;
  c.hello_ok = true;
  // Both directions now use the server's limit; ours caps it so that a server cannot make us
  // buffer more than we chose.
  c.server_max_body_bytes =
      ok->max_frame_bytes() != 0 ? ok->max_frame_bytes() : protocol::kDefaultMaxBodyBytes;
  c.max_body_bytes = std::min(c.server_max_body_bytes, options_.max_frame_bytes);
  // The server's answer is the interval it holds us to (ours, clamped to its range). An adaptive
  // heartbeat changes it later by announcing a new one in a Ping, within the server's range.
  c.heartbeat_min_s = ok->heartbeat_min_s();
  c.heartbeat_max_s = ok->heartbeat_max_s();
  if (c.heartbeat_min_s == 0 && c.heartbeat_max_s == 0 && ok->heartbeat_s() != 0) {
    // A server that does not state its range: an answer below or above what we announced is
    // its bound on that side.
    if (ok->heartbeat_s() < c.hello_heartbeat_s) c.heartbeat_max_s = ok->heartbeat_s();
    if (ok->heartbeat_s() > c.hello_heartbeat_s) c.heartbeat_min_s = ok->heartbeat_s();
  }
  c.idle_network = network_epoch_;
  set_heartbeat(c, ok->heartbeat_s() != 0      ? ok->heartbeat_s()
                   : options_.heartbeat_s != 0 ? options_.heartbeat_s
                                               : kFallbackHeartbeatS);
  c.next_ping = Clock::now() + std::chrono::seconds(c.heartbeat_s);
  c.watchdog.cancel();  // from the handshake deadline to the ping schedule
  std::string connected = first_ ? "connected to " + to_text(*first_) : "";
  if (c.tls) {
    connected += std::string(" over ") + std::string(c.tls->version()) +
                 (c.tls->resumed() ? " (session resumed)" : "");
  }
  report(ConnectionState::kConnected, 0, std::move(connected));
  send(c, delivery_.on_connected());
  // Everything not acknowledged yet, resends included: the ids are the same, so the server
  // stores each once. Likewise the subscribe request not answered yet (applying it twice is
  // harmless).
  flush_upstream(c);
  flush_subscribe(c);
  return !c.ended;  // queue() ends it when the server does not read
}

bool Client::Impl::on_error(Connection& c, std::span<const std::uint8_t> body) {
  auto error = protocol::decode_body<wire::v1::Error>(body);
  if (!error) return protocol_error(c, ErrorCode::kMalformedFrame, "a malformed Error");
  const auto code = static_cast<ErrorCode>(error->code());
  if (c.hello_ok && !protocol::is_fatal(code)) {
    // The connection stays; one request changed nothing. A failed pull is retried after a
    // backoff delay (server_busy and internal ask for one; it also bounds any other retry).
    delivery_.on_request_failed(code);
    pull_answered(c);
    if (delivery_.has_failed_pulls() && !c.retry_at) {
      c.retry_at = Clock::now() + retry_backoff_.next();
      c.watchdog.cancel();  // to schedule it
    }
    return true;
  }
  c.end("server error " + std::to_string(error->code()) + " (" +
            std::string(protocol::to_string(code)) + "): " + error->message(),
        error->code());
  return false;
}

bool Client::Impl::on_reconnect(Connection& c, std::span<const std::uint8_t> body) {
  auto reconnect = protocol::decode_body<wire::v1::Reconnect>(body);
  if (!reconnect) return protocol_error(c, ErrorCode::kMalformedFrame, "a malformed Reconnect");
  if (reconnect->reason() == wire::v1::RECONNECT_REASON_SUPERSEDED) {
    // The same device connected elsewhere: reconnect with backoff like after any drop, so two
    // instances of one device do not take the connection from each other in a tight loop.
    c.end("superseded: the device connected again elsewhere");
    return false;
  }
  c.reconnect_delay =
      std::chrono::milliseconds(std::min(reconnect->delay_ms(), kMaxReconnectDelayMs));
  if (!reconnect->endpoint().empty()) c.reconnect_to = parse_endpoint(reconnect->endpoint());
  c.reconnect_elsewhere = reconnect->reason() == wire::v1::RECONNECT_REASON_SHUTDOWN ||
                          reconnect->reason() == wire::v1::RECONNECT_REASON_DRAIN ||
                          reconnect->reason() == wire::v1::RECONNECT_REASON_OVERLOAD;
  c.end("the server asked to reconnect" +
        (reconnect->endpoint().empty() ? std::string() : " to " + reconnect->endpoint()) +
        " after " + std::to_string(c.reconnect_delay->count()) + " ms (reason " +
        std::to_string(static_cast<int>(reconnect->reason())) + ")");
  return false;
}

void Client::Impl::pull_answered(Connection& c) {
  c.awaiting_pulls = delivery_.pulls_waiting() > 0;
  c.pull_progress_at = Clock::now();
}

bool Client::Impl::on_messages(Connection& c, std::span<const std::uint8_t> body) {
  auto messages = protocol::decode_body<wire::v1::Messages>(body);
  if (!messages) return protocol_error(c, ErrorCode::kMalformedFrame, "a malformed Messages");
  boost::system::result<detail::Outbound> out;
  try {
    out = delivery_.on_messages(*messages, deliver_fn_, deliver_recall_fn_, deliver_gap_fn_);
  } catch (const std::exception& e) {
    return fail_stop(c, e.what());
  } catch (...) {
    return fail_stop(c, "unknown exception");
  }
  if (!out) {
    // Fatal codes only: we close after it (docs/protocol.md section 7).
    return protocol_error(c, ErrorCode::kUnexpectedFrame,
                          "Messages with a gap it did not announce");
  }
  pull_answered(c);
  send(c, *out);
  return !c.ended;  // queue() ends it when the server does not read
}

bool Client::Impl::on_upstream_ack(Connection& c, std::span<const std::uint8_t> body) {
  auto ack = protocol::decode_body<wire::v1::UpstreamAck>(body);
  if (!ack) return protocol_error(c, ErrorCode::kMalformedFrame, "a malformed UpstreamAck");
  // An id not in flight is an ack that came late (for a message already completed): ignored.
  if (auto done = upstream_.on_ack(ack->id(), ack->error_code(), Clock::now())) {
    complete_upstream(std::move(*done));
  }
  flush_upstream(c);    // the app's next message
  c.watchdog.cancel();  // a retry to schedule, or one ack deadline less
  return !c.ended;
}

bool Client::Impl::on_streams(Connection& c, std::span<const std::uint8_t> body) {
  auto streams = protocol::decode_body<wire::v1::Streams>(body);
  if (!streams) return protocol_error(c, ErrorCode::kMalformedFrame, "a malformed Streams");
  if (streams->error_code() != 0) {
    // A refusal of one Subscribe: the list is unchanged (docs/protocol.md section 11).
    answer_subscribe(c, streams->request_id(), streams->error_code());
    return !c.ended;
  }
  if (c.list.size() + static_cast<std::size_t>(streams->streams_size()) >=
      detail::Delivery::kMaxStreams) {
    return protocol_error(c, ErrorCode::kUnexpectedFrame, "a Streams list of too many streams");
  }
  for (auto& info : *streams->mutable_streams()) c.list.push_back(std::move(info));
  if (streams->request_id() != 0) c.list_request_id = streams->request_id();
  if (streams->more()) return true;  // the list goes on in the next frame

  const std::vector<wire::v1::StreamInfo> list = std::exchange(c.list, {});
  const std::uint64_t answered = std::exchange(c.list_request_id, 0);
  boost::system::result<detail::Outbound> out;
  try {
    out = delivery_.on_streams(list);
  } catch (const std::exception& e) {
    return fail_stop(c, e.what());  // CursorStore::load or save: delivery cannot be promised
  } catch (...) {
    return fail_stop(c, "unknown exception");
  }
  if (!out) return protocol_error(c, ErrorCode::kUnexpectedFrame, "a Streams list too long");
  send(c, *out);
  report_streams(list);
  // The request this list answers completes after on_streams showed the list.
  if (answered != 0) answer_subscribe(c, answered, 0);
  return !c.ended;
}

bool Client::Impl::protocol_error(Connection& c, ErrorCode code, std::string what) {
  if (c.ended || c.closing) return false;
  std::string frame;
  protocol::append_error(code, what, frame);
  queue(c, frame);
  c.closing = true;
  c.reason = "protocol error: the server sent " + what;
  return false;
}

bool Client::Impl::fail_stop(Connection& c, std::string what) {
  stopping_ = true;
  stop_reason_ = "delivery failed, client stopped: " + what;
  c.end(stop_reason_);
  return false;
}

void Client::Impl::send(Connection& c, const detail::Outbound& out) {
  std::string frames;
  if (out.ack) {
    wire::v1::Ack ack;
    ack.set_stream(out.ack->stream);
    ack.set_epoch(out.ack->epoch);
    ack.set_seq(out.ack->seq);
    protocol::append_frame(FrameType::kAck, ack, frames);
  }
  if (!out.pulls.empty() && !c.awaiting_pulls) {
    c.awaiting_pulls = true;
    c.pull_progress_at = Clock::now();
    c.watchdog.cancel();  // to watch for the answer
  }
  for (const auto& p : out.pulls) {
    wire::v1::Pull pull;
    pull.set_stream(p.stream);
    pull.set_epoch(p.epoch);
    pull.set_after_seq(p.after_seq);
    pull.set_limit(p.limit);
    protocol::append_frame(FrameType::kPull, pull, frames);
  }
  if (!frames.empty()) queue(c, frames);
}

void Client::Impl::queue(Connection& c, std::string_view frames) {
  if (c.ended) return;
  if (c.out.size() + c.inflight.size() + frames.size() > max_queued_bytes_) {
    c.end("outbound queue full: the server does not read");
    return;
  }
  c.out.append(frames);
  c.write_signal.cancel();
}

asio::awaitable<void> Client::Impl::writer(std::shared_ptr<Connection> c) {
  for (;;) {
    if (c->ended) co_return;
    if (!take_output(*c)) {
      if (c->ended) co_return;
      if (c->flush_waiter && c->out.empty()) c->linger.cancel();
      c->write_signal.expires_at(Clock::time_point::max());
      co_await c->write_signal.async_wait(kUseAwaitable);  // woken by queue(), the reader, end()
      continue;
    }
    auto [ec, n] = co_await asio::async_write(c->socket, asio::buffer(c->inflight), kUseAwaitable);
    c->inflight.clear();
    if (ec) {
      c->end("write: " + ec.message());
      co_return;
    }
  }
}

bool Client::Impl::take_output(Connection& c) {
  if (!c.tls) {
    std::swap(c.out, c.inflight);
    return !c.inflight.empty();
  }
  // Everything queued since the last write goes in one batch: one SSL_write, so a burst of acks
  // and pulls costs one record, not one per frame.
  if (!c.out.empty() && c.tls->established()) {
    if (!c.tls->write(c.out)) {
      c.end("tls: " + c.tls->error());
      return false;
    }
    c.out.clear();
  }
  std::swap(c.tls->output(), c.inflight);
  return !c.inflight.empty();
}

asio::awaitable<void> Client::Impl::watchdog(std::shared_ptr<Connection> c) {
  for (;;) {
    const std::optional<Clock::time_point> wake = check_deadlines(*c);
    if (!wake) co_return;
    c->watchdog.expires_at(*wake);
    co_await c->watchdog.async_wait(kUseAwaitable);  // early when woken through cancel()
  }
}

std::optional<Clock::time_point> Client::Impl::check_deadlines(Connection& c) {
  if (c.ended) return std::nullopt;
  const auto now = Clock::now();
  if (!c.hello_ok) {
    if (now >= c.hello_deadline) {
      c.end(c.tls && !c.tls->established()
                ? "tls handshake not complete within " + ms_text(options_.response_timeout)
                : "no HelloOk within " + ms_text(options_.response_timeout));
      return std::nullopt;
    }
    return c.hello_deadline;
  }
  if (c.retry_at && now >= *c.retry_at) {
    c.retry_at.reset();
    send(c, delivery_.retry_failed());
  }
  if (const auto sent = upstream_.oldest_in_flight();
      sent && now >= *sent + options_.response_timeout) {
    c.end("no UpstreamAck within " + ms_text(options_.response_timeout) + " of an Upstream");
    return std::nullopt;
  }
  if (const auto retry = upstream_.next_retry(); retry && now >= *retry) flush_upstream(c);
  if (const auto sent = subscribe_.in_flight_since();
      sent && now >= *sent + options_.response_timeout) {
    c.end("no Streams answer within " + ms_text(options_.response_timeout) + " of a Subscribe");
    return std::nullopt;
  }
  if (const auto retry = subscribe_.next_retry(); retry && now >= *retry) flush_subscribe(c);
  if (c.awaiting_pulls && now >= c.pull_progress_at + options_.response_timeout) {
    // A lost answer would stop the stream for good on this connection: pull again from the
    // same cursor on a new one (docs/protocol.md section 5).
    c.end("no answer to a Pull within " + ms_text(options_.response_timeout));
    return std::nullopt;
  }
  if (c.ended) return std::nullopt;
  if (c.ping_outstanding && c.last_rx >= c.ping_sent_at) ping_answered(c, now);
  if (c.ping_outstanding && now >= c.ping_sent_at + options_.response_timeout) {
    ping_failed(c, now);
    c.end("no Pong within " + ms_text(options_.response_timeout) + " of a Ping");
    return std::nullopt;
  }
  if (!c.ping_outstanding && now >= c.next_ping) send_ping(c, now);
  // While a ping is outstanding only its deadline matters; the reader wakes us earlier when
  // anything arrives.
  Clock::time_point wake =
      c.ping_outstanding ? c.ping_sent_at + options_.response_timeout : c.next_ping;
  if (c.retry_at) wake = std::min(wake, *c.retry_at);
  if (const auto sent = upstream_.oldest_in_flight()) {
    wake = std::min(wake, *sent + options_.response_timeout);
  }
  // A retry still due here could not go (the connection is closing): no need to wake for it.
  if (const auto retry = upstream_.next_retry(); retry && *retry > now) {
    wake = std::min(wake, *retry);
  }
  if (const auto sent = subscribe_.in_flight_since()) {
    wake = std::min(wake, *sent + options_.response_timeout);
  }
  if (c.awaiting_pulls) wake = std::min(wake, c.pull_progress_at + options_.response_timeout);
  if (const auto retry = subscribe_.next_retry(); retry && *retry > now) {
    wake = std::min(wake, *retry);
  }
  return wake;
}

void Client::Impl::send_ping(Connection& c, Clock::time_point now) {
  const std::uint32_t idle_s = c.heartbeat_s;
  // Announce the interval the policy will ask for once this ping is answered, so that the
  // server's deadline already follows when the longer wait begins. A network change during the
  // idle period makes it say nothing: the new network's own interval goes out instead.
  c.ping_idle_s = idle_s;
  c.ping_network = c.idle_network;
  c.idle_network = network_epoch_;
  std::uint32_t next_s = idle_s;
  if (options_.adaptive_heartbeat) {
    const auto next = c.ping_network == network_epoch_
                          ? heartbeat_.interval_after_success(std::chrono::seconds(idle_s), now)
                          : heartbeat_.interval();
    next_s = static_cast<std::uint32_t>(next.count());
    if (c.heartbeat_min_s != 0) next_s = std::max(next_s, c.heartbeat_min_s);
    if (c.heartbeat_max_s != 0) next_s = std::min(next_s, c.heartbeat_max_s);
  }
  std::string frame;
  if (next_s != idle_s) {
    wire::v1::Ping ping;
    ping.set_heartbeat_s(next_s);
    protocol::append_frame(FrameType::kPing, ping, frame);
    set_heartbeat(c, next_s);
  } else {
    protocol::append_empty_frame(FrameType::kPing, frame);
  }
  queue(c, frame);
  c.ping_outstanding = true;
  c.ping_sent_at = now;
  c.next_ping = now + std::chrono::seconds(c.heartbeat_s);
}

void Client::Impl::ping_answered(Connection& c, Clock::time_point now) {
  c.ping_outstanding = false;
  if (options_.adaptive_heartbeat && c.ping_network == network_epoch_) {
    heartbeat_.on_success(std::chrono::seconds(c.ping_idle_s), now);
  }
}

void Client::Impl::ping_failed(Connection& c, Clock::time_point now) {
  c.ping_outstanding = false;
  if (options_.adaptive_heartbeat && c.ping_network == network_epoch_) {
    heartbeat_.on_failure(std::chrono::seconds(c.ping_idle_s), now);
  }
}

void Client::Impl::set_heartbeat(Connection& c, std::uint32_t heartbeat_s) {
  c.heartbeat_s = heartbeat_s;
  heartbeat_interval_s_.store(heartbeat_s, std::memory_order_relaxed);
}

Client::Client(EventLoop& loop, ClientOptions options, std::shared_ptr<CursorStore> cursors)
    : impl_(std::make_shared<Impl>(loop, std::move(options), std::move(cursors))) {}

Client::~Client() { stop(); }

void Client::on_message(std::string app, MessageHandler handler) {
  impl_->handlers_[std::move(app)] = std::move(handler);
}

void Client::on_other_message(MessageHandler handler) {
  impl_->other_handler_ = std::move(handler);
}

void Client::on_recall(std::string app, RecallHandler handler) {
  impl_->recall_handlers_[std::move(app)] = std::move(handler);
}

void Client::on_other_recall(RecallHandler handler) {
  impl_->other_recall_handler_ = std::move(handler);
}

std::uint64_t Client::send_upstream(std::string app, std::string data, bool binary,
                                    UpstreamCallback done) {
  return impl_->send_upstream(std::move(app), std::move(data), binary, std::move(done));
}

void Client::on_gap(GapHandler handler) { impl_->gap_handler_ = std::move(handler); }

void Client::on_state(StateHandler handler) { impl_->state_handler_ = std::move(handler); }

void Client::on_streams(StreamsHandler handler) { impl_->streams_handler_ = std::move(handler); }

std::uint64_t Client::subscribe(std::string app, std::vector<std::string> topics,
                                SubscribeCallback done, std::uint32_t history) {
  return impl_->request_subscription(std::move(app), std::move(topics), /*unsubscribe=*/false,
                                     history, std::move(done));
}

std::uint64_t Client::unsubscribe(std::string app, std::vector<std::string> topics,
                                  SubscribeCallback done) {
  return impl_->request_subscription(std::move(app), std::move(topics), /*unsubscribe=*/true,
                                     /*history=*/0, std::move(done));
}

void Client::start() { impl_->start(); }

void Client::set_network(std::string network) {
  asio::post(impl_->strand_, [impl = impl_, network = std::move(network)] {
    if (impl->heartbeat_.network() == network) return;
    impl->heartbeat_.set_network(network);
    ++impl->network_epoch_;
  });
}

std::uint32_t Client::heartbeat_interval_s() const {
  return impl_->heartbeat_interval_s_.load(std::memory_order_relaxed);
}

void Client::stop() { impl_->stop(); }

}  // namespace herald
