// Process: a child program started by a test (heraldd, herald-device), with the signals a test
// sends it. The destructor stops a still-running child (SIGTERM, then SIGKILL) and reaps it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace herald::testing {

class Process {
 public:
  // Starts argv[0] with `argv`; its stdout goes to `stdout_path` when given (created or
  // truncated), else it is inherited. Throws std::runtime_error when it cannot start.
  explicit Process(std::vector<std::string> argv,
                   std::optional<std::filesystem::path> stdout_path = std::nullopt);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running() const { return pid_ > 0; }

  // SIGKILL and reap: the child gets no chance to flush anything.
  void kill9();
  // SIGTERM and wait; returns the wait status (see waitpid), or nullopt if it outlived `grace`,
  // in which case it was killed.
  std::optional<int> terminate(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // Whether the child has exited (reaping it then); its wait status in `status`.
  bool exited(int* status = nullptr);
  // Waits until the child exits by itself or `timeout` passes; its wait status, or nullopt on
  // timeout (the child then keeps running).
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // Waits until `path` exists (a file the child creates or renames into place, like a ready
  // file), the child exits, or `timeout` passes; true only in the first case.
  bool wait_for_file(const std::filesystem::path& path, std::chrono::milliseconds timeout);

 private:
  // Waits for the child to exit for at most `timeout`; true (and reaped) when it did.
  bool wait_exit(std::chrono::milliseconds timeout, int* status);

  pid_t pid_ = -1;
  int pidfd_ = -1;
};

// Resident set size of process `pid` in KiB (VmRSS in /proc/<pid>/status); -1 when unknown.
std::int64_t rss_kib(pid_t pid);

// Whether rss_kib() tells what a process holds. Under AddressSanitizer (scripts/test-sanitize.sh)
// freed memory waits in ASan's quarantine instead of going back to malloc, so a process's RSS no
// longer does (a slow reader's freed output buffers alone grew heraldd 24 MiB there): memory
// bounds are asserted in normal builds only, and their figures printed in both.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kRssTellsWhatIsHeld = false;
#else
inline constexpr bool kRssTellsWhatIsHeld = true;
#endif

// Counts the complete lines of a file another process appends to, and waits for more of them
// without polling: inotify tells when the file changed.
class LineCounter {
 public:
  explicit LineCounter(std::filesystem::path path);
  ~LineCounter();
  LineCounter(const LineCounter&) = delete;
  LineCounter& operator=(const LineCounter&) = delete;

  // Complete lines now in the file (a torn last line does not count). The file may shrink (a
  // crashed writer's torn tail was cut): counting then starts over.
  std::size_t count();
  // Waits until the file has at least `n` complete lines; returns the count reached.
  std::size_t wait_for(std::size_t n, std::chrono::milliseconds timeout);

 private:
  std::filesystem::path path_;
  int inotify_fd_ = -1;
  std::uintmax_t scanned_bytes_ = 0;
  std::size_t lines_ = 0;
};

}  // namespace herald::testing
