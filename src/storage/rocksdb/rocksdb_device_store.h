// RocksDbDeviceStore: the embedded DeviceStore, on the app_devices, device_apps and
// acked_cursors column families of a RocksDbDatabase (layout in docs/storage.md).
//
// A registration is written and removed in both directions (app -> device for "may this app
// send to it", device -> app for "which apps does it serve") in one synced WriteBatch, so the
// two never disagree. Acked cursors are written without sync: they serve receipts, statistics and
// pruning, never correctness. Read-modify-write operations (first registration time, a cursor never
// going back) hold one of a fixed set of mutexes chosen by the key, so unrelated keys do not
// contend.
//
// Thread-safe. The database must outlive the store.
#pragma once

#include <array>
#include <cstddef>
#include <mutex>

#include "storage/device_store.h"

namespace rocksdb {
class WriteBatch;
}

namespace herald::storage {

class RocksDbDatabase;

class RocksDbDeviceStore final : public DeviceStore {
 public:
  // App and device names are 1 to kMaxNameBytes bytes; stream keys follow
  // RocksDbStreamStore::kMaxStreamKeyBytes. Others are refused with RocksDbError::kBadKey.
  static constexpr std::size_t kMaxNameBytes = 1024;

  explicit RocksDbDeviceStore(RocksDbDatabase& database);

  RocksDbDeviceStore(const RocksDbDeviceStore&) = delete;
  RocksDbDeviceStore& operator=(const RocksDbDeviceStore&) = delete;

  [[nodiscard]] boost::system::result<bool> register_device(std::string_view app,
                                                            std::string_view device,
                                                            std::int64_t now_ms) override;
  // Deletes both directions in one synced batch, under the pair's stripe mutex with the
  // existence check, so that it agrees with concurrent register_device calls of the pair.
  [[nodiscard]] boost::system::result<bool> unregister_device(std::string_view app,
                                                              std::string_view device) override;
  [[nodiscard]] boost::system::result<bool> is_registered(std::string_view app,
                                                          std::string_view device) override;
  [[nodiscard]] boost::system::result<std::vector<std::string>> apps_of(
      std::string_view device) override;
  [[nodiscard]] boost::system::result<std::vector<std::string>> devices_of(
      std::string_view app, std::string_view after, std::size_t limit) override;

  // Within an epoch a cursor at or below the stored one is ignored (success, nothing written);
  // a cursor of another epoch replaces the stored one (the stream's epoch changed).
  [[nodiscard]] boost::system::result<void> save_ack(std::string_view device,
                                                     std::string_view stream,
                                                     const AckedCursor& cursor) override;
  [[nodiscard]] boost::system::result<std::optional<AckedCursor>> acked(
      std::string_view device, std::string_view stream) override;

  [[nodiscard]] boost::system::result<std::optional<std::int64_t>> registered_at(
      std::string_view app, std::string_view device) override;

 private:
  std::mutex& stripe(std::string_view first, std::string_view second);
  // Writes `batch` synced; logs `event` and notes the failure on error.
  [[nodiscard]] boost::system::error_code write_synced(::rocksdb::WriteBatch& batch,
                                                       std::string_view event,
                                                       std::string_view app);

  RocksDbDatabase& database_;
  std::array<std::mutex, 64> stripes_;
};

}  // namespace herald::storage
