#include "backoff.h"

#include <algorithm>
#include <random>
#include <utility>

namespace herald::detail {
namespace {

Backoff::Random default_random() {
  // One engine per thread, not per client: its 2.5 KB of state would dominate an idle client.
  return [](std::uint64_t bound) {
    thread_local std::mt19937_64 engine(std::random_device{}());
    return std::uniform_int_distribution<std::uint64_t>(0, bound)(engine);
  };
}

}  // namespace

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, Random random)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      max_(std::max(max, initial_)),
      random_(std::move(random)) {}

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : Backoff(initial, max, default_random()) {}

std::chrono::milliseconds Backoff::ceiling() const {
  // Doubling stops once the ceiling reached max_, so the shift never overflows: initial_ >= 1 ms
  // and max_ fits in 63 bits.
  std::chrono::milliseconds c = initial_;
  for (std::uint32_t i = 0; i < attempt_ && c < max_; ++i) c *= 2;
  return std::min(c, max_);
}

std::chrono::milliseconds Backoff::next() {
  const auto bound = static_cast<std::uint64_t>(ceiling().count());
  const std::uint64_t drawn = std::min(random_(bound), bound);
  // Once the ceiling is at max_ the counter stops, so it cannot wrap however long we fail.
  if (ceiling() < max_) ++attempt_;
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(drawn));
}

}  // namespace herald::detail
