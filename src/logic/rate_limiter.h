// RateLimiter: per-app token buckets for the sender API, one for requests and one for messages
// (a request to 100 devices takes 1 request token and 100 message tokens). A call either takes
// every token it needs or none, and when refused says how long until it would have succeeded, which
// the API sends back as Retry-After with its 429.
//
// Limits change at run time (the admin API); an app without limits is never refused. Thread-safe:
// every member may be called from any thread; one mutex per app, held for a few arithmetic
// operations.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace herald::logic {

// A sustained rate and the burst allowed above it. per_s == 0 means unlimited.
struct RateLimit {
  double per_s = 0;
  double burst = 0;  // bucket size; below 1 (or unset) it is max(1, per_s): one second's worth
  friend bool operator==(const RateLimit&, const RateLimit&) = default;
};

struct AppRateLimits {
  RateLimit requests;
  RateLimit messages;
  friend bool operator==(const AppRateLimits&, const AppRateLimits&) = default;
};

class RateLimiter {
 public:
  // A monotonic clock in milliseconds; injectable for tests.
  using MonotonicClock = std::function<std::int64_t()>;
  static MonotonicClock steady_clock_ms();

  explicit RateLimiter(MonotonicClock clock = steady_clock_ms());

  // Sets (or, with default-constructed limits, removes) `app`'s limits. A bucket whose limits
  // change starts full again.
  void set_limits(std::string_view app, const AppRateLimits& limits);

  // Takes one request token and `messages` message tokens for `app`, all or none. Returns nullopt
  // when taken, else how long to wait before the same call would succeed (at least 1 ms). A call
  // that can never succeed (more messages than the burst) gets the time to refill a full bucket:
  // the sender's retry then fails again, as it should, until it sends fewer at a time.
  [[nodiscard]] std::optional<std::chrono::milliseconds> try_acquire(std::string_view app,
                                                                     std::uint64_t messages);

 private:
  struct Bucket {
    RateLimit limit;
    double tokens = 0;
    std::int64_t refilled_at_ms = 0;
    // Tokens after refilling up to now_ms (does not change the bucket).
    [[nodiscard]] double available(std::int64_t now_ms) const;
    [[nodiscard]] double capacity() const;
  };
  struct AppBuckets {
    std::mutex mu;
    Bucket requests;
    Bucket messages;
  };

  MonotonicClock clock_;
  std::shared_mutex map_mu_;  // guards the map; each AppBuckets has its own mutex
  std::unordered_map<std::string, std::unique_ptr<AppBuckets>> apps_;
};

}  // namespace herald::logic
