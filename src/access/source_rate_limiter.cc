#include "access/source_rate_limiter.h"

#include <algorithm>
#include <random>

namespace herald::access {

namespace {

constexpr std::uint8_t kEmpty = 0;
constexpr std::uint8_t kV4 = 4;
constexpr std::uint8_t kV6 = 6;
constexpr std::int64_t kMilli = 1000;  // a token, in the bucket's unit

// splitmix64's finaliser: every input bit reaches every output bit.
std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

SourceRateLimiter::SourceRateLimiter(std::uint32_t rate_per_s, std::uint32_t burst,
                                     std::size_t max_sources, std::uint64_t seed)
    : rate_per_s_(rate_per_s),
      full_(std::int64_t{std::max<std::uint32_t>(burst, 1)} * kMilli),
      seed_(seed != 0 ? seed
                      : (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()) {
  if (rate_per_s_ == 0) return;
  const std::size_t sets =
      std::max<std::size_t>(1, (max_sources + kShards * kWays - 1) / (kShards * kWays));
  entries_per_shard_ = sets * kWays;
  shards_.reserve(kShards);
  for (std::size_t i = 0; i < kShards; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->entries.resize(entries_per_shard_);
  }
}

SourceKey SourceRateLimiter::key_of(const boost::asio::ip::address& source) {
  if (source.is_v4()) return {source.to_v4().to_uint(), false};
  const auto v6 = source.to_v6();
  if (v6.is_v4_mapped()) {
    return {boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_uint(), false};
  }
  const auto bytes = v6.to_bytes();
  std::uint64_t prefix = 0;
  for (std::size_t i = 0; i < 8; ++i) prefix = (prefix << 8) | bytes[i];
  return {prefix, true};
}

std::uint64_t SourceRateLimiter::hash(const SourceKey& key) const {
  return mix(key.bits ^ seed_ ^ (key.v6 ? 0x9e3779b97f4a7c15ULL : 0));
}

bool SourceRateLimiter::admit(const boost::asio::ip::address& source, std::int64_t now_ms) {
  if (rate_per_s_ == 0) return true;
  const SourceKey key = key_of(source);
  const std::uint8_t state = key.v6 ? kV6 : kV4;
  const std::uint64_t h = hash(key);
  Shard& shard = *shards_[h % kShards];
  const std::size_t sets = entries_per_shard_ / kWays;
  Entry* const set = shard.entries.data() + ((h / kShards) % sets) * kWays;

  std::lock_guard lock(shard.mu);
  Entry* entry = nullptr;
  Entry* victim = set;  // an empty way, else the least recently seen
  for (std::size_t i = 0; i < kWays; ++i) {
    Entry& e = set[i];
    if (e.state == state && e.bits == key.bits) {
      entry = &e;
      break;
    }
    if (victim->state == kEmpty) continue;
    if (e.state == kEmpty || e.seen_ms < victim->seen_ms) victim = &e;
  }
  if (entry == nullptr) {
    // New here (or evicted earlier): a full bucket, as after a long silence.
    entry = victim;
    entry->bits = key.bits;
    entry->state = state;
    entry->tokens = full_;
    entry->seen_ms = now_ms;
  } else if (now_ms > entry->seen_ms) {
    // In thousandths of a token, a source earns rate_per_s of them per millisecond: exact
    // integers. The elapsed time is capped where the bucket is full anyway (no overflow).
    const std::int64_t refill_ms = full_ / rate_per_s_ + 1;
    const std::int64_t elapsed = std::min(now_ms - entry->seen_ms, refill_ms);
    entry->tokens = std::min(full_, entry->tokens + elapsed * rate_per_s_);
    entry->seen_ms = now_ms;
  }
  if (entry->tokens < kMilli) return false;
  entry->tokens -= kMilli;
  return true;
}

std::size_t SourceRateLimiter::tracked() const {
  std::size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mu);
    n += static_cast<std::size_t>(std::count_if(shard->entries.begin(), shard->entries.end(),
                                                [](const Entry& e) { return e.state != kEmpty; }));
  }
  return n;
}

}  // namespace herald::access
