// MessageIdGenerator: unique, roughly time-ordered message ids without coordination.
//
//   id = 16 lowercase hex digits of: 44 bits Unix ms | 20 bits counter
//
// Each id is the larger of (now_ms << 20) and the previous id + 1, so ids are unique and
// increasing within a process, and across restarts as long as the clock does not go back; a node
// part is added when clusters arrive. Thread-safe (lock-free).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace herald::logic {

class MessageIdGenerator {
 public:
  MessageIdGenerator() = default;
  [[nodiscard]] std::string next(std::int64_t now_ms);

 private:
  std::atomic<std::uint64_t> last_{0};
};

}  // namespace herald::logic
