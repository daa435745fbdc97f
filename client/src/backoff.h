// Backoff: the delay before the next reconnect attempt, exponential with full jitter.
//
//   attempt      0      1      2      3    ...   n
//   ceiling    initial  2x     4x     8x   ...   min(initial * 2^n, max)
//   delay      uniform in [0, ceiling]
//
// Full jitter (every delay drawn from zero up to the ceiling) spreads the reconnects of many
// devices that lost their server at the same moment instead of bringing them back in waves. The
// ceiling grows from `initial` to `max` with each failed attempt and falls back to `initial` after
// reset(), which the client calls once a connection got as far as HelloOk.
//
// Not thread-safe: each client owns one and uses it on its strand.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace herald::detail {

class Backoff {
 public:
  // Returns a number drawn uniformly from [0, bound]. Injected so tests choose the jitter.
  using Random = std::function<std::uint64_t(std::uint64_t bound)>;

  // `initial` and `max` are clamped to at least 1 ms, and `max` to at least `initial`.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, Random random);
  // Same, with a random generator seeded from std::random_device.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);

  // The delay before the next attempt; moves the ceiling up for the one after.
  [[nodiscard]] std::chrono::milliseconds next();
  // The ceiling the next call to next() draws under.
  [[nodiscard]] std::chrono::milliseconds ceiling() const;
  // Back to the first ceiling (`initial`).
  void reset() { attempt_ = 0; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  Random random_;
  std::uint32_t attempt_ = 0;
};

}  // namespace herald::detail
