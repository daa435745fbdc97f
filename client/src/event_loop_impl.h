// EventLoop::Impl: one io_context run by N threads, kept alive by a work guard until the EventLoop
// is destroyed. Clients take a strand of `io` each.
#pragma once

#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "herald/client.h"

namespace herald {

struct EventLoop::Impl {
  explicit Impl(int thread_count);
  ~Impl();

  // True on one of this loop's threads, where blocking for the loop would deadlock.
  [[nodiscard]] bool in_loop_thread() { return io.get_executor().running_in_this_thread(); }

  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work;
  std::vector<std::thread> threads;
};

}  // namespace herald
