// Inbox, RecallLog and StateLog: what the devices of a test received and the connection states
// they went through, filled by client-library handlers on the client's event loop and awaited by
// the test thread (no sleeps: condition variable with a deadline).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
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

// A client's connection state changes, in order, recorded by its state handler on the client's
// strand and awaited by the test thread.
class StateLog {
 public:
  // A change, and the client's heartbeat interval when it was reported (on kConnected: what the
  // server granted in HelloOk); 0 when the log was not given the client.
  struct Entry : StateChange {
    std::uint32_t heartbeat_s = 0;
  };

  Client::StateHandler handler() {
    return [this](const StateChange& change) { record({change, 0}); };
  }
  // As handler(), and records client.heartbeat_interval_s() with each change. `client` must
  // outlive the handler, which it does when the handler is its own.
  Client::StateHandler handler(const Client& client) {
    return [this, &client](const StateChange& change) {
      record({change, client.heartbeat_interval_s()});
    };
  }

  // Waits until the `n`-th change to `state` (from 1); nothing if it did not come in time.
  std::optional<Entry> wait_for(ConnectionState state, std::size_t n,
                                std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    std::optional<Entry> found;
    cv_.wait_for(lock, timeout, [&] {
      std::size_t seen = 0;
      for (const Entry& e : entries_) {
        if (e.state == state && ++seen == n) {
          found = e;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  bool wait_connected(std::chrono::milliseconds timeout) {
    return wait_for(ConnectionState::kConnected, 1, timeout).has_value();
  }
  // Waits for a disconnect carrying a server error code; returns it (0 on timeout).
  std::uint32_t wait_for_error(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    std::uint32_t code = 0;
    cv_.wait_for(lock, timeout, [&] {
      for (const Entry& e : entries_) {
        if (e.error_code != 0) {
          code = e.error_code;
          return true;
        }
      }
      return false;
    });
    return code;
  }

  // The changes so far.
  std::vector<Entry> changes() {
    std::lock_guard lock(mu_);
    return entries_;
  }
  // How many changes so far were to `state`.
  std::size_t count(ConnectionState state) {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::ranges::count(entries_, state, &Entry::state));
  }

 private:
  void record(Entry entry) {
    std::lock_guard lock(mu_);
    entries_.push_back(std::move(entry));
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Entry> entries_;
};

}  // namespace herald::testing
