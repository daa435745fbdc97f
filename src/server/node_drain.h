// NodeDrain: the life of a heraldd process that must go away gracefully (docs/operations.md,
// "Draining a node").
//
//   running ──SIGTERM / SIGINT / POST /v1/admin/drain──▶ draining ──no device left────┐
//                                                          │   └──deadline passed─────┤
//                                                          └──second signal───────────┼──▶ shutdown
//   running ──(nothing else stops the process)                                        │
//
// Draining: the node reports draining (peers drop it from their endpoint lists), the access layer
// closes its listeners and asks its devices, at access.drain_rate_per_s over all loops, to
// reconnect elsewhere (Reconnect{DRAIN} naming a non-draining peer when one is known), and the
// HTTP APIs keep serving. Once no device connection is left, or at the deadline, `shutdown` runs
// (the process's clean stop: listeners, webhooks, scheduler, counts, then the loops).
//
// Thread-safe: drain_state() and start_drain() may be called from any thread (the admin API runs
// on every loop); everything else, and `shutdown`, runs on `io`, the process's first loop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "access/access_metrics.h"
#include "access/access_server.h"
#include "http/admin_api.h"
#include "logic/clock.h"

namespace herald::server {

class NodeDrain final : public http::DrainControl {
 public:
  struct Defaults {
    std::uint32_t rate_per_s = 1'000;
    std::uint32_t deadline_s = 60;
  };

  // `draining` is what the node reports in its load (read by the endpoint list); `shutdown` is
  // called once, on `io`. All references outlive the NodeDrain, which must be destroyed before
  // `io`.
  NodeDrain(boost::asio::io_context& io, access::AccessServer& access,
            const access::AccessMetrics& metrics, std::atomic<bool>& draining, Defaults defaults,
            std::function<void()> shutdown, logic::Clock clock);

  // http::DrainControl; any thread.
  [[nodiscard]] http::DrainState drain_state() const override;
  bool start_drain(const http::DrainRequest& request) override;

  // SIGTERM or SIGINT arrived: the first starts a drain with the configured values, the next
  // shuts down at once. Loop thread.
  void on_signal(int signal);
  // The process stops for another reason: no more checks. Loop thread.
  void cancel();

 private:
  // Checks, every kCheckInterval, whether the drain is over. Loop thread.
  void watch();
  // Ends the drain and calls `shutdown` (once). Loop thread.
  void finish(const char* why);

  boost::asio::io_context& io_;
  access::AccessServer& access_;
  const access::AccessMetrics& metrics_;
  std::atomic<bool>& draining_;
  const Defaults defaults_;
  std::function<void()> shutdown_;
  logic::Clock clock_;
  boost::asio::steady_timer timer_;  // loop thread

  mutable std::mutex mutex_;
  http::DrainState state_;  // guarded by mutex_ (its connection count is read live)
  std::chrono::steady_clock::time_point deadline_;           // guarded by mutex_
  std::chrono::steady_clock::time_point last_progress_log_;  // loop thread
  bool finished_ = false;                                    // loop thread
};

}  // namespace herald::server
