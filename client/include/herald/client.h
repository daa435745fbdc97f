// The Herald C++ client library: one long-lived connection per device, shared by every app on it.
//
//   herald::EventLoop loop;                       // I/O thread(s), shared by many clients
//   herald::ClientOptions o;
//   o.endpoints = {{"127.0.0.1", 7700}};
//   o.device_id = "phone-1";
//   o.token = "...";                              // from POST /v1/apps/{app}/devices
//   herald::Client c(loop, o, herald::make_file_cursor_store("cursors.dat"));
//   c.on_message("news", [](const herald::Message& m) { ... });
//   c.start();
//   ...
//   c.stop();                                     // before `loop` goes away
//
// Delivery contract: per stream, handlers see strictly increasing sequence numbers with no gap
// within an epoch, each message once. The client pulls from its cursor on every (re)connect and
// on every Notify; after the handlers of a batch ran it saves the cursor through the CursorStore
// and acks the server. A message reaches a handler again only if the process died after the
// handler ran and before the cursor was saved; a CursorStore that commits together with the
// application's own effects (see herald/journal_cursor_store.h and herald-device --out) closes
// that window too. A gap is never hidden: when the server says the stream was reset (new epoch)
// or entries expired (truncated), the cursor moves knowingly, on_gap tells the app, and delivery
// goes on from there.
//
// Control entries: a tombstone (a message replaced or revoked before delivery) moves the cursor
// and reaches no handler; a recall (a message revoked after it may have been delivered) goes to
// on_recall under the same cursor rules as a message.
//
// Upstream: send_upstream() queues a message from the device to an app's backend, sends it once
// connected, resends it with the same id after every reconnect until the server acknowledges it,
// and completes its callback exactly once. Not persisted: a process restart loses what is queued.
//
// Topics and broadcast (docs/protocol.md section 11): besides its inbox a device reads, for each
// app it is registered for, the app's broadcast stream and one stream per topic it joined. The
// server lists them (on_streams shows each list); subscribe() and unsubscribe() join and leave
// topics, with the same queueing, resending and completion rules as send_upstream(). Messages of
// those streams reach the same handlers as inbox messages, with Message::topic / broadcast set.
//
// Heartbeat (docs/protocol.md section 4): adaptive by default. Starting from heartbeat_s, each
// answered Ping lengthens the interval by a step; a Ping left unanswered falls back to the longest
// interval that worked and keeps it for the network the app named with set_network(), probing one
// step longer after a while. Each change is announced in a Ping so the server's deadline follows.
// See ClientOptions and client/README.md.
//
// Connecting (client/README.md "Racing"): the endpoints are raced as Happy Eyeballs races
// addresses: an attempt on the first, another every race_stagger (at once when one fails), the
// first to complete the handshake kept and the others closed. A dead, blackholed or slow endpoint
// costs about the stagger, not a timeout. race_width = 1 tries one endpoint at a time.
//
// Threading: an EventLoop is an io_context run by N threads. Each Client runs on its own strand
// of that loop, so a client's handlers never run concurrently with each other, while different
// clients run in parallel when the loop has several threads. See client/README.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

struct Endpoint {
  std::string host;  // an IP address literal or a name
  std::uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Parses "host:port" or "[ipv6]:port" (as in --server flags and Reconnect frames); nullopt when
// the host is empty or the port is not a number in 1..65535.
std::optional<Endpoint> parse_endpoint(std::string_view text);

struct Message {
  std::string app;
  std::uint64_t stream = 0;  // 0 = the device's inbox, else a topic or broadcast stream
  // The stream's topic, from the server's list: empty for the inbox and for a broadcast stream.
  std::string topic;
  bool broadcast = false;  // true when the stream is `app`'s broadcast stream (to all its devices)
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::string id;    // the message id the sender API returned
  std::string data;  // JSON text, or bytes when `binary`
  bool binary = false;
  std::int64_t sent_at_ms = 0;
  std::int64_t expires_at_ms = 0;
};

// A recall: the sender revoked message `recalled_id` of `app` after it may have reached the
// device, and the app should remove it (a notification shown, a cached copy). It may name a
// message this device never received (the revoke raced the delivery, the message expired, or the
// app was installed later): ignore ids you do not know.
struct Recall {
  std::string app;
  std::uint64_t stream = 0;  // where the recall entry itself sits, as for a Message
  std::string topic;         // as for a Message: the stream's topic, empty for inbox and broadcast
  bool broadcast = false;    // as for a Message: the recall sits in the app's broadcast stream
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::string id;           // the recall entry's own id
  std::string recalled_id;  // the message to remove: an id the sender API returned earlier
  std::int64_t sent_at_ms = 0;
};

// A gap the server announced in a stream the device reads: the cursor jumped instead of moving
// one entry at a time, so entries between `from_seq` of `from_epoch` and `resume_after_seq` of
// `epoch` will never reach a handler. Nothing is hidden: the delivery contract (strictly
// increasing seqs, no gap within an epoch) holds between two gaps.
enum class GapReason {
  kNewEpoch,   // the stream was reset, or recovery could have lost entries (docs/protocol.md
               // section 5, epoch_changed): the old epoch's entries after from_seq are gone
  kTruncated,  // entries after from_seq expired or were pruned (truncated_before); the epoch
               // stays, or is adopted when the device had no cursor yet (from_epoch 0)
};

struct Gap {
  std::uint64_t stream = 0;  // 0 = the device's inbox, as for a Message
  // For a topic or broadcast stream, its app and topic (empty topic and `broadcast` for the
  // broadcast stream); empty for the inbox, which holds every app's messages.
  std::string app;
  std::string topic;
  bool broadcast = false;
  GapReason reason = GapReason::kTruncated;
  // The cursor before: handlers saw the stream up to from_seq of from_epoch ({0, 0}: nothing).
  std::uint64_t from_epoch = 0;
  std::uint64_t from_seq = 0;
  // The cursor after: the next entry handed over is the one after resume_after_seq of `epoch`.
  std::uint64_t epoch = 0;
  std::uint64_t resume_after_seq = 0;
};

// How a send_upstream() ended.
enum class UpstreamStatus {
  kStored,     // the server stored it durably; the app's backend will get it
  kRejected,   // the server refused it for good (`error_code`: 34 unknown_app, 31 bad_request,
               // ...); sending it again unchanged fails again
  kQueueFull,  // refused at once: max_upstream_messages or max_upstream_bytes are taken by
               // messages not completed yet; try again after some complete
  kInvalid,    // refused before reaching the server: `app` is not an app id, data marked JSON
               // does not parse, or the frame is larger than the server accepts
  kStopped,    // the client stopped first; if it had been sent, the server may have stored it
};

struct UpstreamResult {
  std::uint64_t id = 0;  // the id send_upstream() returned
  UpstreamStatus status = UpstreamStatus::kStored;
  std::uint32_t error_code = 0;  // with kRejected: the server's herald::protocol::ErrorCode
  std::string reason;            // human-readable, empty for kStored
};

// One stream the device reads besides its inbox, as the server's last list named it.
struct StreamInfo {
  std::uint64_t stream = 0;  // the server's id, the same for every device reading it
  std::string app;
  std::string topic;       // empty for the app's broadcast stream
  bool broadcast = false;  // topic.empty(): every device registered for `app` reads it
};

// How a subscribe() or unsubscribe() ended.
enum class SubscribeStatus {
  kDone,       // the server stored the change (joining a topic already joined, or leaving one not
               // joined, is done too); on_streams has shown the new list before the callback runs
  kRejected,   // the server refused it and changed nothing (`error_code`: 31 bad_request, for
               // instance past 256 topics per device, 34 unknown_app); unchanged it fails again
  kQueueFull,  // refused at once: max_subscribe_requests requests are not completed yet
  kInvalid,    // refused before reaching the server: no topic or more than 32, a topic name not
               // 1..64 bytes of [A-Za-z0-9_.~%-], `app` not an app id, or history above 100
  kStopped,    // the client stopped first; if it had been sent, the server may have applied it
};

struct SubscribeResult {
  std::uint64_t id = 0;  // the id subscribe() / unsubscribe() returned
  SubscribeStatus status = SubscribeStatus::kDone;
  std::uint32_t error_code = 0;  // with kRejected: the server's herald::protocol::ErrorCode
  std::string reason;            // human-readable, empty for kDone
};

// Where a client keeps how far it got in each stream. Called only from the client's strand, so an
// implementation needs no locking as long as each client has its own store (stream ids are per
// device: never share one store between clients).
class CursorStore {
 public:
  struct Cursor {
    std::uint64_t epoch = 0;
    std::uint64_t seq = 0;
    friend bool operator==(const Cursor&, const Cursor&) = default;
  };
  virtual ~CursorStore() = default;
  // The saved cursor of `stream`, {0, 0} if none. Called once per stream and client lifetime,
  // before the first pull of that stream or when the server first lists it (a client that
  // stopped reading thousands of streams may forget some and load one again if it returns).
  virtual Cursor load(std::uint64_t stream) = 0;
  // Called after the handlers of a batch ran. Must be durable when it returns; throwing stops the
  // client (it cannot promise delivery any more).
  virtual void save(std::uint64_t stream, Cursor cursor) = 0;
};

// Keeps cursors in one small text file, replaced atomically (write a temporary file, fsync,
// rename, fsync the directory) on every save. A missing file means "no cursors yet"; a file that
// exists but cannot be parsed (including an empty one) throws std::runtime_error naming the path:
// silently starting over would deliver every retained message again. The directory must exist.
std::shared_ptr<CursorStore> make_file_cursor_store(std::filesystem::path path);
// Keeps cursors in memory only: a restarted client starts from the beginning of its streams.
std::shared_ptr<CursorStore> make_memory_cursor_store();

// The I/O threads that run clients. Many clients may share one loop.
class EventLoop {
 public:
  // Starts `threads` (>= 1) threads at once; throws std::invalid_argument otherwise.
  explicit EventLoop(int threads = 1);
  ~EventLoop();  // stops the threads and joins them; stop every client first
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// TLS for the device connection and the endpoint list (client/README.md "TLS").
struct TlsOptions {
  // Device connections are TLS (1.2 or 1.3, 1.3 preferred): on when the deployment's access
  // nodes run with access.tls. The Herald handshake (Hello, HelloOk) follows the TLS one, and
  // racing keeps the first attempt that completes both. The TLS handshake counts against the
  // attempt's HelloOk deadline (response_timeout, from the TCP connect). A TLS failure fails the
  // attempt like a refused connect (racing goes on, then the backoff); on_state's reason starts
  // with "tls" and says why ("tls: handshake: certificate: hostname mismatch ..."). kConnected's
  // reason names the version, and says "(session resumed)" when the handshake was abbreviated.
  bool enabled = false;
  // PEM file of the CAs that sign the servers' certificates; empty = the system's store.
  std::string ca_file;
  // The name the servers' certificate must carry, also sent as SNI. Endpoints are IP addresses
  // (all-IP access), so the name comes from here, never from the address or DNS. Required when
  // enabled with verify_peer: Client construction throws std::invalid_argument without it, and
  // when ca_file cannot be loaded.
  std::string server_name;
  // Off only for tests against a certificate whose CA is not at hand: without it anyone on the
  // path can read and forge the connection. Applies to https:// endpoint list URLs too.
  bool verify_peer = true;
};

struct ClientOptions {
  // The embedded endpoints, best first: tried after the endpoint list's (below), or alone when
  // there is none. Raced (below), or with race_width 1 tried one at a time, round-robin. May be
  // empty only when endpoint_list_urls is not.
  std::vector<Endpoint> endpoints;
  // The endpoint list (docs/endpoints.md, client/README.md "Endpoint directory"): where the
  // deployment serves its signed, load-sorted list (`http://HOST[:PORT][/PATH]`, PATH
  // /v1/endpoints by default), tried in order; empty = no list, only `endpoints`. With URLs,
  // endpoint_list_public_key (base64 of the 32-byte Ed25519 key `heraldd
  // --print-endpoint-public-key` prints) is required: a list it does not verify is never used.
  // The client fetches the list when it starts and again past half its validity; until a fetch
  // succeeds, and when one fails (DNS, a dead list server, a captive portal), it connects with the
  // list cached in endpoint_list_cache_file (if set, unexpired and verified), then `endpoints`.
  // It never needs DNS to reconnect: list hosts are IP literals. With neither a list nor a cache,
  // the first connection waits for the fetch (endpoint_list_timeout per URL); otherwise the fetch
  // runs beside the connection. The fetch names the client's network (set_network()), and the
  // list's heartbeat hint for it, if any, is where the adaptive heartbeat starts on a network it
  // has learned nothing about (docs/protocol.md section 4).
  std::vector<std::string> endpoint_list_urls;
  std::string endpoint_list_public_key;
  std::filesystem::path endpoint_list_cache_file;  // empty = no cache; the directory must exist
  std::chrono::milliseconds endpoint_list_timeout{5000};
  std::string device_id;
  std::string token;
  // Heartbeat (docs/protocol.md section 4). With adaptive_heartbeat off, the client pings every
  // heartbeat_s seconds (0 = the server's default), as the server clamped it in HelloOk.
  //
  // With adaptive_heartbeat on (the default, for phones, whose every radio wake-up costs battery),
  // heartbeat_s is where a network not seen yet starts. Each heartbeat answered in time lengthens
  // the interval by heartbeat_step_s, up to heartbeat_max_s; a heartbeat that fails (no Pong
  // within response_timeout, or the connection lost while waiting for it) falls back to the
  // longest interval that worked, which the client then keeps for that network (set_network()).
  // After heartbeat_probe_after of stable operation it tries one step longer, once (a probe). A
  // probe that fails at the same interval as the failure before it (nothing changed on that
  // network) doubles the wait before the next probe, up to heartbeat_probe_after_max; any other
  // failure, and a probe that works, bring the wait back to heartbeat_probe_after. The interval
  // stays within [heartbeat_min_s, heartbeat_max_s] widened to include heartbeat_s, and within the
  // server's range from HelloOk. Each change is announced to the server in the Ping before the
  // longer wait, so its idle deadline follows. What was learned lives in memory (32 networks at
  // most), for the client's lifetime.
  std::uint32_t heartbeat_s = 60;
  bool adaptive_heartbeat = true;
  std::uint32_t heartbeat_min_s = 30;
  std::uint32_t heartbeat_max_s = 600;
  std::uint32_t heartbeat_step_s = 60;
  std::chrono::seconds heartbeat_probe_after{30 * 60};
  std::chrono::seconds heartbeat_probe_after_max{24 * 60 * 60};
  std::chrono::milliseconds connect_timeout{5000};  // name resolution + TCP connect
  // The local (source) address the client's connections are bound to, an IP literal such as
  // "127.0.0.7"; empty = chosen by the system. For hosts with several addresses and for load
  // tools: a source address has about 28k ephemeral ports per server, so more connections to one
  // server need several (127.0.0.0/8 on loopback). The port stays the system's choice, made at
  // connect time (Linux IP_BIND_ADDRESS_NO_PORT), so each server gets all of the address's ports
  // rather than a share. A name's addresses of the other family are skipped; an IP literal
  // endpoint of the other family fails.
  // Construction throws std::invalid_argument when it is not an IP address; an address the host
  // does not have fails each attempt ("bind to ADDRESS: Cannot assign requested address", through
  // on_state).
  std::string local_address;
  // Connection racing (Happy Eyeballs, RFC 8305; client/README.md "Racing"). Each round of
  // connecting starts an attempt (TCP connect + Hello + HelloOk, each attempt with its own
  // connect_timeout and response_timeout) on the first endpoint, then on the next one every
  // race_stagger, or at once when an attempt fails, with at most race_width in flight. The first
  // attempt to get HelloOk becomes the connection and the others are closed at once; so a dead,
  // blackholed or slow endpoint costs about race_stagger, not a timeout. The round fails when
  // every endpoint failed; the reconnect backoff then applies. race_width 1 (or 0): no racing,
  // one endpoint per round, the next one after the backoff, round-robin.
  std::size_t race_width = 3;
  std::chrono::milliseconds race_stagger{250};
  // How long the server may take to answer: HelloOk after Hello, a Pong (or any frame) after a
  // Ping. Past it the connection is considered dead and the client reconnects.
  std::chrono::milliseconds response_timeout{10000};
  std::chrono::milliseconds backoff_initial{100};  // reconnect backoff: exponential with jitter
  std::chrono::milliseconds backoff_max{30000};
  std::uint32_t pull_limit = 100;  // entries asked for per Pull
  // A cap on the largest frame body accepted from the server. The limit in force is
  // HelloOk.max_frame_bytes (512 bytes before HelloOk), never more than this cap; the server cuts
  // its answers to that limit. A longer frame closes the connection.
  std::uint32_t max_frame_bytes = 1024 * 1024;
  std::string client_name = "herald-cpp/0.1";
  // Bounds of the upstream queue: messages accepted by send_upstream() and not completed yet, and
  // the bytes of their app ids and data. A call that would pass either fails with kQueueFull.
  std::size_t max_upstream_messages = 256;
  std::size_t max_upstream_bytes = 256 * 1024;
  // subscribe() and unsubscribe() requests accepted and not completed yet; a call past it fails
  // with kQueueFull. A request holds at most 32 topic names of 64 bytes.
  std::size_t max_subscribe_requests = 64;
  // TLS (above). The session a server hands out is offered on every later connection, to any
  // endpoint of the deployment (its nodes share ticket keys): a reconnect then costs an
  // abbreviated handshake, without the certificate exchange. Kept in memory, for the client's
  // lifetime. Endpoint list URLs may be https:// whether or not `enabled`: they are verified
  // against ca_file and the URL's host (server_name when the host is an IP literal).
  TlsOptions tls;
};

enum class ConnectionState { kConnecting, kConnected, kDisconnected, kStopped };

struct StateChange {
  ConnectionState state = ConnectionState::kConnecting;
  std::uint32_t error_code = 0;  // the server's herald::protocol::ErrorCode, if it sent one
  std::string reason;            // human-readable: the server's message, or the local error
};

// One device's connection. Owns its socket and timers; runs on its own strand of `loop`.
// `loop` must outlive the client. Construction throws std::invalid_argument when the options
// lack endpoints or a device id, or name a local_address that is not an IP address.
class Client {
 public:
  using MessageHandler = std::function<void(const Message&)>;
  using RecallHandler = std::function<void(const Recall&)>;
  using StateHandler = std::function<void(const StateChange&)>;
  using UpstreamCallback = std::function<void(const UpstreamResult&)>;
  using StreamsHandler = std::function<void(const std::vector<StreamInfo>&)>;
  using SubscribeCallback = std::function<void(const SubscribeResult&)>;
  using GapHandler = std::function<void(const Gap&)>;

  Client(EventLoop& loop, ClientOptions options, std::shared_ptr<CursorStore> cursors);
  ~Client();  // stop()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Handlers are set before start() and run on the client's strand, one at a time per client.
  // A message handler that throws stops the client: the cursor is saved up to the message before,
  // so the failed message is delivered again by the next client on the same CursorStore, and
  // on_state reports kStopped with the exception's text.
  void on_message(std::string app, MessageHandler handler);
  // For messages of apps without their own handler; without one, such messages are skipped
  // (the cursor still moves: the device has no such app).
  void on_other_message(MessageHandler handler);
  // Recalls of `app`'s messages, with the same rules as on_message: called for each recall entry
  // in stream order with the messages, never twice except where a message could be (the
  // CursorStore's window); one that throws stops the client and the recall comes again. A recall
  // may name a message the app never saw: ignore unknown ids. With a JournalCursorStore, call its
  // append(recall) here so the recall is journaled exactly once.
  void on_recall(std::string app, RecallHandler handler);
  // For recalls of apps without their own recall handler; without one they are skipped.
  void on_other_recall(RecallHandler handler);
  // Every gap the server announced (a new epoch, or entries truncated or expired), for every
  // app: called once per gap, in stream order with the messages (after the last message before
  // the gap, before the first after it), before the cursor moves past it. Without a handler the
  // cursor moves all the same. A cursor that starts at a topic's start_seq when the device joins
  // (or joins again) is no gap: those entries were pushed before it joined. One that throws
  // stops the client as a message handler does: the cursor has not moved, so the next client on
  // the same CursorStore is told of the gap again.
  void on_gap(GapHandler handler);
  // Every state change: kConnecting before each round of connecting (the reason names the
  // endpoints it races), kConnected after the winner's HelloOk (the reason names its endpoint:
  // "connected to HOST:PORT"), kDisconnected (with a server's error code and message, or the local
  // reason) after each failed round (every endpoint failed; the reason lists each one's failure,
  // the code is the first a server sent) or lost connection, kStopped once at the end. Attempts of
  // a round that lose to another, or fail while another goes on, are not reported. With
  // race_width 1 a round is one attempt, as before racing existed.
  void on_state(StateHandler handler);
  // Every complete list of the streams the device reads besides its inbox (docs/protocol.md
  // section 11), in the server's order: after each HelloOk, after each subscribe() or
  // unsubscribe() the server applied (before that request's callback), and whenever the app's
  // backend changed the device's topics. Each list replaces the one before: a stream no longer
  // listed is no longer read. Exceptions thrown by the handler are ignored.
  void on_streams(StreamsHandler handler);

  // Sends `data` from the device to `app`'s backend (an Upstream frame, docs/protocol.md section
  // 10). `binary` false means `data` is JSON text. Any thread, before or after start(). Returns
  // the message's id: random, 64-bit, never 0; the same id goes with every resend, so the server
  // stores it once.
  //
  // The message waits in a bounded queue (ClientOptions::max_upstream_*) and is sent once the
  // client is connected; one app's messages are sent in call order, each once the one before
  // completed, so they are stored in that order. Unacknowledged messages are sent again
  // after every reconnect. A server that answers busy or internal gets the message again later
  // (backoff as for reconnects) rather than failing it.
  //
  // `done` runs exactly once, on the client's strand, never inside this call: kStored once the
  // server acknowledged it; kRejected on a permanent refusal; kQueueFull or kInvalid at once;
  // kStopped when the client stops first (before stop() returns; for a call made after stop(),
  // shortly after on a loop thread). Exceptions thrown by `done` are ignored. The queue lives in
  // memory: messages still in it when the process ends are lost, never resent by a later run.
  std::uint64_t send_upstream(std::string app, std::string data, bool binary,
                              UpstreamCallback done);

  // Joins `topics` (1..32 names, each 1..64 bytes of [A-Za-z0-9_.~%-]) of `app` (an app the
  // device is registered for): the device then reads each topic's stream, from the topic's head
  // when it joined, less `history` (at most 100) of the latest entries already there. Returns
  // the request's id: random, 64-bit, never 0, the same with every resend (a Subscribe frame,
  // docs/protocol.md section 11). Any thread, before or after start().
  //
  // Requests wait in a bounded queue (ClientOptions::max_subscribe_requests) and go one at a
  // time, in call order over all apps, each once the one before completed; so a join and a later
  // leave of the same topic apply in that order. A request is sent once connected, and again
  // after every reconnect until the server answered it; busy and internal answers are retried
  // with backoff. Independent of send_upstream(): neither waits for the other.
  //
  // `done` runs exactly once, on the client's strand, never inside this call: kDone once the
  // server applied it (on_streams has shown the new list); kRejected on a refusal; kInvalid or
  // kQueueFull at once; kStopped when the client stops first (as for send_upstream()).
  // Exceptions thrown by `done` are ignored. Joins are kept by the server, across reconnects and
  // restarts; the queue itself lives in memory only.
  std::uint64_t subscribe(std::string app, std::vector<std::string> topics, SubscribeCallback done,
                          std::uint32_t history = 0);
  // Leaves `topics` of `app` (leaving a topic not joined is no error): the device no longer reads
  // their streams once the server's answer lists them no more. Same rules as subscribe().
  std::uint64_t unsubscribe(std::string app, std::vector<std::string> topics,
                            SubscribeCallback done);

  // Connects (racing the endpoints, see ClientOptions::race_width), and reconnects with
  // exponential backoff and jitter until stop(). Once per client;
  // later calls, and calls after stop(), do nothing.
  void start();
  // Tells the adaptive heartbeat which network the device is on now (an id of the app's choosing:
  // a Wi-Fi name, a carrier, ...); each network keeps the interval learned on it. Any thread,
  // before or after start(); the client starts on the network "". Takes effect at the next Ping
  // (announced in it when the interval differs) or the next connection. No effect with
  // adaptive_heartbeat off.
  void set_network(std::string network);
  // The interval in seconds the client now waits between Pings on its connection: the server's
  // answer in HelloOk, then each change it announced. 0 before the first HelloOk; after a
  // connection is lost, the last connection's value until the next HelloOk. Any thread.
  [[nodiscard]] std::uint32_t heartbeat_interval_s() const;
  // Closes the connection, cancels the timers and waits until the client's coroutines finished
  // and every queued upstream message and subscribe request completed (kStopped), so no handler
  // or callback runs any more when it returns. Idempotent; callable from any thread. Called on a
  // thread of the client's EventLoop (for example from a handler) it cannot wait without
  // deadlocking: it then only requests the stop and returns at once.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace herald
