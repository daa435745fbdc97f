// MessageIdGenerator: unique, roughly time-ordered message ids without coordination.
//
//   id = 16 lowercase hex digits of: 44 bits Unix ms | 20 bits counter
//
// The counter restarts at a random value each millisecond-free restart, so ids stay unique across
// process restarts on the same node as long as the clock does not go back; the node part is added
// when clusters arrive. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace herald::logic {

class MessageIdGenerator {
 public:
  MessageIdGenerator();
  [[nodiscard]] std::string next(std::int64_t now_ms);

 private:
  std::atomic<std::uint64_t> last_{0};
};

}  // namespace herald::logic
