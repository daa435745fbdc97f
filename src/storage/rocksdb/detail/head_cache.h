// HeadCache: the group-commit writer's in-memory copy of stream metas (epoch and head), least
// recently used first out, so that assigning a sequence number costs no read in the common case.
//
// Owned by the writer thread and only touched there; not thread-safe. Invariant: every cached
// value equals the stream's meta in the database (the writer inserts only after a successful
// write and is the only writer of stream metas), so an eviction or a clear loses nothing.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "storage/rocksdb/detail/meta_codec.h"

namespace herald::storage::detail {

class HeadCache {
 public:
  // capacity_streams == 0 disables caching.
  explicit HeadCache(std::size_t capacity_streams);

  HeadCache(const HeadCache&) = delete;
  HeadCache& operator=(const HeadCache&) = delete;

  // The cached meta, marked most recently used; nullptr when absent. The pointer is valid
  // until the next call that inserts or erases.
  [[nodiscard]] const StreamMeta* find(std::string_view stream);

  // Inserts or replaces, then evicts the least recently used beyond capacity.
  void put(std::string_view stream, const StreamMeta& meta);

  void erase(std::string_view stream);

  [[nodiscard]] std::size_t size() const { return index_.size(); }

 private:
  using Node = std::pair<std::string, StreamMeta>;

  std::size_t capacity_;
  std::list<Node> lru_;  // front = most recently used
  // Keys view the strings inside lru_'s nodes, which never move.
  std::unordered_map<std::string_view, std::list<Node>::iterator> index_;
};

}  // namespace herald::storage::detail
