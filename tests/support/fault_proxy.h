// FaultProxy: a loopback TCP proxy for reliability tests that understands Herald's frames, so a
// test can lose, hold back or cut the connection at one chosen frame (docs/faultproxy.md).
//
//   device (Client, RawPeer) ──TCP──▶ FaultProxy ──TCP──▶ heraldd (device port)
//
//   per connection and direction ("upstream" device → server, "downstream" server → device):
//
//     from-socket ──read──▶ frame splitter ──rules──▶ queue (bounded) ──writer──▶ to-socket
//                           (type + LEB128            data pieces,       waits for each piece's
//                            length, from the         cut / stall / FIN  release time; stalls;
//                            header alone)            markers            cuts; passes the FIN on
//
// The splitter needs only a frame's header (at most 5 bytes) to know its type and size, so a
// frame of any size streams through in pieces and a rule acts on it as a whole. Bodies are never
// decoded. A header that is not a valid Herald header (an unknown type, a bad length) switches
// that direction of that connection to raw forwarding for good: the proxy must not become the
// thing under test. Sizes are not judged (the limit is the largest encodable body), so a frame
// too large for heraldd still reaches heraldd.
//
// Rules: (direction, frame type or any, n-th occurrence or every one, action). A rule counts the
// frames that match it from the moment it was added, over every connection through the proxy
// (the connection in place and all later ones), in the order the proxy reads them. A one-shot
// rule acts on its n-th match and is spent; an `every` rule acts on each match until removed.
// When several rules act on one frame, the one added first decides and the others do not count
// it as acted on (a one-shot rule whose n-th match this was is spent all the same).
//
// Actions:
//   kDrop   the frame's bytes vanish; the connection stays up.
//   kDelay  the frame waits `delay` from when it was read before it is written; every later byte
//           of that direction queues behind it (order is kept).
//   kCut    when the frame's turn to be written comes (all before it in that direction written),
//           both sockets are reset (SO_LINGER 0 + close: each end reads ECONNRESET); the frame
//           and everything queued behind it, in both directions, is lost.
//   kStall  from that frame on the direction forwards nothing until resume(); it keeps reading
//           until its queue is full (buffer_bytes), then stops reading, so the sender's kernel
//           buffers fill and TCP flow control pushes back on it.
//
// Bounds: each direction of a connection queues at most `buffer_bytes` of data and reads only
// what fits (its markers, one per frame at most, carry no data); a partial header is at most 5
// bytes; the frame log keeps the last `max_log_records` records; at most `max_connections`
// connections at once (one beyond is closed at once). Memory per connection is about
// 2 x (buffer_bytes + 16 KiB of read buffer).
//
// Threading: the proxy runs on an io_context and thread of its own, started by the constructor
// and stopped and joined by the destructor (as natsim::NatProxyThread). Every public member
// function may be called from any thread; waits block the caller on a condition variable with a
// deadline, never by sleeping. Destroying the proxy closes every connection through it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "protocol/frame_format.h"

namespace herald::testing {

enum class Direction : std::uint8_t {
  kUpstream = 0,    // device → server
  kDownstream = 1,  // server → device
};

enum class FaultAction : std::uint8_t { kDrop, kDelay, kCut, kStall };

[[nodiscard]] const char* to_string(Direction d);
[[nodiscard]] const char* to_string(FaultAction a);

struct FaultRule {
  Direction direction = Direction::kDownstream;
  // The frame type to match; nullopt matches every frame of the direction.
  std::optional<protocol::FrameType> type;
  // Acts on the n-th matching frame (from 1) counted from when the rule was added; ignored when
  // `every`.
  std::uint64_t occurrence = 1;
  bool every = false;
  FaultAction action = FaultAction::kDrop;
  std::chrono::milliseconds delay{0};  // kDelay only

  // The common rules, e.g. FaultRule::drop(Direction::kDownstream, FrameType::kNotify).
  static FaultRule drop(Direction d, protocol::FrameType t, std::uint64_t n = 1);
  static FaultRule delay_by(Direction d, protocol::FrameType t, std::chrono::milliseconds delay,
                            std::uint64_t n = 1);
  static FaultRule cut(Direction d, protocol::FrameType t, std::uint64_t n = 1);
  static FaultRule stall(Direction d, std::optional<protocol::FrameType> t, std::uint64_t n = 1);
};

using RuleId = std::uint64_t;

// What happened to one frame (or, in raw mode, one run of unparsed bytes), logged when its fate
// was sealed: when it was dropped or cut, or when its last byte was written.
struct FrameRecord {
  enum class Fate : std::uint8_t { kForwarded, kDropped, kCut };
  std::uint64_t connection = 0;  // from 1, in accept order
  Direction direction = Direction::kUpstream;
  // nullopt: raw bytes after an unparsable header.
  std::optional<protocol::FrameType> type;
  std::uint64_t number = 0;  // from 1: its place among the frames read in this direction
  std::size_t bytes = 0;     // header + body
  Fate fate = Fate::kForwarded;
  std::chrono::steady_clock::time_point read_at;     // its header was read
  std::chrono::steady_clock::time_point settled_at;  // last byte written, or dropped / cut
};

// A snapshot of what the proxy saw and did. The per-type arrays are indexed
// [direction][frame type byte]; index 0 counts raw chunks (after an unparsable header).
struct FaultCounters {
  static constexpr std::size_t kTypes = protocol::kMaxFrameType + 1;
  std::uint64_t accepted = 0;          // connections accepted, rejected ones included
  std::uint64_t rejected = 0;          // closed at once: max_connections reached
  std::uint64_t connect_failures = 0;  // the target refused or did not answer in time
  std::uint64_t open = 0;              // connections open now
  std::uint64_t unparsable = 0;        // directions switched to raw forwarding
  std::uint64_t raw_bytes = 0;         // bytes forwarded raw
  std::uint64_t dropped = 0;
  std::uint64_t delayed = 0;
  std::uint64_t cuts = 0;
  std::uint64_t stalls = 0;                 // stalls begun
  std::uint64_t seen[2][kTypes] = {};       // frames whose header was read
  std::uint64_t forwarded[2][kTypes] = {};  // frames whose last byte was written

  [[nodiscard]] std::uint64_t seen_of(Direction d, protocol::FrameType t) const {
    return seen[static_cast<int>(d)][static_cast<std::uint8_t>(t)];
  }
  [[nodiscard]] std::uint64_t forwarded_of(Direction d, protocol::FrameType t) const {
    return forwarded[static_cast<int>(d)][static_cast<std::uint8_t>(t)];
  }
};

struct FaultProxyOptions {
  // Where to forward: usually heraldd's device port on loopback.
  boost::asio::ip::tcp::endpoint target;
  // Port 0: any free port; port() tells which.
  boost::asio::ip::tcp::endpoint listen{boost::asio::ip::address_v4::loopback(), 0};
  std::size_t max_connections = 64;
  // The most one direction of one connection queues (read, not yet written).
  std::size_t buffer_bytes = 64 * 1024;
  std::size_t max_log_records = 4096;
  std::chrono::milliseconds connect_timeout{5000};
};

namespace detail {
struct FaultState;
class FaultLink;
}  // namespace detail

class FaultProxy {
 public:
  // Binds, listens and starts accepting on a thread of its own. Throws
  // boost::system::system_error when it cannot listen.
  explicit FaultProxy(FaultProxyOptions options);
  // Stops the io_context and joins the thread; every connection's sockets are closed (with a
  // FIN) by the time it returns.
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }

  // Rules may be added and removed at any time; a frame already read is not judged again.
  RuleId add_rule(const FaultRule& rule);
  // Removing an unknown or already removed rule does nothing. A delay, cut or stall already
  // decided (queued) still happens; resume() ends a stall.
  void remove_rule(RuleId id);
  void clear_rules();
  // Ends every stall, begun or still queued, in `direction` (both when nullopt), on every
  // connection. Returns at once; the writers resume on the proxy's thread.
  void resume(std::optional<Direction> direction = std::nullopt);
  // Resets every open connection now (both sockets: SO_LINGER 0 + close).
  void reset_connections();

  [[nodiscard]] FaultCounters counters() const;
  // How many frames `id` acted on so far.
  [[nodiscard]] std::uint64_t acted(RuleId id) const;
  // The frame log, oldest first (the last max_log_records records).
  [[nodiscard]] std::vector<FrameRecord> log() const;

  // Waits until at least `count` frames of `type` were seen (header read, whatever their fate)
  // in `direction`, or `timeout` passed; returns whether they were.
  bool wait_for(Direction direction, protocol::FrameType type, std::uint64_t count,
                std::chrono::milliseconds timeout);
  // Waits until rule `id` acted on at least `count` frames, or `timeout` passed.
  bool wait_acted(RuleId id, std::uint64_t count, std::chrono::milliseconds timeout);
  // Waits until `done(counters)` holds or `timeout` passed; returns whether it holds.
  bool wait_until(const std::function<bool(const FaultCounters&)>& done,
                  std::chrono::milliseconds timeout);

 private:
  void start_accept();

  const FaultProxyOptions options_;
  const std::shared_ptr<detail::FaultState> state_;
  // Order: the acceptor is destroyed before the io_context; the io_context, as it goes, destroys
  // the connections' coroutines and with them the connections.
  boost::asio::io_context io_{1};
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace herald::testing
