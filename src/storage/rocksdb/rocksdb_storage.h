// RocksDbStorage: the embedded storage layer in one object, the database and the stores built
// on it, opened together and torn down in the right order (stores first, so that every queued
// append is written before the database records its clean shutdown and closes).
//
//   auto storage = herald::storage::RocksDbStorage::open({.path = "/var/lib/herald/db"});
//   if (!storage) { log the storage.error().message; exit }   // or storage.value() to throw
//   logic::MessageService service(..., (*storage)->streams(), (*storage)->devices(), ...);
#pragma once

#include <memory>

#include <boost/system/result.hpp>

#include "storage/rocksdb/rocksdb_database.h"
#include "storage/rocksdb/rocksdb_device_store.h"
#include "storage/rocksdb/rocksdb_error.h"
#include "storage/rocksdb/rocksdb_options.h"
#include "storage/rocksdb/rocksdb_record_store.h"
#include "storage/rocksdb/rocksdb_stream_store.h"

namespace herald::storage {

class RocksDbStorage {
 public:
  // Opens (or creates) the database at options.path and starts the stream store's writer.
  // On failure the error's message names the path and the engine's reason; result::value()
  // throws it as boost::system::system_error, for start-up code.
  [[nodiscard]] static boost::system::result<std::unique_ptr<RocksDbStorage>, OpenError> open(
      const RocksDbOptions& options);

  RocksDbStorage(const RocksDbStorage&) = delete;
  RocksDbStorage& operator=(const RocksDbStorage&) = delete;

  [[nodiscard]] RocksDbStreamStore& streams() { return *streams_; }
  [[nodiscard]] RocksDbDeviceStore& devices() { return *devices_; }
  // Reads records; write them through streams().async_append(AppendBatch).
  [[nodiscard]] RocksDbRecordStore& records() { return *records_; }
  [[nodiscard]] RocksDbDatabase& database() { return *database_; }

 private:
  explicit RocksDbStorage(std::unique_ptr<RocksDbDatabase> database, const RocksDbOptions& options);

  // Declaration order is destruction order reversed: the database outlives the stores.
  std::unique_ptr<RocksDbDatabase> database_;
  std::unique_ptr<RocksDbStreamStore> streams_;
  std::unique_ptr<RocksDbDeviceStore> devices_;
  std::unique_ptr<RocksDbRecordStore> records_;
};

}  // namespace herald::storage
