// SourceRateLimiter: the per-source connection-rate limit of the access layer. Each source has a
// token bucket refilled at `rate_per_s` up to `burst`; a connection takes one token, and one that
// finds the bucket empty is refused (the accept loop closes it before reading a byte or creating
// a session).
//
// A source is an IPv4 address, or an IPv6 /64 prefix: a mobile network hands each phone (each
// PDP context) a /64 of its own, and a host that owns a /64 can pick any of its 2^64 addresses,
// so counting IPv6 by full address would let one host dodge the limit. IPv4-mapped IPv6
// addresses (::ffff:a.b.c.d, seen by a dual-stack listener) count as their IPv4 address.
//
// The table of sources is bounded: `max_sources` entries, allocated once, never more however
// many addresses a flood comes from. It is set-associative (kWays entries per set, the set picked
// by a keyed hash, so a flood cannot aim at one source's set) and evicts the least recently seen
// entry of a full set; an evicted source simply starts again with a full bucket, which is what
// its bucket holds anyway once it has been quiet for burst / rate_per_s seconds.
//
// Shared by every event loop of a process (SO_REUSEPORT spreads one source's connections over
// all of them, so per-loop buckets would multiply the limit by the number of loops). Thread-safe:
// the table is split into shards, each behind its own mutex held for a few arithmetic operations.
// Time comes in as an argument (milliseconds on any monotonic clock), so tests inject it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace herald::access {

// Whose bucket a connection draws from: an IPv4 address or an IPv6 /64 prefix.
struct SourceKey {
  std::uint64_t bits = 0;  // the IPv4 address, or the first 64 bits of the IPv6 address
  bool v6 = false;
  friend bool operator==(const SourceKey&, const SourceKey&) = default;
};

class SourceRateLimiter {
 public:
  static constexpr std::size_t kWays = 8;     // entries per set
  static constexpr std::size_t kShards = 16;  // mutexes

  // `rate_per_s` == 0 turns the limit off (admit() always answers true, no table is allocated).
  // `burst` is clamped to at least 1. `max_sources` is rounded up to a multiple of
  // kShards * kWays. `seed` keys the hash (0: a random one).
  SourceRateLimiter(std::uint32_t rate_per_s, std::uint32_t burst, std::size_t max_sources,
                    std::uint64_t seed = 0);

  [[nodiscard]] static SourceKey key_of(const boost::asio::ip::address& source);

  // Takes a token from `source`'s bucket: true when there was one (admit the connection), false
  // when it is over its rate (refuse it). `now_ms` must not go backwards by much; a step back is
  // taken as no time passing.
  [[nodiscard]] bool admit(const boost::asio::ip::address& source, std::int64_t now_ms);

  [[nodiscard]] bool enabled() const { return rate_per_s_ > 0; }
  // Entries of the table (0 when off), and how many hold a source now.
  [[nodiscard]] std::size_t max_sources() const { return shards_.size() * entries_per_shard_; }
  [[nodiscard]] std::size_t tracked() const;

 private:
  struct Entry {
    std::uint64_t bits = 0;
    std::int64_t seen_ms = 0;  // last refill (= last connection)
    std::int64_t tokens = 0;   // thousandths of a token
    std::uint8_t state = 0;    // kEmpty, kV4 or kV6
  };
  struct Shard {
    mutable std::mutex mu;
    std::vector<Entry> entries;  // sets of kWays, fixed size
  };

  [[nodiscard]] std::uint64_t hash(const SourceKey& key) const;

  std::int64_t rate_per_s_ = 0;
  std::int64_t full_ = 0;  // burst, in thousandths of a token
  std::uint64_t seed_ = 0;
  std::size_t entries_per_shard_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;  // empty when off
};

}  // namespace herald::access
