// RedisStorage: the cluster mode's storage layer in one object, the three stores on one Redis
// Cluster keyspace, opened together and torn down in the right order (the stream store first,
// so that every queued append is sent before the clients go).
//
//   auto storage = herald::storage::RedisStorage::open(options);
//   if (!storage) { log storage.error().message; exit }   // or storage.value() to throw
//   logic::MessageService service(..., (*storage)->streams(), (*storage)->devices(), ...);
//
// Several heraldd nodes open the same nodes and keyspace and share everything stored.
#pragma once

#include <memory>
#include <string>

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include "storage/redis/detail/client_pool.h"
#include "storage/redis/detail/scripts.h"
#include "storage/redis/redis_device_store.h"
#include "storage/redis/redis_error.h"
#include "storage/redis/redis_record_store.h"
#include "storage/redis/redis_storage_options.h"
#include "storage/redis/redis_stream_store.h"

namespace herald::storage {

// What RedisStorage::open reports: the code and a message naming the nodes or master and the
// reason, e.g. "Redis master 10.0.0.5:6379 runs with appendfsync everysec; ...".
struct RedisOpenError {
  boost::system::error_code code;
  std::string message;
};

// Lets result<T, RedisOpenError>::value() throw boost::system::system_error with the message.
[[noreturn]] void throw_exception_from_error(const RedisOpenError& error,
                                             const boost::source_location& location);

class RedisStorage {
 public:
  // Connects to options.nodes, learns the cluster's masters, checks that each runs with
  // appendonly yes and appendfsync always (unless require_fsync_always is false), loads the
  // scripts on each and starts the stream store's writer. Errors: kBadKeyspace, kBadAddress (no
  // nodes), kConnectFailed and the client's errors, kNotDurable.
  [[nodiscard]] static boost::system::result<std::unique_ptr<RedisStorage>, RedisOpenError> open(
      const RedisStorageOptions& options);

  ~RedisStorage();
  RedisStorage(const RedisStorage&) = delete;
  RedisStorage& operator=(const RedisStorage&) = delete;

  [[nodiscard]] RedisStreamStore& streams() { return *streams_; }
  [[nodiscard]] RedisDeviceStore& devices() { return *devices_; }
  // Reads records; write them through streams().async_append(AppendBatch).
  [[nodiscard]] RedisRecordStore& records() { return *records_; }

 private:
  RedisStorage(const RedisStorageOptions& options, RedisClusterOptions client_options,
               std::unique_ptr<redis_detail::Scripts> scripts);

  // Declaration order is destruction order reversed: scripts and pool outlive the stores.
  std::unique_ptr<redis_detail::Scripts> scripts_;
  redis_detail::ClientPool pool_;
  std::unique_ptr<RedisRecordStore> records_;
  std::unique_ptr<RedisDeviceStore> devices_;
  std::unique_ptr<RedisStreamStore> streams_;
};

}  // namespace herald::storage
