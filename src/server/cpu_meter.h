// CpuMeter: the share of the machine this process used between its last two samples (user +
// system time from getrusage over wall time times the cores), for the load a node reports.
//
// sample() is called by one timer on one loop (about once a second); share() may be read from
// any thread (an atomic).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

namespace herald::server {

class CpuMeter {
 public:
  CpuMeter() : last_cpu_(process_cpu()), last_wall_(std::chrono::steady_clock::now()) {}

  // Takes a sample: share() becomes the use since the previous one.
  void sample() {
    const auto cpu = process_cpu();
    const auto wall = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(wall - last_wall_).count();
    const double cores = std::max(1u, std::thread::hardware_concurrency());
    if (elapsed > 0) {
      share_.store(std::clamp((cpu - last_cpu_) / (elapsed * cores), 0.0, 1.0),
                   std::memory_order_relaxed);
    }
    last_cpu_ = cpu;
    last_wall_ = wall;
  }

  // 0..1: 1 when every core was busy with this process.
  [[nodiscard]] double share() const { return share_.load(std::memory_order_relaxed); }

 private:
  // User + system seconds this process used so far.
  static double process_cpu() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) {
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
  }

  double last_cpu_;
  std::chrono::steady_clock::time_point last_wall_;
  std::atomic<double> share_{0};
};

}  // namespace herald::server
