#include "access/session.h"

#include <algorithm>
#include <chrono>
#include <exception>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "access/access_loop.h"
#include "access/heartbeat_advisor.h"
#include "common/crash_point.h"
#include "common/log.h"

namespace herald::access {

namespace asio = boost::asio;
using protocol::ErrorCode;
using protocol::FrameType;
namespace wire = protocol::wire;

namespace {

// Output buffers larger than this are released after use instead of kept for the next write.
constexpr std::size_t kKeepBufferBytes = 4096;

// Upstream messages of one connection being stored at once. Each holds its data (at most
// messages.max_payload_bytes) until the store completes, so this bounds what a device that sends
// without waiting for UpstreamAcks can pin; beyond it the frame is answered server_busy.
constexpr std::uint8_t kMaxUpstreamsInFlight = 32;
// Subscribe frames of one connection being handled at once; beyond it the device is answered
// busy (its client library sends one at a time).
constexpr std::uint8_t kMaxSubscribesInFlight = 4;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ErrorCode to_protocol_error(const boost::system::error_code& ec) {
  if (ec == logic::LogicError::kForbiddenStream) return ErrorCode::kUnknownStream;
  if (ec == logic::LogicError::kBadRequest) return ErrorCode::kBadRequest;
  // Full storage is busy to a device: nothing was stored, and an upstream retried after the
  // operator freed space is taken.
  if (ec == logic::LogicError::kBusy || ec == logic::LogicError::kStorageFull) {
    return ErrorCode::kServerBusy;
  }
  // Upstream: an app the device may not send to is one code, whether the app is unknown, has no
  // webhook or does not know the device; a payload too large is a field out of range.
  if (ec == logic::LogicError::kUnknownApp || ec == logic::LogicError::kUnknownDevice) {
    return ErrorCode::kUnknownApp;
  }
  if (ec == logic::LogicError::kPayloadTooLarge || ec == logic::LogicError::kTooManyTopics) {
    return ErrorCode::kBadRequest;
  }
  return ErrorCode::kInternal;
}

// Server-assisted heartbeat (docs/protocol.md section 4): the interval the device settled on for
// its network. Optional advice, not part of the handshake: a report the advisor cannot use (a bad
// network id, an interval outside the server's range) is ignored and logged at debug level, never
// refused. The network id is not logged: it is the app's, and may not be printable.
void record_heartbeat_report(HeartbeatAdvisor& advisor, const wire::Hello& hello,
                             const AccessOptions& o, std::int64_t now_ms) {
  const std::uint32_t settled_s = hello.settled_heartbeat_s();
  if (hello.network().empty() || settled_s == 0) return;
  if (settled_s < o.heartbeat_min_s || settled_s > o.heartbeat_max_s ||
      !advisor.record(hello.network(), hello.device_id(), settled_s, now_ms)) {
    log::debug("heartbeat_report_ignored", {{"device", hello.device_id()},
                                            {"network_bytes", hello.network().size()},
                                            {"settled_s", settled_s}});
  }
}

}  // namespace

Session::Session(AccessLoop& loop, Socket socket) : loop_(loop), socket_(std::move(socket)) {
  loop_.context().metrics.connections.fetch_add(1, std::memory_order_relaxed);
  if (SSL_CTX* tls = loop_.context().tls) {
    tls_ = std::make_unique<tls::TlsChannel>(tls, tls::TlsChannel::Role::kServer);
  }
  const auto now = AccessLoop::now_ms();
  deadline_ms_ = now + loop_.context().options.handshake_timeout_ms;
  // May shut down the oldest unauthenticated connection of the process to make room.
  loop_.admission().enter_pending(socket_.native_handle(), now);
}

Session::~Session() { close_now(); }

void Session::start() {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  if (ec) {
    close_now();
    return;
  }
  start_read();
}

void Session::start_read() {
  // Readiness without a buffer, and a completion handler rather than a coroutine: the pending
  // wait (a reactor operation holding `self`) is all an idle connection keeps for its read side.
  // A co_spawn'd read loop suspended here would pin its entry-point, own and async_wait frames,
  // about 900 bytes per connection, as much as all the rest an idle connection holds.
  socket_.async_wait(
      Socket::wait_read,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
}

void Session::on_readable(const boost::system::error_code& ec) {
  bool more = false;
  if (!ec && state_ != State::kClosed) {
    // Like an exception escaping a session coroutine: it ends this session only.
    try {
      more = read_ready();
    } catch (const std::exception& e) {
      log::warn("session_exception", {{"device", device_}, {"error", e.what()}});
    } catch (...) {
      log::warn("session_exception", {{"device", device_}});
    }
  }
  if (more && state_ != State::kClosed) return start_read();
  close_now();
}

bool Session::read_ready() {
  auto& scratch = loop_.scratch();
  boost::system::error_code ec;
  const std::size_t n = socket_.read_some(asio::buffer(scratch), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return true;
  if (ec) return false;                        // end of stream or reset
  if (state_ == State::kClosing) return true;  // flushing our last frames; input is ignored
  extend_deadline();

  // Nothing here suspends or re-enters: the scratch buffer is ours until we return.
  const std::span<const std::uint8_t> bytes(scratch.data(), n);
  if (tls_) return read_tls(bytes);
  take(bytes);
  return true;
}

bool Session::read_tls(std::span<const std::uint8_t> cipher) {
  auto& metrics = loop_.context().metrics;
  const bool was_established = tls_->established();
  tls_->feed(cipher);
  auto& plain = loop_.plain_scratch();
  tls::TlsChannel::ReadResult r;
  // A frame may close the session (state_ leaves kHandshake/kActive): the rest is not read.
  while (state_ == State::kHandshake || state_ == State::kActive) {
    r = tls_->read(plain);
    if (r.status != tls::TlsChannel::Status::kOk || r.bytes == 0) break;
    take({plain.data(), r.bytes});
  }
  if (!was_established && tls_->established()) {
    metrics.tls_handshakes_total.fetch_add(1, std::memory_order_relaxed);
    if (tls_->resumed()) metrics.tls_resumed_total.fetch_add(1, std::memory_order_relaxed);
  }
  if (r.status == tls::TlsChannel::Status::kClosed) return false;
  if (r.status == tls::TlsChannel::Status::kFailed) {
    // Plaintext to a TLS port, a client refusing the certificate, a forged record: OpenSSL's
    // alert (in the channel's output) is the answer, then the connection closes.
    metrics.tls_failures_total.fetch_add(1, std::memory_order_relaxed);
    log::debug("tls_failure", {{"device", device_}, {"error", tls_->error()}});
    begin_closing();
  }
  // The handshake's answers, a ticket or the alert.
  start_write();
  return true;
}

void Session::take(std::span<const std::uint8_t> bytes) {
  const std::size_t n = bytes.size();
  if (in_.empty()) {
    const std::size_t used = consume(bytes);
    if (used < n && (state_ == State::kHandshake || state_ == State::kActive)) {
      in_.assign(reinterpret_cast<const char*>(bytes.data() + used), n - used);
    }
  } else {
    in_.append(reinterpret_cast<const char*>(bytes.data()), n);
    const std::size_t used =
        consume({reinterpret_cast<const std::uint8_t*>(in_.data()), in_.size()});
    in_.erase(0, used);
    if (in_.empty()) std::string().swap(in_);
  }
}

std::size_t Session::consume(std::span<const std::uint8_t> bytes) {
  const auto& options = loop_.context().options;
  std::size_t used = 0;
  while (state_ == State::kHandshake || state_ == State::kActive) {
    // Before authentication only a small Hello is accepted.
    const std::uint32_t max_body =
        state_ == State::kHandshake ? options.max_hello_bytes : options.max_frame_bytes;
    const auto r = protocol::parse_frame(bytes.subspan(used), max_body);
    if (r.status == protocol::ParseStatus::kNeedMore) {
      // Invariant: needed_bytes <= kMaxHeaderBytes + max_body, so this reserve is bounded.
      if (r.needed_bytes > 0) in_.reserve(r.needed_bytes);
      break;
    }
    if (r.status == protocol::ParseStatus::kBroken) {
      send_error(r.error, "broken frame");
      break;
    }
    used += r.frame.frame_bytes;
    on_frame(r.frame);
  }
  return used;
}

void Session::on_frame(const protocol::FrameView& frame) {
  if (frame.type == FrameType::kHello) {
    if (state_ != State::kHandshake) return send_error(ErrorCode::kUnexpectedFrame, "second hello");
    return on_hello(frame.body);
  }
  if (state_ == State::kHandshake) {
    return send_error(ErrorCode::kUnexpectedFrame, "hello must come first");
  }
  switch (frame.type) {
    case FrameType::kPing:
      return on_ping(frame.body);
    case FrameType::kPull:
      return on_pull(frame.body);
    case FrameType::kAck:
      return on_ack(frame.body);
    case FrameType::kUpstream:
      return on_upstream(frame.body);
    case FrameType::kSubscribe:
      return on_subscribe(frame.body);
    case FrameType::kError: {
      // A device reporting an error needs no answer; it is logged for diagnosis. A fatal code
      // means the device is closing: so does the server (docs/protocol.md section 7).
      auto error = protocol::decode_body<wire::Error>(frame.body);
      if (!error) return send_error(ErrorCode::kMalformedFrame, "bad error");
      log::debug("device_error", {{"device", device_}, {"code", error->code()}});
      if (protocol::is_fatal(static_cast<ErrorCode>(error->code()))) begin_closing();
      return;
    }
    default:
      return send_error(ErrorCode::kUnexpectedFrame, "server-only frame type");
  }
}

void Session::on_hello(std::span<const std::uint8_t> body) {
  const auto& ctx = loop_.context();
  auto hello = protocol::decode_body<wire::Hello>(body);
  if (!hello) return send_error(ErrorCode::kMalformedFrame, "bad hello");
  if (hello->protocol_version() != protocol::kProtocolVersion) {
    return send_error(ErrorCode::kUnsupportedVersion, "protocol version 1 only");
  }
  if (redirect_hello()) return;
  if (!ctx.tokens.verify(hello->device_id(), hello->token(), unix_ms() / 1000)) {
    ctx.metrics.auth_failures_total.fetch_add(1, std::memory_order_relaxed);
    return send_error(ErrorCode::kBadCredentials, "bad device credentials");
  }
  // The route is taken before anything else is admitted: an attempt of a connection race that
  // lost this node (an attempt with the same race id holds the live connection) gets race_lost,
  // and device_ stays empty so that closing it does not detach the winner. Notifies routed here
  // from now on are posted to this loop, so they still queue behind the HelloOk queued below.
  if (ctx.router.attach(hello->device_id(), shared_from_this(), hello->race_id()) ==
      distribution::AttachResult::kRaceLost) {
    return send_error(ErrorCode::kRaceLost, "another attempt of this connection race won");
  }
  device_ = hello->device_id();
  const auto& o = ctx.options;
  const std::uint32_t wanted = hello->heartbeat_s() ? hello->heartbeat_s() : o.heartbeat_default_s;
  heartbeat_s_ = std::clamp(wanted, o.heartbeat_min_s, o.heartbeat_max_s);
  if (ctx.heartbeat_advisor != nullptr) {
    record_heartbeat_report(*ctx.heartbeat_advisor, *hello, o, unix_ms());
  }
  state_ = State::kActive;
  loop_.admission().leave_pending(socket_.native_handle());
  extend_deadline();
  ctx.metrics.authenticated.fetch_add(1, std::memory_order_relaxed);

  wire::HelloOk ok;
  ok.set_server_time_ms(static_cast<std::uint64_t>(unix_ms()));
  ok.set_heartbeat_s(heartbeat_s_);
  ok.set_heartbeat_min_s(o.heartbeat_min_s);
  ok.set_heartbeat_max_s(o.heartbeat_max_s);
  ok.set_max_frame_bytes(o.max_frame_bytes);
  std::string frame;
  protocol::append_frame(FrameType::kHelloOk, ok, frame);
  if (!queue(frame)) return;
  // Then the shared streams it reads: filed in the loop's index before their heads are read, so
  // a message stored after the head was read still notifies it.
  asio::co_spawn(socket_.get_executor(), load_streams(0), asio::detached);
}

void Session::on_ping(std::span<const std::uint8_t> body) {
  auto ping = protocol::decode_body<wire::Ping>(body);
  if (!ping) return send_error(ErrorCode::kMalformedFrame, "bad ping");
  if (ping->heartbeat_s() != 0) {
    const auto& o = loop_.context().options;
    heartbeat_s_ = std::clamp(ping->heartbeat_s(), o.heartbeat_min_s, o.heartbeat_max_s);
    extend_deadline();
  }
  std::string frame;
  // A Notify the device did not answer with a Pull or an Ack may have been lost on the way
  // (docs/protocol.md section 4, "Resync"): the heartbeat repairs it.
  if (resync_ || notify_unanswered_) {
    wire::Pong pong;
    pong.set_resync(true);
    protocol::append_frame(FrameType::kPong, pong, frame);
  } else {
    protocol::append_empty_frame(FrameType::kPong, frame);
  }
  if (queue(frame)) resync_ = notify_unanswered_ = false;
}

void Session::on_pull(std::span<const std::uint8_t> body) {
  auto& ctx = loop_.context();
  auto pull = protocol::decode_body<wire::Pull>(body);
  if (!pull) return send_error(ErrorCode::kMalformedFrame, "bad pull");
  notify_unanswered_ = false;
  ctx.metrics.pulls_total.fetch_add(1, std::memory_order_relaxed);
  auto read =
      ctx.messages.pull(device_, pull->stream(), pull->epoch(), pull->after_seq(), pull->limit());
  if (!read) return send_error(to_protocol_error(read.error()), read.error().message());

  wire::Messages reply;
  reply.set_stream(pull->stream());
  reply.set_epoch(read->epoch);
  reply.set_head_seq(read->head_seq);
  reply.set_epoch_changed(read->epoch_changed);
  reply.set_truncated_before(read->truncated_before);
  reply.set_more(read->more);
  for (auto& e : read->entries) {
    auto* entry = reply.add_entries();
    entry->set_seq(e.seq);
    entry->set_app(std::move(e.app));
    entry->set_message_id(std::move(e.message_id));
    entry->set_data(std::move(e.data));
    // The storage kinds carry the wire numbers (stream_store.h): never renumbered.
    static_assert(static_cast<int>(storage::DataKind::kTombstone) == wire::DATA_KIND_TOMBSTONE &&
                  static_cast<int>(storage::DataKind::kRecall) == wire::DATA_KIND_RECALL &&
                  static_cast<int>(storage::DataKind::kBinary) == wire::DATA_KIND_BINARY);
    entry->set_kind(static_cast<wire::DataKind>(e.kind));
    entry->set_sent_at_ms(static_cast<std::uint64_t>(e.sent_at_ms));
    entry->set_expires_at_ms(static_cast<std::uint64_t>(e.expires_at_ms));
  }
  // The store bounds the data bytes; the frame must also fit the device's limit with every
  // field counted, so trailing entries wait for the next pull (at least one entry is sent, which
  // the configuration guarantees fits: messages.max_payload_bytes < access.max_frame_bytes).
  while (reply.entries_size() > 1 && reply.ByteSizeLong() > ctx.options.max_frame_bytes) {
    reply.mutable_entries()->RemoveLast();
    reply.set_more(true);
  }
  ctx.metrics.entries_sent_total.fetch_add(static_cast<std::uint64_t>(reply.entries_size()),
                                           std::memory_order_relaxed);
  const auto now_ms = unix_ms();
  for (const auto& entry : reply.entries()) {
    if (entry.kind() == wire::DATA_KIND_TOMBSTONE) continue;
    ctx.metrics.delivery_delay.observe(
        std::chrono::milliseconds(now_ms - static_cast<std::int64_t>(entry.sent_at_ms())));
  }
  std::string frame;
  protocol::append_frame(FrameType::kMessages, reply, frame);
  queue(frame);
  HERALD_CRASH_POINT("after_pull_reply");
}

void Session::on_ack(std::span<const std::uint8_t> body) {
  auto& ctx = loop_.context();
  auto ack = protocol::decode_body<wire::Ack>(body);
  if (!ack) return send_error(ErrorCode::kMalformedFrame, "bad ack");
  notify_unanswered_ = false;
  ctx.metrics.acks_total.fetch_add(1, std::memory_order_relaxed);
  auto done = ctx.messages.ack(device_, ack->stream(), ack->epoch(), ack->seq());
  HERALD_CRASH_POINT("after_ack");
  if (!done) send_error(to_protocol_error(done.error()), done.error().message());
}

void Session::on_upstream(std::span<const std::uint8_t> body) {
  auto upstream = protocol::decode_body<wire::Upstream>(body);
  if (!upstream) return send_error(ErrorCode::kMalformedFrame, "bad upstream");
  const std::uint64_t id = upstream->id();
  if (upstreams_in_flight_ >= kMaxUpstreamsInFlight) {
    return send_upstream_ack(id, ErrorCode::kServerBusy);
  }
  logic::UpstreamMessage message;
  switch (upstream->kind()) {
    case wire::DATA_KIND_JSON:
      message.kind = storage::DataKind::kJson;
      break;
    case wire::DATA_KIND_BINARY:
      message.kind = storage::DataKind::kBinary;
      break;
    default:  // tombstones and recalls are server-made; unknown kinds are not guessed at
      return send_upstream_ack(id, ErrorCode::kBadRequest);
  }
  message.device = device_;
  message.id = id;
  message.app = std::move(*upstream->mutable_app());
  message.data = std::move(*upstream->mutable_data());
  ++upstreams_in_flight_;
  // The store validates and starts the append before returning, so the frames of one
  // connection are stored in the order they arrived; the answer comes back on this loop.
  loop_.context().upstream.async_store(
      std::move(message),
      asio::bind_executor(socket_.get_executor(), [self = shared_from_this(), id](
                                                      const boost::system::error_code& ec,
                                                      const logic::UpstreamStored&) {
        --self->upstreams_in_flight_;
        if (!ec) HERALD_CRASH_POINT("after_upstream_store");
        self->send_upstream_ack(id, ec ? to_protocol_error(ec) : ErrorCode::kOk);
      }));
}

void Session::on_subscribe(std::span<const std::uint8_t> body) {
  auto request = protocol::decode_body<wire::Subscribe>(body);
  if (!request) return send_error(ErrorCode::kMalformedFrame, "bad subscribe");
  if (request->id() == 0) return send_streams_refusal(0, ErrorCode::kBadRequest);
  if (subscribes_in_flight_ >= kMaxSubscribesInFlight) {
    return send_streams_refusal(request->id(), ErrorCode::kServerBusy);
  }
  ++subscribes_in_flight_;
  asio::co_spawn(socket_.get_executor(), subscribe(std::move(*request)), asio::detached);
}

asio::awaitable<void> Session::subscribe(wire::Subscribe request) {
  const auto self = shared_from_this();
  auto& topics = loop_.context().topics;
  std::vector<std::string> names(request.topics().begin(), request.topics().end());
  auto done =
      request.unsubscribe()
          ? co_await topics.async_unsubscribe(device_, request.app(), std::move(names), true)
          : co_await topics.async_subscribe(device_, request.app(), std::move(names),
                                            request.history(), true);
  --subscribes_in_flight_;
  if (!done) {
    // A device that is not registered for the app is told so like an Upstream would be.
    send_streams_refusal(request.id(), to_protocol_error(done.error()));
    co_return;
  }
  co_await load_streams(request.id());
}

void Session::send_streams_refusal(std::uint64_t request_id, ErrorCode code) {
  if (state_ != State::kActive) return;
  wire::Streams refusal;
  refusal.set_request_id(request_id);
  refusal.set_error_code(static_cast<std::uint32_t>(code));
  std::string frame;
  protocol::append_frame(FrameType::kStreams, refusal, frame);
  queue(frame);
}

void Session::refresh_streams() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    if (self->state_ == State::kActive) {
      asio::co_spawn(self->socket_.get_executor(), self->load_streams(0), asio::detached);
    }
  });
}

asio::awaitable<void> Session::load_streams(std::uint64_t request_id) {
  const auto self = shared_from_this();
  auto& topics = loop_.context().topics;
  auto subs = co_await topics.async_subscriptions(device_);
  if (state_ != State::kActive) co_return;
  if (!subs) {
    // The device keeps the list it has; an answer is owed only to a Subscribe, which it retries.
    if (request_id != 0) send_streams_refusal(request_id, to_protocol_error(subs.error()));
    co_return;
  }
  std::vector<std::uint64_t> ids;
  ids.reserve(subs->size());
  for (const auto& s : *subs) ids.push_back(s.stream);
  file_streams(std::move(ids));

  // The list, split over frames that fit the device's limit (a StreamInfo is at most ~180 bytes).
  const std::size_t budget = loop_.context().options.max_frame_bytes - 256;
  wire::Streams streams;
  streams.set_request_id(request_id);
  std::string frames;
  for (const auto& s : *subs) {
    auto head = topics.head(s);
    if (!head) {
      if (request_id != 0) send_streams_refusal(request_id, ErrorCode::kInternal);
      co_return;
    }
    if (streams.ByteSizeLong() > budget) {
      streams.set_more(true);
      protocol::append_frame(FrameType::kStreams, streams, frames);
      streams.clear_streams();
      streams.set_more(false);
    }
    wire::StreamInfo* info = streams.add_streams();
    info->set_stream(s.stream);
    info->set_app(s.app);
    info->set_topic(s.topic);
    info->set_epoch(head->epoch);
    info->set_head_seq(head->head_seq);
    info->set_start_seq(head->epoch == s.epoch ? s.start_seq : 0);
  }
  protocol::append_frame(FrameType::kStreams, streams, frames);
  queue(frames);
}

void Session::file_streams(std::vector<std::uint64_t> streams) {
  std::sort(streams.begin(), streams.end());
  for (const std::uint64_t old : shared_streams_) {
    if (!std::binary_search(streams.begin(), streams.end(), old)) loop_.remove_reader(old, this);
  }
  for (const std::uint64_t now : streams) {
    if (!std::binary_search(shared_streams_.begin(), shared_streams_.end(), now)) {
      loop_.add_reader(now, this);
    }
  }
  shared_streams_ = std::move(streams);
}

void Session::send_shared_notify(std::string_view frame) {
  if (state_ != State::kActive || !notify_fits()) return;
  out_.append(frame);
  notify_queued();
}

void Session::send_upstream_ack(std::uint64_t id, ErrorCode code) {
  // A closing connection drops the answer: the device sends the message again after it
  // reconnects, and a stored one is not stored twice.
  if (state_ != State::kActive) return;
  wire::UpstreamAck ack;
  ack.set_id(id);
  ack.set_error_code(static_cast<std::uint32_t>(code));
  std::string frame;
  protocol::append_frame(FrameType::kUpstreamAck, ack, frame);
  queue(frame);
}

void Session::notify(std::uint64_t stream, std::uint64_t head_seq,
                     distribution::NotifyPriority priority) {
  asio::post(socket_.get_executor(), [self = shared_from_this(), stream, head_seq, priority] {
    self->on_notify(stream, head_seq, priority);
  });
}

void Session::on_notify(std::uint64_t stream, std::uint64_t head_seq,
                        distribution::NotifyPriority priority) {
  if (state_ != State::kActive) return;
  auto& metrics = loop_.context().metrics;
  if (priority == distribution::NotifyPriority::kNormal && defer(stream, head_seq)) {
    metrics.notifies_deferred_total.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Urgent: whatever waits goes in the same write, and a waiting notify of the same stream is
  // covered by this one (the device pulls everything up to the head it is told).
  for (const auto& [waiting_stream, waiting_head] : deferred_) {
    if (waiting_stream == stream) {
      head_seq = std::max(head_seq, waiting_head);
      metrics.notifies_merged_total.fetch_add(1, std::memory_order_relaxed);
    } else {
      send_notify(waiting_stream, waiting_head);
    }
  }
  deferred_.clear();
  send_notify(stream, head_seq);
}

bool Session::defer(std::uint64_t stream, std::uint64_t head_seq) {
  // One waiting notify per stream; a device reads few streams, so a short vector is the map.
  constexpr std::size_t kMaxDeferredStreams = 16;
  if (loop_.context().options.normal_notify_delay_ms == 0) return false;
  for (auto& [waiting_stream, waiting_head] : deferred_) {
    if (waiting_stream == stream) {
      waiting_head = std::max(waiting_head, head_seq);
      loop_.context().metrics.notifies_merged_total.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  if (deferred_.size() >= kMaxDeferredStreams) return false;
  deferred_.emplace_back(stream, head_seq);
  if (!deferral_filed_) {
    deferral_filed_ = true;
    loop_.defer_notifies(shared_from_this());
  }
  return true;
}

void Session::flush_deferred() {
  deferral_filed_ = false;
  if (state_ == State::kActive) {
    for (const auto& [stream, head_seq] : deferred_) send_notify(stream, head_seq);
  }
  // Give the memory back: most connections go long stretches without a normal notify.
  std::vector<std::pair<std::uint64_t, std::uint64_t>>().swap(deferred_);
}

void Session::send_notify(std::uint64_t stream, std::uint64_t head_seq) {
  if (!notify_fits()) return;
  protocol::append_notify(stream, head_seq, out_);
  notify_queued();
}

bool Session::notify_fits() {
  if (queued_bytes() < loop_.context().options.output_high_watermark_bytes) return true;
  // The device is not reading: skip, and have it pull everything when it reads again.
  if (!resync_)
    log::info("notifies_skipped", {{"device", device_}, {"queued_bytes", queued_bytes()}});
  resync_ = true;
  loop_.context().metrics.notifies_skipped_total.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void Session::notify_queued() {
  notify_unanswered_ = true;
  loop_.context().metrics.notifies_sent_total.fetch_add(1, std::memory_order_relaxed);
  start_write();
  HERALD_CRASH_POINT("after_notify_sent");
}

void Session::supersede() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    if (self->state_ == State::kActive) {
      self->send_reconnect(wire::RECONNECT_REASON_SUPERSEDED);
    }
  });
}

void Session::shut_down() {
  if (state_ == State::kActive) {
    send_reconnect(wire::RECONNECT_REASON_SHUTDOWN);
  } else if (state_ == State::kHandshake) {
    close_now();
  }
}

bool Session::drain_away() {
  if (!drainable()) return false;
  drained_ = true;
  wire::Reconnect reconnect;
  reconnect.set_reason(wire::RECONNECT_REASON_DRAIN);
  reconnect.set_endpoint(loop_.redirect_target(false));
  std::string frame;
  protocol::append_frame(FrameType::kReconnect, reconnect, frame);
  // Not closed here: the device closes once it has what it needs, or the node's drain deadline
  // (or its heartbeat deadline) ends the connection.
  if (!queue(frame)) return false;
  loop_.context().metrics.drain_reconnects_total.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool Session::redirect_hello() {
  const auto& ctx = loop_.context();
  // Checked before the token: redirecting costs less than an HMAC, and an unauthenticated peer
  // learns nothing from it that the public endpoint list does not say.
  if (loop_.draining()) {
    ctx.metrics.drain_reconnects_total.fetch_add(1, std::memory_order_relaxed);
    send_reconnect(wire::RECONNECT_REASON_DRAIN, loop_.redirect_target(false));
    return true;
  }
  // Loops check concurrently, so a burst of Hellos may pass capacity by at most one per loop.
  const auto authenticated = ctx.metrics.authenticated.load(std::memory_order_relaxed);
  if (authenticated >= 0 &&
      static_cast<std::size_t>(authenticated) >= ctx.options.effective_capacity()) {
    ctx.metrics.overload_redirects_total.fetch_add(1, std::memory_order_relaxed);
    send_reconnect(wire::RECONNECT_REASON_OVERLOAD, loop_.redirect_target(true));
    return true;
  }
  return false;
}

void Session::expire() {
  auto& metrics = loop_.context().metrics;
  switch (state_) {
    case State::kHandshake:
      metrics.handshake_timeouts_total.fetch_add(1, std::memory_order_relaxed);
      send_error(ErrorCode::kHandshakeTimeout, "no hello in time");
      break;
    case State::kActive:
      metrics.heartbeat_timeouts_total.fetch_add(1, std::memory_order_relaxed);
      send_error(ErrorCode::kHeartbeatTimeout, "no heartbeat in time");
      break;
    case State::kClosing:  // the peer did not take our last frames in time
    case State::kClosed:
      close_now();
      break;
  }
  if (state_ != State::kClosed) loop_.watch(shared_from_this());
}

void Session::send_error(ErrorCode code, std::string_view message) {
  const bool fatal = protocol::is_fatal(code);
  if (fatal) {
    loop_.context().metrics.protocol_errors_total.fetch_add(1, std::memory_order_relaxed);
    log::debug("session_error", {{"device", device_}, {"code", protocol::to_string(code)}});
  }
  std::string frame;
  protocol::append_error(code, message, frame);
  if (!queue(frame)) return;
  if (fatal) begin_closing();
}

void Session::send_reconnect(wire::ReconnectReason reason, std::string_view endpoint) {
  wire::Reconnect reconnect;
  reconnect.set_reason(reason);
  if (!endpoint.empty()) reconnect.set_endpoint(std::string(endpoint));
  std::string frame;
  protocol::append_frame(FrameType::kReconnect, reconnect, frame);
  if (queue(frame)) begin_closing();
}

bool Session::queue(std::string_view frames) {
  if (state_ == State::kClosed || state_ == State::kClosing) return false;
  const auto& options = loop_.context().options;
  if (queued_bytes() + frames.size() > options.output_hard_limit_bytes) {
    loop_.context().metrics.slow_consumer_closes_total.fetch_add(1, std::memory_order_relaxed);
    log::info("slow_consumer", {{"device", device_}, {"queued_bytes", queued_bytes()}});
    // The device stopped reading. out_ holds whole frames never handed to the socket: notifies
    // and pull replies that the device asks for again after it reconnects. They are dropped and
    // the reason takes their place, behind only the bytes already being written; the close then
    // waits close_linger_ms for those, as after any fatal error (the wheel moves the deadline
    // earlier). So the queue shrinks at the limit instead of growing past it.
    std::string().swap(out_);
    protocol::append_error(ErrorCode::kSlowConsumer, "output queue full", out_);
    begin_closing();
    start_write();
    return false;
  }
  out_.append(frames);
  start_write();
  return true;
}

void Session::begin_closing() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosing;
  deadline_ms_ = AccessLoop::now_ms() + loop_.context().options.close_linger_ms;
  loop_.refile_if_earlier(*this);
  if (tls_) {
    // The last frames, then close_notify. Frames queued before the TLS handshake completed (a
    // handshake timeout's Error) cannot be sent: a TLS client would take them for garbage.
    if (tls_->established()) tls_->write(out_);
    out_.clear();
    tls_->close();
  }
  if (!writing_ && !has_output()) return close_now();
  start_write();
}

void Session::start_write() {
  if (writing_ || state_ == State::kClosed) return;
  if (tls_) {
    // Everything queued goes in one record (OpenSSL splits above 16 KiB). Before the handshake
    // completes, frames wait in out_ (write() refuses them) and only handshake bytes go.
    if (!out_.empty() && tls_->write(out_)) out_.clear();
    if (tls_->output().empty()) return;
    writing_ = true;
    out_inflight_.swap(tls_->output());
  } else {
    if (out_.empty()) return;
    writing_ = true;
    out_inflight_.swap(out_);
  }
  asio::async_write(socket_, asio::buffer(out_inflight_),
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      self->on_written(ec);
                    });
}

void Session::on_written(const boost::system::error_code& ec) {
  writing_ = false;
  if (ec) return close_now();
  out_inflight_.clear();
  if (out_inflight_.capacity() > kKeepBufferBytes) std::string().swap(out_inflight_);
  if (has_output()) return start_write();
  if (out_.capacity() > kKeepBufferBytes) std::string().swap(out_);
  if (state_ == State::kClosing) close_now();
}

void Session::close_now() {
  if (state_ == State::kClosed) return;
  const bool was_authenticated = !device_.empty() && state_ != State::kHandshake;
  state_ = State::kClosed;
  auto& ctx = loop_.context();
  for (const std::uint64_t stream : shared_streams_) loop_.remove_reader(stream, this);
  std::vector<std::uint64_t>().swap(shared_streams_);
  if (was_authenticated) {
    ctx.router.detach(device_, this);
    ctx.metrics.authenticated.fetch_sub(1, std::memory_order_relaxed);
  }
  ctx.metrics.connections.fetch_sub(1, std::memory_order_relaxed);
  // One that never authenticated leaves the pending ones (an authenticated one left in
  // on_hello), before the socket closes: its descriptor must not be shut down by an eviction
  // once it may belong to another connection (PendingConnections).
  if (!was_authenticated) loop_.admission().leave_pending(socket_.native_handle());
  boost::system::error_code ignored;
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
  std::string().swap(in_);
  std::string().swap(out_);
}

void Session::extend_deadline() {
  if (state_ != State::kActive) return;
  const auto& o = loop_.context().options;
  // 1.5 x the announced interval plus grace: one late heartbeat is tolerated, two are not.
  deadline_ms_ = AccessLoop::now_ms() + std::int64_t{heartbeat_s_} * 1500 +
                 std::int64_t{o.heartbeat_grace_s} * 1000;
  // Earlier than where the wheel holds the session after a Hello or Ping announced a shorter
  // heartbeat than the deadline before it; otherwise later, which costs the wheel nothing.
  loop_.refile_if_earlier(*this);
}

}  // namespace herald::access
