#include "storage/rocksdb/rocksdb_record_store.h"

#include <memory>
#include <string>

#include "common/log.h"
#include "storage/rocksdb/detail/key_codec.h"
#include "storage/rocksdb/detail/record_value_codec.h"
#include "storage/rocksdb/rocksdb_database.h"
#include "storage/rocksdb/rocksdb_error.h"

namespace herald::storage {
namespace {

boost::system::error_code corrupt_record(std::string_view key) {
  log::error("storage_corrupt_meta", {{"what", "record"}, {"key_bytes", key.size()}});
  return make_error_code(RocksDbError::kCorruptMeta);
}

}  // namespace

RocksDbRecordStore::RocksDbRecordStore(RocksDbDatabase& database) : database_(database) {}

boost::system::result<std::optional<Record>> RocksDbRecordStore::get(std::string_view key,
                                                                     std::int64_t now_ms) {
  if (key.empty() || key.size() > kMaxRecordKeyBytes) return RocksDbError::kBadRecordKey;
  ::rocksdb::PinnableSlice value;
  auto status = database_.db().Get(::rocksdb::ReadOptions(), database_.records(), key, &value);
  if (status.IsNotFound()) return std::optional<Record>();
  if (!status.ok()) return make_error_code(status);
  auto record = detail::decode_record_value(key, value.ToStringView());
  if (!record) return corrupt_record(key);
  if (!record->live_at(now_ms)) return std::optional<Record>();
  return std::optional<Record>(std::move(*record));
}

boost::system::result<std::vector<Record>> RocksDbRecordStore::scan(std::string_view prefix,
                                                                    std::string_view after_key,
                                                                    std::size_t limit,
                                                                    std::int64_t now_ms) {
  std::vector<Record> records;
  if (limit == 0) return records;
  const std::string upper = detail::prefix_successor(prefix);
  const ::rocksdb::Slice upper_slice(upper);
  ::rocksdb::ReadOptions options;
  if (!upper.empty()) options.iterate_upper_bound = &upper_slice;
  // The first key after after_key: after_key followed by a zero byte.
  std::string lower(after_key);
  if (!lower.empty()) lower.push_back('\0');
  if (lower < prefix) lower = prefix;

  std::unique_ptr<::rocksdb::Iterator> it(database_.db().NewIterator(options, database_.records()));
  for (it->Seek(lower); it->Valid() && records.size() < limit; it->Next()) {
    const auto key = it->key().ToStringView();
    auto record = detail::decode_record_value(key, it->value().ToStringView());
    if (!record) return corrupt_record(key);
    if (record->live_at(now_ms)) records.push_back(std::move(*record));
  }
  if (!it->status().ok()) return make_error_code(it->status());
  return records;
}

}  // namespace herald::storage
