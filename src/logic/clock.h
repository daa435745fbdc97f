// Clock: wall-clock time in Unix milliseconds, injected into the logic layer so tests control it.
#pragma once

#include <cstdint>
#include <functional>

namespace herald::logic {

using Clock = std::function<std::int64_t()>;
// The system clock (defined in message_service.cc).
Clock system_clock();

}  // namespace herald::logic
