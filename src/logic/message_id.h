// MessageIdGenerator: unique, roughly time-ordered message ids without coordination per id.
//
//   id = 16 lowercase hex digits of:  44 bits Unix ms | 10 bits counter | 10 bits node number
//
// Each id is the larger of (now_ms << 20 | node) and the previous id + 1024 (the next counter
// value; past 1,023 ids in a millisecond it borrows the next millisecond), so ids are unique and
// increasing within a process, and across restarts as long as the clock does not go back. The
// node number tells apart the processes sharing one storage (cluster mode): each claims a number
// no other live process holds (server/node_number.h); a single process uses 0.
// Thread-safe (lock-free).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace herald::logic {

class MessageIdGenerator {
 public:
  static constexpr unsigned kNodeBits = 10;
  static constexpr std::uint32_t kMaxNodes = 1U << kNodeBits;

  MessageIdGenerator() = default;
  // `node` < kMaxNodes.
  explicit MessageIdGenerator(std::uint32_t node) : node_(node % kMaxNodes) {}

  [[nodiscard]] std::string next(std::int64_t now_ms);

 private:
  std::uint64_t node_ = 0;
  std::atomic<std::uint64_t> last_{0};
};

}  // namespace herald::logic
