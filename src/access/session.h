// Session: one device connection on an access node.
//
//   socket ──bytes──▶ on_readable ──frames──▶ on_frame ──▶ logic (pull, ack) ──▶ out_ ──▶ writer
//                                               └──▶ upstream, once stored ──▶ UpstreamAck ──▶ out_
//   router ──notify (any thread, posted)──────────────────────────────────────▶ out_
//   loop's fan-out ──a topic's Notify, encoded once (loop thread)──────────────▶ out_
//   Subscribe ──▶ logic (topics) ──▶ Streams ──▶ out_, and the loop's reader index updated
//
// Lifetime: shared_ptr, kept alive by its pending read wait, pending writes and posted notifies;
// the loop's timing wheel and the router hold it weakly. It lives on one AccessLoop and every
// member runs on that loop's thread, except notify() and supersede(), which post to it.
//
// Until its Hello is verified it is one of the process's pending connections
// (ConnectionAdmission, found by its socket's descriptor: the session stores nothing for it),
// which may shut its socket down from another loop to admit a newer connection; it then sees the
// end of stream and closes as usual. It leaves them when it authenticates or, before that, as it
// closes (close_now, every close path), before its socket is closed.
//
// TLS (access.tls): a TlsChannel sits between the socket and the frames. What is read is
// decrypted into the loop's plain scratch buffer and consumed as plaintext is; frames queue as
// plaintext in out_ and are encrypted when the writer takes them, every queued frame in one
// record. The TLS handshake runs within the Hello's deadline; a TLS failure closes the connection
// after OpenSSL's alert. With TLS an idle connection also keeps OpenSSL's SSL object and keys
// (docs/security.md), never a record buffer.
//
// Memory while idle: the object itself, the socket and one pending readiness wait; the read side
// waits without a buffer (the loop's scratch buffer is used while reading) and without a coroutine
// (see start_read), `in_` holds only a partial frame, and the output strings give back their
// memory after a large write. Output is bounded: above the high watermark notifies are skipped
// and the device is asked to resync; at the hard limit what waits is dropped for an
// Error{slow_consumer} and the connection closes after it. Upstream messages being stored are
// bounded per connection too (kMaxUpstreamsInFlight in session.cc); beyond it the device is
// answered busy.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "access/timing_wheel.h"
#include "distribution/router.h"
#include "protocol/frame_codec.h"
#include "tls/tls_channel.h"

namespace herald::access {

class AccessLoop;

class Session final : public distribution::DeviceLink,
                      public std::enable_shared_from_this<Session> {
 public:
  // Bound to the loop's io_context itself rather than to a type-erased any_io_executor: 48 bytes
  // less in every session and in every operation pending on its socket.
  using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp,
                                                  boost::asio::io_context::executor_type>;

  Session(AccessLoop& loop, Socket socket);
  ~Session() override;

  // Starts reading. Loop thread.
  void start();

  // distribution::DeviceLink; any thread.
  void notify(std::uint64_t stream, std::uint64_t head_seq,
              distribution::NotifyPriority priority) override;
  void supersede() override;
  void refresh_streams() override;
  // The loop's fan-out of a shared stream: `frame` is the encoded Notify, the same bytes for
  // every reader; skipped (and a resync asked for) above the output high watermark. Loop thread.
  void send_shared_notify(std::string_view frame);
  // A notify delivered on the loop's own thread (the fan-out of a normal-priority one).
  void notify_here(std::uint64_t stream, std::uint64_t head_seq,
                   distribution::NotifyPriority priority) {
    on_notify(stream, head_seq, priority);
  }
  // The shared streams this session is filed under in the loop's index, sorted.
  [[nodiscard]] std::span<const std::uint64_t> shared_streams() const { return shared_streams_; }
  // The normal-notify delay this session filed for has passed: send what waits. Loop thread.
  void flush_deferred();

  // The server is stopping: ask the device to reconnect elsewhere, then close. Loop thread.
  void shut_down();
  // The node is draining: ask the device to reconnect elsewhere (Reconnect{DRAIN}, naming a peer
  // when one is known). Unlike shut_down() the connection stays open and served until the device
  // closes it (a client may first finish what it was doing) or the node stops. True when a
  // frame was queued: the session is authenticated and was not asked before. Loop thread.
  bool drain_away();
  // Whether drain_away() would send a frame now. Loop thread.
  [[nodiscard]] bool drainable() const { return state_ == State::kActive && !drained_; }
  // The timing wheel found deadline_ms() passed. Loop thread.
  void expire();

  [[nodiscard]] std::int64_t deadline_ms() const { return deadline_ms_; }
  [[nodiscard]] bool closed() const { return state_ == State::kClosed; }
  // Where the loop's timing wheel filed this session; only the wheel uses it.
  TimingWheelHook& wheel_hook() { return wheel_hook_; }

 private:
  enum class State : std::uint8_t { kHandshake, kActive, kClosing, kClosed };

  // Waits for the socket to become readable; on_readable() follows. Loop thread.
  void start_read();
  void on_readable(const boost::system::error_code& ec);
  // Reads what is ready into the loop's scratch buffer and consumes its frames. False when the
  // connection is over (end of stream, a reset).
  bool read_ready();
  // Decrypts what was read (TLS) and takes the plaintext; false when the peer ended TLS.
  bool read_tls(std::span<const std::uint8_t> cipher);
  // Consumes the frames of plaintext just read, keeping a partial frame in in_.
  void take(std::span<const std::uint8_t> bytes);
  // Consumes whole frames from `bytes`; returns how many bytes were consumed. Sets state_ to
  // kClosing on a broken frame.
  std::size_t consume(std::span<const std::uint8_t> bytes);
  void on_frame(const protocol::FrameView& frame);
  void on_hello(std::span<const std::uint8_t> body);
  // Before a Hello is verified: a draining node, or one holding access.capacity authenticated
  // connections, answers with a Reconnect (DRAIN or OVERLOAD) naming a peer, and closes. True
  // when it did so.
  bool redirect_hello();
  void on_ping(std::span<const std::uint8_t> body);
  void on_pull(std::span<const std::uint8_t> body);
  void on_ack(std::span<const std::uint8_t> body);
  // Hands an Upstream to the logic layer; UpstreamAck follows once it is stored or refused.
  void on_upstream(std::span<const std::uint8_t> body);
  void send_upstream_ack(std::uint64_t id, protocol::ErrorCode code);
  // Subscribe: answered by Streams once the change is stored (or refused).
  void on_subscribe(std::span<const std::uint8_t> body);
  boost::asio::awaitable<void> subscribe(protocol::wire::Subscribe request);
  // Reloads the device's shared streams, refiles the session in the loop's index, and sends
  // them in Streams frames answering `request_id` (0: unprompted).
  boost::asio::awaitable<void> load_streams(std::uint64_t request_id);
  void send_streams_refusal(std::uint64_t request_id, protocol::ErrorCode code);
  void file_streams(std::vector<std::uint64_t> streams);
  void on_notify(std::uint64_t stream, std::uint64_t head_seq,
                 distribution::NotifyPriority priority);
  // Holds a normal-priority notify until the loop's delay passes; false when it must go now.
  bool defer(std::uint64_t stream, std::uint64_t head_seq);
  // Queues one Notify frame, unless the device is not reading (then it is told to resync).
  void send_notify(std::uint64_t stream, std::uint64_t head_seq);
  // Below the output high watermark; else the notify is skipped and a resync asked for.
  bool notify_fits();
  // A notify was appended to out_: count it and write.
  void notify_queued();

  // Sends an Error frame; a fatal code also closes the connection after the frame is flushed.
  void send_error(protocol::ErrorCode code, std::string_view message);
  // Sends a Reconnect frame (naming `endpoint`, host:port, when not empty) and closes after it is
  // flushed.
  void send_reconnect(protocol::wire::ReconnectReason reason, std::string_view endpoint = {});
  // Queues encoded frames; false when the connection is closing, or the hard limit is reached
  // (then the queue is replaced by Error{slow_consumer} and the connection closes after it).
  bool queue(std::string_view frames);
  void begin_closing();
  void start_write();
  void on_written(const boost::system::error_code& ec);
  void close_now();
  void extend_deadline();
  [[nodiscard]] std::size_t queued_bytes() const {
    return out_.size() + out_inflight_.size() + (tls_ ? tls_->output().size() : 0);
  }
  // Bytes wait for the writer: frames, or (TLS) records and alerts.
  [[nodiscard]] bool has_output() const {
    return !out_.empty() || (tls_ && !tls_->output().empty());
  }

  AccessLoop& loop_;
  Socket socket_;
  std::string device_;        // set once authenticated
  std::string in_;            // a partial frame carried over between reads; usually empty
  std::string out_;           // frames waiting for the writer
  std::string out_inflight_;  // frames (TLS: records) being written
  std::unique_ptr<tls::TlsChannel> tls_;  // null: plaintext
  std::int64_t deadline_ms_ = 0;
  std::uint32_t heartbeat_s_ = 0;
  TimingWheelHook wheel_hook_;  // 4 bytes, in what was padding
  State state_ = State::kHandshake;
  bool writing_ = false;
  bool resync_ = false;  // notifies were skipped: ask the device to pull everything
  // A Notify went out and no Pull or Ack came since: it may have been lost, so the next Pong
  // asks for a resync too.
  bool notify_unanswered_ = false;
  bool drained_ = false;                   // asked to leave by a drain (drain_away)
  std::uint8_t upstreams_in_flight_ = 0;   // Upstream frames not yet answered
  std::uint8_t subscribes_in_flight_ = 0;  // Subscribe frames not yet answered
  bool deferral_filed_ = false;            // the loop will call flush_deferred()
  // Normal-priority notifies waiting to be sent: (stream, head_seq), one per stream, few streams.
  // Usually empty, and then it owns no memory.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> deferred_;
  // The shared streams (topics, broadcast) this session is filed under in the loop's index.
  std::vector<std::uint64_t> shared_streams_;
};

}  // namespace herald::access
