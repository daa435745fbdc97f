#include "access/pending_connections.h"

#include <sys/socket.h>

#include <limits>

namespace herald::access {

namespace {

// Node indices are 32-bit (kNone excluded); a cap above that is the same as no cap in practice.
constexpr std::size_t kMaxCap = std::numeric_limits<std::uint32_t>::max() - 1;

}  // namespace

PendingConnections::PendingConnections(std::size_t cap) : cap_(cap > kMaxCap ? kMaxCap : cap) {}

std::size_t PendingConnections::size() const {
  std::lock_guard lock(mu_);
  return node_of_.size();
}

void PendingConnections::unlink(std::uint32_t index) {
  Node& n = nodes_[index];
  if (n.prev != kNone) {
    nodes_[n.prev].next = n.next;
  } else {
    oldest_ = n.next;
  }
  if (n.next != kNone) {
    nodes_[n.next].prev = n.prev;
  } else {
    newest_ = n.prev;
  }
  node_of_.erase(n.fd);
  n.fd = -1;
  n.prev = kNone;
  n.next = free_;
  free_ = index;
}

bool PendingConnections::admit(int fd) {
  if (cap_ == 0 || fd < 0) return false;
  std::lock_guard lock(mu_);
  // Never true for a session that removed its entry before closing; an old entry under this
  // descriptor would be a connection closed without it, so it goes without a shutdown.
  if (const auto old = node_of_.find(fd); old != node_of_.end()) unlink(old->second);
  bool evicted = false;
  if (node_of_.size() >= cap_) {
    // Invariant: the list holds node_of_.size() > 0 nodes, each with an open descriptor.
    const std::uint32_t victim = oldest_;
    ::shutdown(nodes_[victim].fd, SHUT_RDWR);
    unlink(victim);
    evicted = true;
  }
  std::uint32_t index = free_;
  if (index != kNone) {
    free_ = nodes_[index].next;
  } else {
    // Invariant: every node is linked or free, and fewer than cap_ are linked here.
    index = static_cast<std::uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  Node& n = nodes_[index];
  n.fd = fd;
  n.prev = newest_;
  n.next = kNone;
  if (newest_ != kNone) {
    nodes_[newest_].next = index;
  } else {
    oldest_ = index;
  }
  newest_ = index;
  node_of_.emplace(fd, index);
  return evicted;
}

void PendingConnections::remove(int fd) {
  if (cap_ == 0 || fd < 0) return;
  std::lock_guard lock(mu_);
  if (const auto it = node_of_.find(fd); it != node_of_.end()) unlink(it->second);
}

}  // namespace herald::access
