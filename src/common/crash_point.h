// Crash points: named lines where a test build of heraldd can die as if killed -9 right there
// (docs/crash-testing.md). Each names a moment where a crash is interesting for delivery:
//
//   HERALD_CRASH_POINT("after_store_write");   // in MessageService, once the append is durable
//
// Compiled in when the CMake option HERALD_CRASH_POINTS is on (the default in builds with tests);
// otherwise the macro is nothing but a compile-time check of its name. Armed by the environment,
// read once before main():
//
//   HERALD_CRASH_POINT=after_store_write      die at the first hit
//   HERALD_CRASH_POINT=after_store_write:3    die at the third hit (hits counted over all threads)
//
// On that hit the process writes one line to stderr and raises SIGKILL: no destructor, no flush,
// no RocksDB shutdown, exactly as a kill -9 at that line. A name not in kNames, or a count that is
// not a number from 1, ends the process at start-up with a message naming the known points: a
// typo never silently arms nothing. In a build without crash points the variable has no effect
// (tests that arm one assert the death, so they fail there rather than pass vacuously).
//
// Cost when disarmed: one relaxed load of an int and a compare that is always false (no fence on
// x86-64 or AArch64), at points that already write to a socket or to RocksDB.
#pragma once

#include <array>
#include <atomic>
#include <string_view>

namespace herald::crash_point {

// Every crash point, in the order of a message's life. Add a name here before using it.
inline constexpr std::array<std::string_view, 8> kNames = {
    "after_group_write",     // storage: a group commit is durable, none of its callers told
    "after_store_write",     // logic: the message is durable, no notify sent, no answer yet
    "after_notify_sent",     // access: a Notify handed to the device's socket
    "after_http_answer",     // http: an answer written to the sender's socket (any request)
    "after_pull_reply",      // access: a Messages answer to a Pull handed to the socket
    "after_ack",             // access: a device's Ack applied (its cursor record queued)
    "after_scheduled_fire",  // logic: a scheduled message stored at its send time
    "after_upstream_store",  // access: an upstream message stored, its UpstreamAck not sent
};

// The index of `name` in kNames; a name not there does not compile.
consteval int index_of(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<int>(i);
  }
  throw "unknown crash point: add it to herald::crash_point::kNames";
}

// The armed point's index, -1 when none. Written once before main().
extern std::atomic<int> armed;

// The armed point was reached: counts the hit, and on the armed count raises SIGKILL.
void hit();

}  // namespace herald::crash_point

// CMake defines it to 0 when the option is off (src/common/CMakeLists.txt).
#ifndef HERALD_CRASH_POINTS
#define HERALD_CRASH_POINTS 1
#endif

#if HERALD_CRASH_POINTS
#define HERALD_CRASH_POINT(name)                                                            \
  do {                                                                                      \
    constexpr int herald_crash_index = ::herald::crash_point::index_of(name);               \
    if (::herald::crash_point::armed.load(std::memory_order_relaxed) == herald_crash_index) \
        [[unlikely]] {                                                                      \
      ::herald::crash_point::hit();                                                         \
    }                                                                                       \
  } while (false)
#else
#define HERALD_CRASH_POINT(name)                                       \
  do {                                                                 \
    static_assert(::herald::crash_point::index_of(name) >= 0, "name"); \
  } while (false)
#endif
