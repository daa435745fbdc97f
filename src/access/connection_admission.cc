#include "access/connection_admission.h"

#include "common/log.h"

namespace herald::access {

namespace {

constexpr std::int64_t kLogIntervalMs = 10'000;

}  // namespace

ConnectionAdmission::ConnectionAdmission(const AccessOptions& options, AccessMetrics& metrics)
    : metrics_(metrics),
      sources_(options.connect_rate_per_s, options.connect_burst, options.connect_rate_sources),
      pending_(options.max_unauthenticated) {}

bool ConnectionAdmission::admit_source(const boost::asio::ip::address& source,
                                       std::int64_t now_ms) {
  if (sources_.admit(source, now_ms)) return true;
  metrics_.refused_source_rate_total.fetch_add(1, std::memory_order_relaxed);
  maybe_log(now_ms, &source);
  return false;
}

void ConnectionAdmission::enter_pending(int fd, std::int64_t now_ms) {
  if (!pending_.admit(fd)) return;
  metrics_.unauthenticated_evicted_total.fetch_add(1, std::memory_order_relaxed);
  maybe_log(now_ms, nullptr);
}

void ConnectionAdmission::maybe_log(std::int64_t now_ms, const boost::asio::ip::address* source) {
  auto due = next_log_ms_.load(std::memory_order_relaxed);
  if (now_ms < due || !next_log_ms_.compare_exchange_strong(due, now_ms + kLogIntervalMs,
                                                            std::memory_order_relaxed)) {
    return;  // another line went out less than kLogIntervalMs ago, or is going out now
  }
  const auto refused = metrics_.refused_source_rate_total.load(std::memory_order_relaxed);
  const auto evicted = metrics_.unauthenticated_evicted_total.load(std::memory_order_relaxed);
  // Lines are at least kLogIntervalMs apart, so the totals only grow from one to the next.
  const auto since = [](std::uint64_t total, std::atomic<std::uint64_t>& logged) {
    const auto before = logged.exchange(total, std::memory_order_relaxed);
    return total > before ? total - before : 0;
  };
  const auto refused_since = since(refused, logged_refused_);
  const auto evicted_since = since(evicted, logged_evicted_);
  log::warn("connections_refused",
            {{"over_source_rate", refused_since},
             {"unauthenticated_evicted", evicted_since},
             {"unauthenticated", metrics_.connections.load(std::memory_order_relaxed) -
                                     metrics_.authenticated.load(std::memory_order_relaxed)},
             {"source", source != nullptr ? source->to_string() : std::string("-")},
             {"over_source_rate_total", refused},
             {"unauthenticated_evicted_total", evicted}});
}

}  // namespace herald::access
