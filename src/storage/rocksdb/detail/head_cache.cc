#include "storage/rocksdb/detail/head_cache.h"

namespace herald::storage::detail {

HeadCache::HeadCache(std::size_t capacity_streams) : capacity_(capacity_streams) {}

const StreamMeta* HeadCache::find(std::string_view stream) {
  auto it = index_.find(stream);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->second;
}

void HeadCache::put(std::string_view stream, const StreamMeta& meta) {
  if (capacity_ == 0) return;
  if (auto it = index_.find(stream); it != index_.end()) {
    it->second->second = meta;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(std::string(stream), meta);
  index_.emplace(lru_.front().first, lru_.begin());
  while (index_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

void HeadCache::erase(std::string_view stream) {
  auto it = index_.find(stream);
  if (it == index_.end()) return;
  auto node = it->second;
  index_.erase(it);
  lru_.erase(node);
}

}  // namespace herald::storage::detail
