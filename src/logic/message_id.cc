#include "logic/message_id.h"

#include <cstdio>

namespace herald::logic {

std::string MessageIdGenerator::next(std::int64_t now_ms) {
  const std::uint64_t candidate = (static_cast<std::uint64_t>(now_ms) << 20) | node_;
  std::uint64_t last = last_.load(std::memory_order_relaxed);
  std::uint64_t id = 0;
  do {
    // Every id of this generator ends in node_, so stepping by one counter value keeps it.
    id = candidate > last ? candidate : last + (std::uint64_t{1} << kNodeBits);
  } while (!last_.compare_exchange_weak(last, id, std::memory_order_relaxed));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return std::string(buf, 16);
}

}  // namespace herald::logic
