// BoundedQueue: a multi-producer, single-consumer queue of at most `capacity` items, for the
// cluster router's background threads. push() never blocks (it refuses when full: the caller
// drops and counts); the consumer takes batches and waits with a timeout, so it notices a stop
// promptly. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

namespace herald::distribution::detail {

template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {}

  // false when the queue holds `capacity` items already or is closed: `item` is not queued.
  bool push(T item) {
    {
      std::lock_guard lock(mu_);
      if (closed_ || items_.size() >= capacity_) return false;
      items_.push_back(std::move(item));
    }
    ready_.notify_one();
    return true;
  }

  // Up to `max` items, oldest first, waiting at most `wait` for the first; empty on timeout or
  // when closed and drained.
  std::vector<T> pop_batch(std::size_t max, std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    ready_.wait_for(lock, wait, [this] { return closed_ || !items_.empty(); });
    std::vector<T> batch;
    const std::size_t n = items_.size() < max ? items_.size() : max;
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    return batch;
  }

  // Refuses further pushes and wakes the consumer; what is queued stays for pop_batch.
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    ready_.notify_all();
  }
  [[nodiscard]] bool closed() {
    std::lock_guard lock(mu_);
    return closed_;
  }
  [[nodiscard]] std::size_t size() {
    std::lock_guard lock(mu_);
    return items_.size();
  }

 private:
  const std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace herald::distribution::detail
