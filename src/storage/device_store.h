// DeviceStore: which devices are registered for which app, and how far each device has acked
// each of its streams. Part of the storage layer's contract; `rocksdb/` and `redis/` implement it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

namespace herald::storage {

struct AckedCursor {
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::int64_t acked_at_ms = 0;
};

class DeviceStore {
 public:
  virtual ~DeviceStore() = default;

  // Registers `device` for `app` durably (synced). Idempotent: registering again keeps the first
  // registration time. Returns whether the registration is new. Thread-safe.
  [[nodiscard]] virtual boost::system::result<bool> register_device(std::string_view app,
                                                                    std::string_view device,
                                                                    std::int64_t now_ms) = 0;

  // Removes the registration of `device` for `app` durably (synced), in both directions at once.
  // Returns whether it was registered. The device's acked cursors are kept: they belong to its
  // streams, not to the app. Thread-safe; serialised with register_device of the same pair.
  [[nodiscard]] virtual boost::system::result<bool> unregister_device(std::string_view app,
                                                                      std::string_view device) = 0;

  [[nodiscard]] virtual boost::system::result<bool> is_registered(std::string_view app,
                                                                  std::string_view device) = 0;

  // The time of the first registration of `device` for `app` (the one kept by register_device);
  // nullopt when it is not registered.
  [[nodiscard]] virtual boost::system::result<std::optional<std::int64_t>> registered_at(
      std::string_view app, std::string_view device) = 0;

  // The apps `device` is registered for, sorted.
  [[nodiscard]] virtual boost::system::result<std::vector<std::string>> apps_of(
      std::string_view device) = 0;

  // The devices registered for `app`, in id order, after `after` (exclusive; empty = from the
  // first), at most `limit`. A short page is the end.
  [[nodiscard]] virtual boost::system::result<std::vector<std::string>> devices_of(
      std::string_view app, std::string_view after, std::size_t limit) = 0;

  // Records how far `device` acked `stream`. Not synced: acks are for status and pruning, never
  // for correctness, so losing the last few on a crash is harmless. A cursor never moves back
  // within an epoch. Thread-safe.
  [[nodiscard]] virtual boost::system::result<void> save_ack(std::string_view device,
                                                             std::string_view stream,
                                                             const AckedCursor& cursor) = 0;

  [[nodiscard]] virtual boost::system::result<std::optional<AckedCursor>> acked(
      std::string_view device, std::string_view stream) = 0;
};

}  // namespace herald::storage
