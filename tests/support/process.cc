#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace herald::testing {

namespace {

// Waits until `fd` is readable or `timeout` passed; true when readable.
bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  for (;;) {
    const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n >= 0) return n > 0;
    if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
  }
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::optional<std::filesystem::path> stdout_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_path) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path->c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    throw std::system_error(rc, std::generic_category(), "cannot start " + argv[0]);
  }
  // Through syscall(): glibc 2.36's <sys/pidfd.h> lacks the extern "C" that C++ needs.
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd_ < 0) {
    const int err = errno;
    kill9();
    throw std::system_error(err, std::generic_category(), "pidfd_open");
  }
}

Process::~Process() {
  if (pid_ > 0) terminate();
  if (pidfd_ >= 0) ::close(pidfd_);
}

bool Process::wait_exit(std::chrono::milliseconds timeout, int* status) {
  if (pid_ <= 0) return true;
  // The pidfd becomes readable when the child exits: no polling loop.
  if (!wait_readable(pidfd_, timeout)) return false;
  int st = 0;
  ::waitpid(pid_, &st, 0);
  if (status) *status = st;
  pid_ = -1;
  return true;
}

void Process::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::optional<int> Process::terminate(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return std::nullopt;
  ::kill(pid_, SIGTERM);
  int status = 0;
  if (wait_exit(grace, &status)) return status;
  kill9();
  return std::nullopt;
}

bool Process::exited(int* status) { return wait_exit(std::chrono::milliseconds(0), status); }

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  int status = 0;
  if (pid_ <= 0 || !wait_exit(timeout, &status)) return std::nullopt;
  return status;
}

bool Process::wait_for_file(const std::filesystem::path& path, std::chrono::milliseconds timeout) {
  const int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (watch < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
  if (::inotify_add_watch(watch, path.parent_path().c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
    const int err = errno;
    ::close(watch);
    throw std::system_error(err, std::generic_category(), "inotify_add_watch");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool found = false;
  for (;;) {
    if (std::filesystem::exists(path)) {
      found = true;
      break;
    }
    if (pid_ <= 0 || exited()) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    std::array<pollfd, 2> fds{pollfd{.fd = watch, .events = POLLIN, .revents = 0},
                              pollfd{.fd = pidfd_, .events = POLLIN, .revents = 0}};
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) {
      break;
    }
    std::array<char, 4096> events{};
    while (::read(watch, events.data(), events.size()) > 0) {
    }
  }
  ::close(watch);
  return found;
}

LineCounter::LineCounter(std::filesystem::path path) : path_(std::move(path)) {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
  // Watch the directory: the file may not exist yet, and may be replaced.
  if (::inotify_add_watch(inotify_fd_, path_.parent_path().c_str(),
                          IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
    const int err = errno;
    ::close(inotify_fd_);
    throw std::system_error(err, std::generic_category(), "inotify_add_watch");
  }
}

LineCounter::~LineCounter() { ::close(inotify_fd_); }

std::size_t LineCounter::count() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return lines_;
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uintmax_t>(in.tellg());
  if (size < scanned_bytes_) {  // cut below what was counted: count again from the start
    scanned_bytes_ = 0;
    lines_ = 0;
  }
  in.seekg(static_cast<std::streamoff>(scanned_bytes_));
  std::array<char, 64 * 1024> buf{};
  std::uintmax_t pos = scanned_bytes_;
  while (in) {
    in.read(buf.data(), buf.size());
    const auto got = static_cast<std::size_t>(in.gcount());
    for (std::size_t i = 0; i < got; ++i) {
      if (buf[i] == '\n') {
        ++lines_;
        scanned_bytes_ = pos + i + 1;  // only up to the last complete line
      }
    }
    pos += got;
  }
  return lines_;
}

std::size_t LineCounter::wait_for(std::size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (count() >= n) return lines_;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !wait_readable(inotify_fd_, left)) return count();
    std::array<char, 4096> events{};
    while (::read(inotify_fd_, events.data(), events.size()) > 0) {
    }  // drain: any change means "count again"
  }
}

std::int64_t rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6));  // "VmRSS:  1234 kB"
  }
  return -1;
}

}  // namespace herald::testing
