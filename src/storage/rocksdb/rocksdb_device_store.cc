#include "storage/rocksdb/rocksdb_device_store.h"

#include <functional>
#include <memory>
#include <string>

#include <rocksdb/write_batch.h>

#include "common/log.h"
#include "storage/rocksdb/detail/key_codec.h"
#include "storage/rocksdb/detail/meta_codec.h"
#include "storage/rocksdb/rocksdb_database.h"
#include "storage/rocksdb/rocksdb_error.h"
#include "storage/rocksdb/rocksdb_stream_store.h"

namespace herald::storage {
namespace {

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= RocksDbDeviceStore::kMaxNameBytes;
}

bool valid_stream(std::string_view stream) {
  return !stream.empty() && stream.size() <= RocksDbStreamStore::kMaxStreamKeyBytes;
}

// result<bool> cannot be built implicitly from an error_code (error_code converts to bool).
boost::system::result<bool> bool_error(const boost::system::error_code& ec) {
  return {boost::system::in_place_error, ec};
}

boost::system::error_code corrupt(std::string_view what, std::string_view first,
                                  std::string_view second) {
  log::error("storage_corrupt_meta", {{"what", what}, {"first", first}, {"second", second}});
  return make_error_code(RocksDbError::kCorruptMeta);
}

// Visits, in key order, the second halves of the pair keys (detail::pair_key) of `family` whose
// first half is `first`, starting after `after` (exclusive; empty = from the first), while
// `visit(second)` returns true. `what` names the keys in a corruption report.
template <class Visit>
boost::system::error_code scan_pairs(::rocksdb::DB& db, ::rocksdb::ColumnFamilyHandle* family,
                                     std::string_view first, std::string_view after,
                                     std::string_view what, Visit visit) {
  const std::string prefix = detail::pair_key_prefix(first);
  const std::string upper = detail::prefix_successor(prefix);
  const ::rocksdb::Slice upper_slice(upper);
  ::rocksdb::ReadOptions options;
  if (!upper.empty()) options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<::rocksdb::Iterator> it(db.NewIterator(options, family));
  for (it->Seek(after.empty() ? prefix : detail::pair_key(first, after)); it->Valid(); it->Next()) {
    auto second = detail::pair_key_second(it->key().ToStringView(), prefix);
    if (!second || second->empty()) return corrupt(what, first, "");
    if (!after.empty() && *second == after) continue;
    if (!visit(*second)) break;
  }
  if (!it->status().ok()) return make_error_code(it->status());
  return {};
}

}  // namespace

RocksDbDeviceStore::RocksDbDeviceStore(RocksDbDatabase& database) : database_(database) {}

std::mutex& RocksDbDeviceStore::stripe(std::string_view first, std::string_view second) {
  const std::size_t h =
      std::hash<std::string_view>{}(first)*31 + std::hash<std::string_view>{}(second);
  return stripes_[h % stripes_.size()];
}

boost::system::result<bool> RocksDbDeviceStore::register_device(std::string_view app,
                                                                std::string_view device,
                                                                std::int64_t now_ms) {
  if (!valid_name(app) || !valid_name(device)) return RocksDbError::kBadKey;
  const std::string app_key = detail::pair_key(app, device);
  // Held across read and write: two registrations of one pair agree on which one was first.
  std::lock_guard lock(stripe(app, device));
  auto existing = registered_at(app, device);
  if (!existing) return bool_error(existing.error());
  if (*existing) return false;

  const std::string value = detail::encode_registration(now_ms);
  ::rocksdb::WriteBatch batch;
  auto status = batch.Put(database_.app_devices(), app_key, value);
  if (status.ok())
    status = batch.Put(database_.device_apps(), detail::pair_key(device, app), value);
  if (!status.ok()) return bool_error(make_error_code(status));
  if (auto ec = write_synced(batch, "storage_register_failed", app)) return bool_error(ec);
  return true;
}

boost::system::result<bool> RocksDbDeviceStore::unregister_device(std::string_view app,
                                                                  std::string_view device) {
  if (!valid_name(app) || !valid_name(device)) return RocksDbError::kBadKey;
  // Held across read and write, as in register_device.
  std::lock_guard lock(stripe(app, device));
  auto existing = registered_at(app, device);
  if (!existing) return bool_error(existing.error());
  if (!*existing) return false;

  ::rocksdb::WriteBatch batch;
  auto status = batch.Delete(database_.app_devices(), detail::pair_key(app, device));
  if (status.ok()) status = batch.Delete(database_.device_apps(), detail::pair_key(device, app));
  if (!status.ok()) return bool_error(make_error_code(status));
  if (auto ec = write_synced(batch, "storage_unregister_failed", app)) return bool_error(ec);
  return true;
}

boost::system::error_code RocksDbDeviceStore::write_synced(::rocksdb::WriteBatch& batch,
                                                           std::string_view event,
                                                           std::string_view app) {
  ::rocksdb::WriteOptions synced;
  synced.sync = true;
  auto status = database_.db().Write(synced, &batch);
  if (status.ok()) return {};
  database_.note_write_failure();
  log::error(event, {{"app", app}, {"error", status.ToString()}});
  return make_error_code(status);
}

boost::system::result<std::optional<std::int64_t>> RocksDbDeviceStore::registered_at(
    std::string_view app, std::string_view device) {
  if (!valid_name(app) || !valid_name(device)) return RocksDbError::kBadKey;
  ::rocksdb::PinnableSlice value;
  auto status = database_.db().Get(::rocksdb::ReadOptions(), database_.app_devices(),
                                   detail::pair_key(app, device), &value);
  if (status.IsNotFound()) return std::optional<std::int64_t>();
  if (!status.ok()) return make_error_code(status);
  auto registered = detail::decode_registration(value.ToStringView());
  if (!registered) return corrupt("registration", app, device);
  return std::optional<std::int64_t>(*registered);
}

boost::system::result<bool> RocksDbDeviceStore::is_registered(std::string_view app,
                                                              std::string_view device) {
  auto registered = registered_at(app, device);
  if (!registered) return bool_error(registered.error());
  return registered->has_value();
}

boost::system::result<std::vector<std::string>> RocksDbDeviceStore::apps_of(
    std::string_view device) {
  if (!valid_name(device)) return RocksDbError::kBadKey;
  // Keys sort bytewise, so the apps come out sorted.
  std::vector<std::string> apps;
  if (auto ec = scan_pairs(database_.db(), database_.device_apps(), device, "", "device_apps key",
                           [&](std::string_view app) {
                             apps.emplace_back(app);
                             return true;
                           })) {
    return ec;
  }
  return apps;
}

boost::system::result<std::vector<std::string>> RocksDbDeviceStore::devices_of(
    std::string_view app, std::string_view after, std::size_t limit) {
  if (!valid_name(app)) return RocksDbError::kBadKey;
  std::vector<std::string> devices;
  if (limit == 0) return devices;
  if (auto ec = scan_pairs(database_.db(), database_.app_devices(), app, after, "app_devices key",
                           [&](std::string_view device) {
                             devices.emplace_back(device);
                             return devices.size() < limit;
                           })) {
    return ec;
  }
  return devices;
}

boost::system::result<void> RocksDbDeviceStore::save_ack(std::string_view device,
                                                         std::string_view stream,
                                                         const AckedCursor& cursor) {
  if (!valid_name(device) || !valid_stream(stream)) return RocksDbError::kBadKey;
  // Held across read and write: concurrent acks cannot move the cursor back.
  std::lock_guard lock(stripe(device, stream));
  auto stored = acked(device, stream);
  if (!stored) return stored.error();
  if (*stored && (*stored)->epoch == cursor.epoch && (*stored)->seq >= cursor.seq) return {};

  auto status =
      database_.db().Put(::rocksdb::WriteOptions(), database_.acked_cursors(),
                         detail::pair_key(device, stream), detail::encode_acked_cursor(cursor));
  if (!status.ok()) {
    database_.note_write_failure();
    return make_error_code(status);
  }
  return {};
}

boost::system::result<std::optional<AckedCursor>> RocksDbDeviceStore::acked(
    std::string_view device, std::string_view stream) {
  if (!valid_name(device) || !valid_stream(stream)) return RocksDbError::kBadKey;
  ::rocksdb::PinnableSlice value;
  auto status = database_.db().Get(::rocksdb::ReadOptions(), database_.acked_cursors(),
                                   detail::pair_key(device, stream), &value);
  if (status.IsNotFound()) return std::optional<AckedCursor>();
  if (!status.ok()) return make_error_code(status);
  auto cursor = detail::decode_acked_cursor(value.ToStringView());
  if (!cursor) return corrupt("acked cursor", device, stream);
  return std::optional<AckedCursor>(*cursor);
}

}  // namespace herald::storage
