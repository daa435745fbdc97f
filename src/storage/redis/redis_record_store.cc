#include "storage/redis/redis_record_store.h"

#include <algorithm>

#include "common/log.h"
#include "storage/redis/detail/value_codec.h"
#include "storage/redis/redis_error.h"
#include "storage/redis/redis_stream_store.h"

namespace herald::storage {
namespace {

boost::system::error_code corrupt_record(std::string_view key) {
  log::error("storage_corrupt_meta", {{"what", "record"}, {"key_bytes", key.size()}});
  return make_error_code(RedisError::kCorruptMeta);
}

// The smallest string greater than every string starting with `prefix`; empty when there is
// none (every byte 0xff).
std::string prefix_successor(std::string_view prefix) {
  std::string next(prefix);
  while (!next.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(next.back());
    if (last != 0xff) {
      ++last;
      return next;
    }
    next.pop_back();
  }
  return next;
}

}  // namespace

RedisRecordStore::RedisRecordStore(std::string_view keyspace, const redis_detail::Scripts& scripts,
                                   redis_detail::ClientPool& pool)
    : keys_(keyspace), scripts_(scripts), pool_(pool) {}

boost::system::result<std::optional<Record>> RedisRecordStore::get(std::string_view key,
                                                                   std::int64_t now_ms) {
  if (key.empty() || key.size() > RedisStreamStore::kMaxRecordKeyBytes) {
    return RedisError::kBadRecordKey;
  }
  const RedisCommand command{"GET", keys_.record(key)};
  auto reply =
      pool_.run([&](RedisClusterClient& client) { return client.call(keys_.prefix(), command); });
  if (!reply) return reply.error();
  if (reply->is_error()) return redis_detail::reply_error(*reply);
  if (reply->is_nil()) return std::optional<Record>();
  auto record = redis_detail::decode_record(key, reply->text);
  if (!record) return corrupt_record(key);
  if (!record->live_at(now_ms)) return std::optional<Record>();
  return std::optional<Record>(std::move(*record));
}

boost::system::result<std::vector<Record>> RedisRecordStore::scan(std::string_view prefix,
                                                                  std::string_view after_key,
                                                                  std::size_t limit,
                                                                  std::int64_t now_ms) {
  std::vector<Record> records;
  if (limit == 0) return records;
  // ZRANGEBYLEX bounds: "[x" inclusive, "(x" exclusive, "-" / "+" the ends.
  std::string lower = after_key.empty() || after_key < prefix ? "[" + std::string(prefix)
                                                              : "(" + std::string(after_key);
  if (lower == "[") lower = "-";
  const std::string successor = prefix_successor(prefix);
  const std::string upper = successor.empty() ? "+" : "(" + successor;

  while (records.size() < limit && !lower.empty()) {
    const std::size_t want = std::min<std::size_t>(limit - records.size(), 1024);
    std::vector<std::string> args{lower, upper, std::to_string(want), std::to_string(now_ms),
                                  "1024"};
    auto reply = pool_.run([&](RedisClusterClient& client) {
      return redis_detail::run_script(client, scripts_.scan, keys_.prefix(), args);
    });
    if (!reply) return reply.error();
    const auto& e = reply->elements;
    if (reply->type != RedisValue::Type::kArray || e.empty() || e.size() % 2 != 1) {
      log::error("redis_unexpected_reply", {{"what", "scan"}});
      return make_error_code(RedisError::kUnexpectedReply);
    }
    for (std::size_t i = 1; i + 1 < e.size(); i += 2) {
      auto record = redis_detail::decode_record(e[i].text, e[i + 1].text);
      if (!record) return corrupt_record(e[i].text);
      records.push_back(std::move(*record));
    }
    lower = e[0].text;  // empty: the range is exhausted
  }
  return records;
}

}  // namespace herald::storage
