// DrainPacer: the pace of a drain's Reconnect{DRAIN} frames, one for the whole process, shared by
// every event loop so that the rate holds however the connections are spread over the loops.
//
//   turn:    0      1      2      3     ...    k
//   due:   start  +1/r   +2/r   +3/r         start + k/r
//
// A loop that still has connections to send away claims the next few turns (those due within one
// pace step), waits until the last of them is due, then sends that many frames. Turns are handed
// out in claim order, so loops with work take turns and none is starved; the k-th frame of the
// process goes no earlier than start + k / rate, so N frames take at least (N - 1) / rate.
//
// Thread-safe: claim() is one atomic add.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace herald::access {

class DrainPacer {
 public:
  using Clock = std::chrono::steady_clock;
  // Turns claimed at once are those due within this step (at least one).
  static constexpr auto kStep = std::chrono::milliseconds(10);

  // `rate_per_s` >= 1.
  DrainPacer(std::uint32_t rate_per_s, Clock::time_point start)
      : rate_per_s_(std::max<std::uint32_t>(rate_per_s, 1)),
        start_(start),
        batch_(std::max<std::uint32_t>(
            1, static_cast<std::uint32_t>(rate_per_s_ * kStep.count() / 1000))) {}

  // How many turns claim() hands out at once.
  [[nodiscard]] std::uint32_t batch() const { return batch_; }
  [[nodiscard]] std::uint32_t rate_per_s() const { return rate_per_s_; }

  // Claims the next batch() turns; returns when the last of them is due. Any thread.
  [[nodiscard]] Clock::time_point claim() {
    const std::uint64_t first = next_.fetch_add(batch_, std::memory_order_relaxed);
    const std::uint64_t last = first + batch_ - 1;
    // last / rate seconds after start, in nanoseconds without overflow for any realistic drain.
    const auto offset = std::chrono::nanoseconds(
        static_cast<std::int64_t>(last / rate_per_s_) * 1'000'000'000LL +
        static_cast<std::int64_t>(last % rate_per_s_) * 1'000'000'000LL / rate_per_s_);
    return start_ + std::chrono::duration_cast<Clock::duration>(offset);
  }

 private:
  const std::uint32_t rate_per_s_;
  const Clock::time_point start_;
  const std::uint32_t batch_;
  std::atomic<std::uint64_t> next_{0};
};

}  // namespace herald::access
