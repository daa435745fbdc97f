#include "storage/rocksdb/rocksdb_storage.h"

namespace herald::storage {

boost::system::result<std::unique_ptr<RocksDbStorage>, OpenError> RocksDbStorage::open(
    const RocksDbOptions& options) {
  auto database = RocksDbDatabase::open(options);
  if (!database) return database.error();
  return std::unique_ptr<RocksDbStorage>(new RocksDbStorage(std::move(*database), options));
}

RocksDbStorage::RocksDbStorage(std::unique_ptr<RocksDbDatabase> database,
                               const RocksDbOptions& options)
    : database_(std::move(database)),
      streams_(std::make_unique<RocksDbStreamStore>(*database_, options)),
      devices_(std::make_unique<RocksDbDeviceStore>(*database_)),
      records_(std::make_unique<RocksDbRecordStore>(*database_)) {}

}  // namespace herald::storage
