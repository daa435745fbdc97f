// Inbox and RecallLog: what the devices of a test received, filled by client-library handlers on
// the client's event loop and awaited by the test thread (no sleeps: condition variable with a
// deadline).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "herald/client.h"

namespace herald::testing {

// What a client-library handler received, in order, with when each arrived.
template <typename Item>
class Received {
 public:
  // A handler for Client::on_message / on_recall (and their "other" forms) that records here.
  std::function<void(const Item&)> handler() {
    return [this](const Item& item) {
      const auto now = std::chrono::system_clock::now();
      std::lock_guard lock(mu_);
      items_.push_back(item);
      received_at_ms_.push_back(
          std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
      cv_.notify_all();
    };
  }

  // Waits until at least `n` items arrived or `timeout` passed; returns the count.
  std::size_t wait_for(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return items_.size() >= n; });
    return items_.size();
  }

  // Waits until `done(items so far)` holds or `timeout` passed; returns whether it holds.
  template <typename Predicate>
  bool wait_until(Predicate done, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done(items_); });
  }

  std::vector<Item> items() {
    std::lock_guard lock(mu_);
    return items_;
  }

  // When the handler got each item (Unix ms, the system clock), in the same order.
  std::vector<std::int64_t> received_at_ms() {
    std::lock_guard lock(mu_);
    return received_at_ms_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> items_;
  std::vector<std::int64_t> received_at_ms_;
};

// The messages a device received.
class Inbox : public Received<Message> {
 public:
  std::vector<Message> messages() { return items(); }
};

// The recalls a device received.
using RecallLog = Received<Recall>;

// Records connection state changes, to wait for a refusal.
class StateLog {
 public:
  Client::StateHandler handler() {
    return [this](const StateChange& s) {
      std::lock_guard lock(mu_);
      states_.push_back(s);
      cv_.notify_all();
    };
  }
  // Waits for a disconnect carrying a server error code; returns it (0 on timeout).
  std::uint32_t wait_for_error(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    std::uint32_t code = 0;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& s : states_) {
        if (s.error_code != 0) {
          code = s.error_code;
          return true;
        }
      }
      return false;
    });
    return code;
  }
  bool wait_connected(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      for (const auto& s : states_) {
        if (s.state == ConnectionState::kConnected) return true;
      }
      return false;
    });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<StateChange> states_;
};

}  // namespace herald::testing
