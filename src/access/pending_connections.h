// PendingConnections: the process-wide cap on unauthenticated device connections — sockets
// accepted whose Hello has not been verified yet — and the order in which they came.
//
// When the cap is reached, the oldest pending connection is evicted to admit the new one: its
// socket is shut down (shutdown(2), both directions) and its own event loop, which sees the end
// of stream, closes it and its session the usual way. Refusing the newcomer instead would let a
// slowloris that fills the cap lock every device out until its sockets reach the handshake
// deadline; evicting the oldest means an attacker must open more than `cap` connections within
// one honest handshake (a round trip and a Hello) to crowd a device out, and a device that was
// crowded out simply retries.
//
//   admit(fd)  ──▶ [oldest] ◀─▶ ... ◀─▶ [newest]      at most `cap` entries
//                   └─ shut down when a new one comes and the list is full
//   remove(fd) ◀── the session authenticated, or closes before it did (every close path)
//
// Entries are found by their socket's descriptor, unique among open ones, so a session carries
// nothing for it (an idle authenticated connection pays no byte for the cap). Exact counting: an
// entry leaves exactly once, by remove() or by eviction, whichever comes first; remove() of an
// evicted entry finds nothing, and cannot find another connection's: the caller's descriptor is
// still open, so no other pending connection has it.
//
// Thread-safety: every member may be called from any thread (one mutex, held for a few pointer
// updates, a hash lookup and, on eviction, one shutdown(2)). Shutting down another loop's socket
// is safe because a session removes its entry before it closes its socket: while the mutex is
// held, a descriptor in the list is open and is that session's. Memory: a 12-byte node and a hash
// entry per pending connection, at most `cap` of each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace herald::access {

class PendingConnections {
 public:
  // `cap` == 0: no cap; admit() files nothing.
  explicit PendingConnections(std::size_t cap);

  // Files the connection whose socket is `fd` as the newest pending one, shutting the oldest
  // down first when `cap` are pending; true when it did. `fd` must stay open until remove(fd)
  // returned. A negative `fd` is not filed.
  [[nodiscard]] bool admit(int fd);
  // The connection whose socket is `fd` (still open) authenticated or is closing: it is no longer
  // pending. Idempotent; a no-op when it was evicted or never filed.
  void remove(int fd);

  [[nodiscard]] std::size_t cap() const { return cap_; }
  [[nodiscard]] std::size_t size() const;

 private:
  static constexpr std::uint32_t kNone = 0xffffffffu;
  struct Node {
    int fd = -1;                 // -1: free
    std::uint32_t prev = kNone;  // towards the oldest; for free nodes unused
    std::uint32_t next = kNone;  // towards the newest; for free nodes the next free one
  };

  // Takes node `index` out of the list (and its descriptor out of the index) and frees it.
  void unlink(std::uint32_t index);

  const std::size_t cap_;
  mutable std::mutex mu_;
  std::vector<Node> nodes_;                         // grows up to cap_
  std::unordered_map<int, std::uint32_t> node_of_;  // descriptor -> node, for the linked ones
  std::uint32_t oldest_ = kNone;
  std::uint32_t newest_ = kNone;
  std::uint32_t free_ = kNone;
};

}  // namespace herald::access
