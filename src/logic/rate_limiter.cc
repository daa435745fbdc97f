#include "logic/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace herald::logic {

RateLimiter::MonotonicClock RateLimiter::steady_clock_ms() {
  return [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
}

RateLimiter::RateLimiter(MonotonicClock clock) : clock_(std::move(clock)) {}

double RateLimiter::Bucket::capacity() const {
  return limit.burst >= 1 ? limit.burst : std::max(1.0, limit.per_s);
}

double RateLimiter::Bucket::available(std::int64_t now_ms) const {
  if (limit.per_s <= 0) return INFINITY;
  const double elapsed_s =
      static_cast<double>(std::max<std::int64_t>(0, now_ms - refilled_at_ms)) / 1000.0;
  return std::min(capacity(), tokens + elapsed_s * limit.per_s);
}

void RateLimiter::set_limits(std::string_view app, const AppRateLimits& limits) {
  const std::int64_t now_ms = clock_();
  std::unique_lock lock(map_mu_);
  if (limits.requests.per_s <= 0 && limits.messages.per_s <= 0) {
    apps_.erase(std::string(app));
    return;
  }
  auto& slot = apps_[std::string(app)];
  if (!slot) slot = std::make_unique<AppBuckets>();
  std::lock_guard bucket_lock(slot->mu);
  for (auto [bucket, limit] :
       {std::pair{&slot->requests, limits.requests}, std::pair{&slot->messages, limits.messages}}) {
    if (bucket->limit == limit) continue;
    bucket->limit = limit;
    bucket->tokens = bucket->capacity();
    bucket->refilled_at_ms = now_ms;
  }
}

std::optional<std::chrono::milliseconds> RateLimiter::try_acquire(std::string_view app,
                                                                  std::uint64_t messages) {
  const std::int64_t now_ms = clock_();
  std::shared_lock map_lock(map_mu_);
  const auto it = apps_.find(std::string(app));
  if (it == apps_.end()) return std::nullopt;
  AppBuckets& b = *it->second;
  std::lock_guard lock(b.mu);

  const double want_messages = static_cast<double>(messages);
  const double have_requests = b.requests.available(now_ms);
  const double have_messages = b.messages.available(now_ms);
  if (have_requests >= 1 && have_messages >= want_messages) {
    for (auto [bucket, have, take] : {std::tuple{&b.requests, have_requests, 1.0},
                                      std::tuple{&b.messages, have_messages, want_messages}}) {
      if (bucket->limit.per_s <= 0) continue;
      bucket->tokens = have - take;
      bucket->refilled_at_ms = now_ms;
    }
    return std::nullopt;
  }
  // Refused: nothing taken. The wait is the longer of the two buckets' refill times.
  auto wait_s = [](const Bucket& bucket, double have, double want) {
    if (have >= want || bucket.limit.per_s <= 0) return 0.0;
    return (std::min(want, bucket.capacity()) - have) / bucket.limit.per_s +
           (want > bucket.capacity() ? bucket.capacity() / bucket.limit.per_s : 0.0);
  };
  const double wait = std::max(wait_s(b.requests, have_requests, 1.0),
                               wait_s(b.messages, have_messages, want_messages));
  return std::chrono::milliseconds(
      std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait * 1000))));
}

}  // namespace herald::logic
