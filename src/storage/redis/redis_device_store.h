// RedisDeviceStore: the cluster mode's DeviceStore. Registrations are kept both ways (sorted
// sets with every score 0, so ordered bytewise: the app's devices, the device's apps) plus the
// first registration time per pair; acked cursors are a hash per device (detail/key_layout.h).
//
// register_device and unregister_device are one small script each, atomic on the master, so
// the two directions never disagree and concurrent calls of one pair agree on which was first;
// they are durable when they return (appendfsync always, and WAIT when replicas_to_wait > 0).
// save_ack is a script that never moves a cursor back within an epoch.
//
// Every call runs on the caller's thread with a pooled client. Thread-safe; the scripts and the
// pool must outlive the store.
#pragma once

#include <chrono>

#include "storage/device_store.h"
#include "storage/redis/detail/client_pool.h"
#include "storage/redis/detail/key_layout.h"
#include "storage/redis/detail/scripts.h"
#include "storage/redis/redis_storage_options.h"

namespace herald::storage {

class RedisDeviceStore final : public DeviceStore {
 public:
  // App and device names are 1 to RedisStreamStore::kMaxNameBytes bytes, stream keys follow
  // kMaxStreamKeyBytes; others are refused with RedisError::kBadKey.
  RedisDeviceStore(const RedisStorageOptions& options, const redis_detail::Scripts& scripts,
                   redis_detail::ClientPool& pool);

  RedisDeviceStore(const RedisDeviceStore&) = delete;
  RedisDeviceStore& operator=(const RedisDeviceStore&) = delete;

  // Errors (every call): kBadKey, kCorruptMeta, kTooFewReplicas (the registration change is on
  // the master, possibly not on replicas), the client's errors. A kConnectionLost or kTimedOut
  // from register_device or unregister_device leaves the outcome unknown; both are idempotent,
  // so calling again settles it (register then answers "not new" if the first one landed).
  [[nodiscard]] boost::system::result<bool> register_device(std::string_view app,
                                                            std::string_view device,
                                                            std::int64_t now_ms) override;
  [[nodiscard]] boost::system::result<bool> unregister_device(std::string_view app,
                                                              std::string_view device) override;
  [[nodiscard]] boost::system::result<bool> is_registered(std::string_view app,
                                                          std::string_view device) override;
  [[nodiscard]] boost::system::result<std::optional<std::int64_t>> registered_at(
      std::string_view app, std::string_view device) override;
  [[nodiscard]] boost::system::result<std::vector<std::string>> apps_of(
      std::string_view device) override;
  [[nodiscard]] boost::system::result<std::vector<std::string>> devices_of(
      std::string_view app, std::string_view after, std::size_t limit) override;

  // Within an epoch a cursor at or below the stored one is ignored (success, nothing written);
  // a cursor of another epoch replaces the stored one.
  [[nodiscard]] boost::system::result<void> save_ack(std::string_view device,
                                                     std::string_view stream,
                                                     const AckedCursor& cursor) override;
  [[nodiscard]] boost::system::result<std::optional<AckedCursor>> acked(
      std::string_view device, std::string_view stream) override;

 private:
  // Runs a registration script and, when configured, WAITs for the replicas.
  [[nodiscard]] boost::system::result<bool> change_registration(const redis_detail::Script& script,
                                                                std::vector<std::string> args);
  [[nodiscard]] boost::system::result<RedisValue> call(const RedisCommand& command);

  const redis_detail::KeyLayout keys_;
  const int replicas_to_wait_;
  const std::chrono::milliseconds replica_wait_timeout_;
  const redis_detail::Scripts& scripts_;
  redis_detail::ClientPool& pool_;
};

}  // namespace herald::storage
