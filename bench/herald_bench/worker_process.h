// The coordinator's handle on one herald-bench worker: this same program started again with
// `--worker ...`, talked to by lines over two pipes (worker.cc describes the conversation).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace herald::bench {

class WorkerProcess {
 public:
  // Starts /proc/self/exe --worker `args...`; throws std::runtime_error when it cannot.
  explicit WorkerProcess(const std::vector<std::string>& args);
  // Closes the worker's input (it then stops its subscribers and exits), waits for it, and kills
  // it if it has not exited within 10 s.
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  void send(const std::string& line);
  // The worker's next line; throws std::runtime_error when none comes within `timeout` or the
  // worker exited.
  std::string receive(std::chrono::milliseconds timeout);
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int to_worker_ = -1;
  int from_worker_ = -1;
  std::string buffered_;
};

}  // namespace herald::bench
