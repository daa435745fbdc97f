#include "common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace herald::crash_point {

std::atomic<int> armed{-1};

namespace {

std::atomic<std::uint64_t> hits{0};
std::uint64_t die_at_hit = 1;

// Straight to the file descriptor: nothing buffered is left behind, and nothing else flushed.
void say(const std::string& line) {
  const std::string text = line + "\n";
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(STDERR_FILENO, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

[[noreturn]] void refuse(const std::string& why) {
  std::string known;
  for (const auto name : kNames) known += (known.empty() ? "" : ", ") + std::string(name);
  say("HERALD_CRASH_POINT: " + why + " (want NAME or NAME:HITS; known points: " + known + ")");
  std::_Exit(2);
}

// Reads HERALD_CRASH_POINT=NAME[:HITS]. Before main(), from a static initializer of this file,
// which every binary with a compiled crash point links (the macro names `armed` and `hit`).
bool arm_from_environment() {
  const char* value = std::getenv("HERALD_CRASH_POINT");
  if (value == nullptr || *value == '\0') return false;
  const std::string_view text(value);
  const auto colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  int index = -1;
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) index = static_cast<int>(i);
  }
  if (index < 0) refuse("unknown crash point '" + std::string(name) + "'");
  if (colon != std::string_view::npos) {
    const std::string_view count = text.substr(colon + 1);
    const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), die_at_hit);
    if (ec != std::errc{} || end != count.data() + count.size() || die_at_hit == 0) {
      refuse("hits '" + std::string(count) + "' is not a number from 1");
    }
  }
  armed.store(index, std::memory_order_relaxed);
  return true;
}

[[maybe_unused]] const bool armed_at_start = arm_from_environment();

}  // namespace

void hit() {
  // Only the armed count kills; hits past it (threads racing to the same line) cannot happen
  // after SIGKILL, and a count below it just passes.
  if (hits.fetch_add(1, std::memory_order_relaxed) + 1 != die_at_hit) return;
  const int index = armed.load(std::memory_order_relaxed);
  say("heraldd: crash point " + std::string(kNames[static_cast<std::size_t>(index)]) + " hit " +
      std::to_string(die_at_hit) + " time(s): SIGKILL");
  ::kill(::getpid(), SIGKILL);
  std::_Exit(137);  // not reached: SIGKILL cannot be caught
}

}  // namespace herald::crash_point
