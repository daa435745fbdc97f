// ConnectionAdmission: who gets in on the accept path of one process. Two guards against
// connection floods, both shared by every event loop of the process:
//
//   accept ──▶ per-source rate (SourceRateLimiter) ── over it ──▶ closed at once (RST), unread
//                 │
//                 ▼
//              Session ──▶ pending cap (PendingConnections) ── full ──▶ the oldest pending one
//                 │                                                     is shut down
//                 ▼ Hello verified (or closed): no longer pending
//
// It keeps the counters (AccessMetrics) and logs what it refused at warn level, at most one
// line every 10 s per process however many sockets it refuses (event=connections_refused).
// Owned by AccessServer; outlives every loop and session. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

#include <boost/asio/ip/address.hpp>

#include "access/access_metrics.h"
#include "access/access_options.h"
#include "access/pending_connections.h"
#include "access/source_rate_limiter.h"

namespace herald::access {

class ConnectionAdmission {
 public:
  ConnectionAdmission(const AccessOptions& options, AccessMetrics& metrics);

  // Right after accept, before anything is read: whether `source` is within its connection
  // rate (access.connect_rate_per_s, access.connect_burst). False: the caller closes the socket
  // at once; it was counted and maybe logged.
  [[nodiscard]] bool admit_source(const boost::asio::ip::address& source, std::int64_t now_ms);

  // A connection was kept and has not authenticated yet: files its socket `fd` as pending,
  // shutting the oldest pending one down when access.max_unauthenticated are pending. The
  // caller calls leave_pending(fd) when the connection authenticates or, before that, when it
  // closes (before closing `fd`).
  void enter_pending(int fd, std::int64_t now_ms);
  void leave_pending(int fd) { pending_.remove(fd); }

 private:
  // Logs what was refused since the last line, unless a line went out less than 10 s ago.
  void maybe_log(std::int64_t now_ms, const boost::asio::ip::address* source);

  AccessMetrics& metrics_;
  SourceRateLimiter sources_;
  PendingConnections pending_;
  std::atomic<std::int64_t> next_log_ms_{0};
  std::atomic<std::uint64_t> logged_refused_{0};  // totals as of the last line
  std::atomic<std::uint64_t> logged_evicted_{0};
};

}  // namespace herald::access
