// AsyncLock: mutual exclusion for coroutines that hold it across co_await (a store write), which
// a std::mutex must never be. One token in a one-slot channel: acquiring sends it (waiting while
// another holder's token fills the slot), the Guard's destructor takes it back out.
//
//   auto held = co_await lock.acquire();   // released when `held` goes out of scope
//
// Fair in arrival order (the channel queues waiting senders). Thread-safe.
#pragma once

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace herald::logic::detail {

class AsyncLock {
 public:
  explicit AsyncLock(boost::asio::any_io_executor executor) : slot_(std::move(executor), 1) {}

  class [[nodiscard]] Guard {
   public:
    explicit Guard(AsyncLock* lock) : lock_(lock) {}
    Guard(Guard&& other) noexcept : lock_(std::exchange(other.lock_, nullptr)) {}
    Guard& operator=(Guard&&) = delete;
    ~Guard() {
      if (lock_ != nullptr) lock_->slot_.try_receive([](boost::system::error_code) {});
    }

   private:
    AsyncLock* lock_;
  };

  boost::asio::awaitable<Guard> acquire() {
    // Never fails: the channel is neither closed nor cancelled while the lock lives.
    auto [ec] = co_await slot_.async_send(boost::system::error_code{},
                                          boost::asio::as_tuple(boost::asio::use_awaitable));
    (void)ec;
    co_return Guard(this);
  }

 private:
  boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> slot_;
};

}  // namespace herald::logic::detail
