// HeraldServer: a real heraldd process on loopback for integration tests and load tools, started
// with its own data directory, two apps and free ports, and stopped (or killed) by its owner.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "process.h"

namespace herald::testing {

struct TestApp {
  std::string id;
  std::string key;
};

inline const TestApp kNewsApp{"news", "news-key-0123456789abcdef"};
inline const TestApp kChatApp{"chat", "chat-key-0123456789abcdef"};

class HeraldServer {
 public:
  // Starts heraldd and waits until it listens. `extra_args` are appended (--name=value).
  explicit HeraldServer(std::vector<std::string> extra_args = {});
  // As above, with `environment` ("NAME=value" each) added to heraldd's, for instance a crash
  // point to arm (HERALD_CRASH_POINT=after_store_write, docs/crash-testing.md).
  HeraldServer(std::vector<std::string> extra_args, std::vector<std::string> environment);
  // As above, with heraldd started through `command_prefix` (a program and its arguments that
  // exec the rest of the command line in the same process, e.g. nsenter into a mount namespace
  // holding a small file system). Every restart() uses it too.
  HeraldServer(std::vector<std::string> extra_args, std::vector<std::string> environment,
               std::vector<std::string> command_prefix);
  ~HeraldServer();  // SIGTERM, then SIGKILL if it does not exit; removes the data directory
  HeraldServer(const HeraldServer&) = delete;
  HeraldServer& operator=(const HeraldServer&) = delete;

  // SIGKILL and reap: the process gets no chance to flush anything.
  void kill9();
  // Starts heraldd again on the same data directory and ports.
  void restart();
  // The environment added for the next start (restart()), replacing the one before; {} = none.
  void set_environment(std::vector<std::string> environment) {
    environment_ = std::move(environment);
  }
  // SIGTERM and wait for a clean exit; returns the exit status.
  int terminate();
  // Waits until the process exits by itself (a drain ended) or `timeout` passes; its wait status,
  // or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  [[nodiscard]] bool running() const { return process_ && process_->running(); }
  [[nodiscard]] pid_t pid() const { return process_ ? process_->pid() : -1; }
  [[nodiscard]] std::uint16_t device_port() const { return device_port_; }
  [[nodiscard]] std::uint16_t http_port() const { return http_port_; }
  [[nodiscard]] const std::filesystem::path& data_dir() const { return data_dir_; }
  // The admin API's token (generated into the data directory on first start).
  [[nodiscard]] std::string admin_token() const;
  // Resident set size of the process, from /proc.
  [[nodiscard]] std::int64_t rss_kib() const;

 private:
  void spawn();
  void wait_ready();

  std::filesystem::path dir_;
  std::filesystem::path data_dir_;
  std::filesystem::path ready_file_;
  std::vector<std::string> extra_args_;
  std::vector<std::string> environment_;
  std::vector<std::string> command_prefix_;
  std::unique_ptr<Process> process_;
  std::uint16_t device_port_ = 0;
  std::uint16_t http_port_ = 0;
};

// A free TCP port on 127.0.0.1 (bound and released; for restarts on the same port).
std::uint16_t free_port();
// Path of a built binary: in $HERALD_BIN_DIR (set by CTest), else in <build>/bin.
std::filesystem::path bin_path(const std::string& name);
// A fresh temporary directory.
std::filesystem::path make_temp_dir(const std::string& prefix);

}  // namespace herald::testing
