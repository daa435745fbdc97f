#include <stdexcept>

#include "event_loop_impl.h"

namespace herald {

EventLoop::Impl::Impl(int thread_count) : io(thread_count), work(boost::asio::make_work_guard(io)) {
  threads.reserve(static_cast<std::size_t>(thread_count));
  for (int i = 0; i < thread_count; ++i) {
    threads.emplace_back([this] { io.run(); });
  }
}

EventLoop::Impl::~Impl() {
  // Clients were stopped first (documented), so nothing is left to run; stop() also covers a
  // client that was not, whose pending operations are then destroyed with the io_context.
  work.reset();
  io.stop();
  for (auto& t : threads) t.join();
}

EventLoop::EventLoop(int threads) {
  if (threads < 1) throw std::invalid_argument("herald: EventLoop needs at least one thread");
  impl_ = std::make_unique<Impl>(threads);
}

EventLoop::~EventLoop() = default;

}  // namespace herald
