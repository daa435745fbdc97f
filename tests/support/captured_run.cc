#include "captured_run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace herald::testing {

namespace {

// Closes a descriptor once, on scope exit or when asked.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::array<int, 2> make_pipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  return fds;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

CapturedRun run_captured(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         std::chrono::milliseconds timeout) {
  const auto out_pipe = make_pipe();
  Fd out_read(out_pipe[0]), out_write(out_pipe[1]);
  const auto err_pipe = make_pipe();
  Fd err_read(err_pipe[0]), err_write(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // dup2 clears O_CLOEXEC on the copy: the child keeps 1 and 2, and every pipe end it was given
  // under its original number closes at exec.
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
  std::vector<std::string> args = argv;
  std::vector<std::string> vars = env;
  const auto c_args = c_strings(args);
  const auto c_vars = c_strings(vars);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, c_args[0], &actions, nullptr, c_args.data(), c_vars.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "cannot start " + argv[0]);
  // Only the child writes now: the pipes reach end of file when it (and anything it started)
  // closed them.
  out_write.reset();
  err_write.reset();
  // Through syscall(): glibc 2.36's <sys/pidfd.h> lacks the extern "C" that C++ needs.
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd.get() < 0) {
    const int e = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw std::system_error(e, std::generic_category(), "pidfd_open");
  }

  CapturedRun run;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true, exited = false;
  std::array<char, 16 * 1024> buf{};
  while (out_open || err_open || !exited) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      run.timed_out = true;
      break;
    }
    std::array<pollfd, 3> fds{
        pollfd{.fd = out_open ? out_read.get() : -1, .events = POLLIN, .revents = 0},
        pollfd{.fd = err_open ? err_read.get() : -1, .events = POLLIN, .revents = 0},
        pollfd{.fd = exited ? -1 : pidfd.get(), .events = POLLIN, .revents = 0}};
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    const auto drain = [&](const pollfd& p, bool& open, std::string& into) {
      if (!open || p.revents == 0) return;
      const ssize_t n = ::read(p.fd, buf.data(), buf.size());
      if (n > 0) {
        into.append(buf.data(), static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        open = false;
      }
    };
    drain(fds[0], out_open, run.out);
    drain(fds[1], err_open, run.err);
    if (!exited && fds[2].revents != 0) exited = true;
  }
  int status = 0;
  if (run.timed_out) ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  run.exit_code = !run.timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace herald::testing
