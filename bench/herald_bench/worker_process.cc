#include "worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace herald::bench {

namespace {

using Clock = std::chrono::steady_clock;

void check(int rc, const char* what) {
  if (rc != 0) throw std::system_error(rc, std::generic_category(), what);
}

}  // namespace

WorkerProcess::WorkerProcess(const std::vector<std::string>& args) {
  std::array<int, 2> in{};   // the worker's stdin
  std::array<int, 2> out{};  // the worker's stdout
  if (::pipe2(in.data(), O_CLOEXEC) != 0 || ::pipe2(out.data(), O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  posix_spawn_file_actions_t actions;
  check(posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init");
  // dup2 clears O_CLOEXEC on the copies; the originals close at exec.
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  // This program again (argv[0] names it for ps and top).
  std::vector<std::string> argv{"herald-bench", "--worker"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  const int rc = posix_spawn(&pid_, "/proc/self/exe", &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  to_worker_ = in[1];
  from_worker_ = out[0];
  if (rc != 0) {
    ::close(to_worker_);
    ::close(from_worker_);
    throw std::system_error(rc, std::generic_category(), "cannot start a worker");
  }
}

WorkerProcess::~WorkerProcess() {
  ::close(to_worker_);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  int status = 0;
  // The worker exits once its input ends; reap it, killing it if it does not within 10 s.
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    pollfd p{.fd = from_worker_, .events = POLLIN, .revents = 0};
    // Its output ends when it exits: wait on that rather than spin.
    if (::poll(&p, 1, 100) > 0) {
      std::array<char, 4096> sink{};
      if (::read(from_worker_, sink.data(), sink.size()) == 0) ::waitpid(pid_, &status, 0);
    }
  }
  ::close(from_worker_);
}

void WorkerProcess::send(const std::string& line) {
  const std::string data = line + "\n";
  std::size_t done = 0;
  while (done < data.size()) {
    const auto n = ::write(to_worker_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::system_error(errno, std::generic_category(), "write to worker");
    done += static_cast<std::size_t>(n);
  }
}

std::string WorkerProcess::receive(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (const auto end = buffered_.find('\n'); end != std::string::npos) {
      std::string line = buffered_.substr(0, end);
      buffered_.erase(0, end + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      throw std::runtime_error("worker " + std::to_string(pid_) + " did not answer within " +
                               std::to_string(timeout.count()) + " ms");
    }
    pollfd p{.fd = from_worker_, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    std::array<char, 4096> chunk{};
    const auto n = ::read(from_worker_, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("worker " + std::to_string(pid_) + " exited");
    buffered_.append(chunk.data(), static_cast<std::size_t>(n));
  }
}

}  // namespace herald::bench
