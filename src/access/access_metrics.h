// Counters of the access layer, shared by every event loop (relaxed atomics: they are statistics,
// not synchronisation). Exported by the server's metrics endpoint.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/prometheus_text.h"

namespace herald::access {

struct AccessMetrics {
  std::atomic<std::int64_t> connections{0};    // open sockets, authenticated or not
  std::atomic<std::int64_t> authenticated{0};  // open, past Hello (the rest are pending)
  std::atomic<std::uint64_t> accepted_total{0};
  std::atomic<std::uint64_t> rejected_over_capacity_total{0};
  // Closed right after accept, unread: their source was over access.connect_rate_per_s.
  std::atomic<std::uint64_t> refused_source_rate_total{0};
  // Unauthenticated connections shut down to admit a newer one (access.max_unauthenticated).
  std::atomic<std::uint64_t> unauthenticated_evicted_total{0};
  std::atomic<std::uint64_t> auth_failures_total{0};
  std::atomic<std::uint64_t> protocol_errors_total{0};
  std::atomic<std::uint64_t> heartbeat_timeouts_total{0};
  std::atomic<std::uint64_t> handshake_timeouts_total{0};
  std::atomic<std::uint64_t> slow_consumer_closes_total{0};
  std::atomic<std::uint64_t> notifies_sent_total{0};
  std::atomic<std::uint64_t> notifies_skipped_total{0};
  std::atomic<std::uint64_t> notifies_deferred_total{0};  // normal priority, held to merge
  std::atomic<std::uint64_t> notifies_merged_total{0};    // folded into another Notify frame
  std::atomic<std::uint64_t> pulls_total{0};
  std::atomic<std::uint64_t> entries_sent_total{0};
  std::atomic<std::uint64_t> acks_total{0};
  std::atomic<std::uint64_t> drain_reconnects_total{0};    // Reconnect{DRAIN} sent
  std::atomic<std::uint64_t> overload_redirects_total{0};  // Hellos answered Reconnect{OVERLOAD}
  // TLS (access.tls): handshakes completed, of which resumed from a ticket, and connections
  // ended by a TLS failure (a failed handshake, a record that does not authenticate).
  std::atomic<std::uint64_t> tls_handshakes_total{0};
  std::atomic<std::uint64_t> tls_resumed_total{0};
  std::atomic<std::uint64_t> tls_failures_total{0};
  // From a message's acceptance (its entry's sent_at, the accepting node's wall clock) to its
  // entry leaving in a pull reply: the push latency for online devices; a message that waited
  // for an offline device lands in the high buckets, one pulled again (a reply lost) counts
  // again. Tombstones are left out.
  metrics::LatencyHistogram delivery_delay;
};

}  // namespace herald::access
