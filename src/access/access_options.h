// Settings of the access layer (device connections). Defaults are production values; the server's
// configuration file documents each one (docs/configuration.md).
#pragma once

#include <cstdint>
#include <string>

#include "protocol/frame_format.h"

namespace herald::access {

struct AccessOptions {
  std::string listen_address = "0.0.0.0";
  std::uint16_t listen_port = 7700;
  int listen_backlog = 4096;
  std::size_t max_connections = 1'000'000;  // per process; beyond it new sockets are closed
  // Connections this process is meant to carry; 0 = max_connections (never above it). The node's
  // load in endpoint lists is measured against it, and a Hello that arrives while this many
  // connections are authenticated is answered Reconnect{OVERLOAD} naming a peer with room, so
  // between capacity and max_connections sockets are accepted only to be redirected.
  std::size_t capacity = 0;
  // A drain (SIGTERM, SIGINT, POST /v1/admin/drain): Reconnect{DRAIN} frames per second over all
  // event loops, and how long the node waits for its devices to leave before it exits anyway.
  std::uint32_t drain_rate_per_s = 1'000;
  std::uint32_t drain_deadline_s = 60;

  std::uint32_t handshake_timeout_ms = 10'000;  // Hello must arrive within this
  // Connection floods (docs/operations.md, "Connection floods"). Per source (an IPv4 address, an
  // IPv6 /64) and per process: a token bucket of `connect_burst` connections refilled at
  // `connect_rate_per_s`; a connection over it is closed right after accept, before any read.
  // 0 turns the limit off. Generous on purpose: a carrier's CGNAT puts thousands of phones
  // behind one IPv4 address, and they all reconnect at once after an outage.
  std::uint32_t connect_rate_per_s = 500;
  std::uint32_t connect_burst = 5'000;
  // Sources the limiter remembers (a fixed table, allocated once); a source pushed out of it by
  // others starts again with a full bucket.
  std::uint32_t connect_rate_sources = 65'536;
  // Unauthenticated connections per process (accepted, Hello not yet verified); when a new one
  // comes while this many are pending, the oldest pending one is closed. 0 = no cap.
  std::size_t max_unauthenticated = 50'000;
  std::uint32_t heartbeat_default_s = 60;  // when Hello.heartbeat_s is 0
  std::uint32_t heartbeat_min_s = 5;
  std::uint32_t heartbeat_max_s = 1800;
  std::uint32_t heartbeat_grace_s = 10;  // deadline = 1.5 x interval + grace
  std::uint32_t wheel_tick_ms = 1000;    // resolution of every connection deadline

  std::uint32_t max_frame_bytes = protocol::kDefaultMaxBodyBytes;
  std::uint32_t max_hello_bytes = protocol::kDefaultMaxHelloBodyBytes;
  // Output queue per connection: above the high watermark notifies are skipped (the device is
  // told to resync on its next pong); at the hard limit what waits is replaced by
  // Error{slow_consumer} and the connection is closed after it (close_linger_ms at most).
  std::size_t output_high_watermark_bytes = 64 * 1024;
  std::size_t output_hard_limit_bytes = 1024 * 1024;
  // SO_SNDBUF of each device connection; 0 leaves it to the kernel, whose autotuning may grow
  // one socket's buffer to net.ipv4.tcp_wmem's maximum (4 MiB by default). Bounding it bounds
  // the kernel memory of a slow device; what does not fit waits in the output queue above.
  std::uint32_t socket_send_buffer_bytes = 0;
  std::uint32_t close_linger_ms = 5'000;  // how long a closing connection may take to flush
  // A normal-priority notify waits at most this long for others to merge with (one Notify frame,
  // one wake-up of the device's radio for a burst); a high-priority one goes at once and takes
  // the waiting ones along. 0 sends every notify at once.
  std::uint32_t normal_notify_delay_ms = 1'000;

  [[nodiscard]] std::size_t effective_capacity() const {
    return capacity == 0 ? max_connections : capacity;
  }
};

}  // namespace herald::access
