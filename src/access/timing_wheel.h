// TimingWheel: deadlines for many connections without a timer each (Varghese & Lauck's hashed
// wheel). One wheel per event loop; only that loop's thread may touch it.
//
//   slot:   0     1     2    ...   N-1        tick() visits one slot per tick_ms;
//         [a,d] [   ] [b]  ...  [c, e]       a member sits in the slot of its deadline and is
//            ^ cursor                         looked at only when the cursor reaches that slot.
//
// A member's deadline may move later at no cost (activity just updates the member's field):
// when its slot comes round, the wheel sees the deadline has not passed and files it again.
// Deadlines beyond one revolution sit in the farthest slot and are refiled when reached.
// Members are held weakly, so a member that died is dropped on its next visit.
//
// T must provide `std::int64_t deadline_ms() const` and `bool closed() const`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace herald::access {

template <class T>
class TimingWheel {
 public:
  // `tick_ms` is the resolution; `slots` * `tick_ms` is one revolution.
  TimingWheel(std::int64_t tick_ms, std::size_t slots, std::int64_t now_ms)
      : tick_ms_(tick_ms), slots_(slots), now_tick_(now_ms / tick_ms) {}

  // Files `member` under its current deadline. Call once per member; the wheel keeps it filed
  // until it is closed or expired.
  void add(const std::shared_ptr<T>& member) {
    file(member, member->deadline_ms());
    ++size_;
  }

  // Advances to `now_ms`, calling `expire(shared_ptr<T>)` for every member whose deadline has
  // passed (after which the wheel forgets it). Returns how many expired.
  template <class F>
  std::size_t advance(std::int64_t now_ms, F&& expire) {
    std::size_t expired = 0;
    const std::int64_t target = now_ms / tick_ms_;
    while (now_tick_ <= target) {
      // Invariant: now_tick_ is the first tick not yet visited, also while a slot is processed,
      // so a member refiled here never lands in the slot being emptied.
      auto& slot = slots_[index(now_tick_++)];
      std::vector<std::weak_ptr<T>> due;
      due.swap(slot);
      for (auto& weak : due) {
        auto member = weak.lock();
        if (!member || member->closed()) {
          --size_;
          continue;
        }
        if (member->deadline_ms() <= now_ms) {
          --size_;
          ++expired;
          expire(std::move(member));
        } else {
          file(member, member->deadline_ms());
        }
      }
      // Give memory back after a burst instead of keeping the high-water capacity per slot.
      if (slot.empty() && slot.capacity() > 1024) slot.shrink_to_fit();
    }
    return expired;
  }

  // Calls `f(shared_ptr<T>)` for every live member (e.g. to close them all at shutdown).
  template <class F>
  void for_each(F&& f) {
    for (auto& slot : slots_) {
      for (auto& weak : slot) {
        if (auto member = weak.lock(); member && !member->closed()) f(member);
      }
    }
  }

  // Members filed, including ones that closed since their last visit.
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  std::size_t index(std::int64_t tick) const {
    return static_cast<std::size_t>(tick) % slots_.size();
  }

  void file(const std::shared_ptr<T>& member, std::int64_t deadline_ms) {
    std::int64_t tick = (deadline_ms + tick_ms_ - 1) / tick_ms_;
    // Never file into a visited tick (it would wait a whole revolution) nor beyond one
    // revolution (it would wrap onto an earlier slot).
    const std::int64_t max_tick = now_tick_ + static_cast<std::int64_t>(slots_.size()) - 1;
    if (tick < now_tick_) tick = now_tick_;
    if (tick > max_tick) tick = max_tick;
    slots_[index(tick)].push_back(member);
  }

  std::int64_t tick_ms_;
  std::vector<std::vector<std::weak_ptr<T>>> slots_;
  std::int64_t now_tick_;
  std::size_t size_ = 0;
};

}  // namespace herald::access
