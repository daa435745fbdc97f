// AliasService: an app's aliases — a name the app chooses (typically its user id) bound to one or
// more of its devices, so that a sender can push "to the user" without tracking their phones.
//
// Stored as one record per alias ("alias/<app>/<alias>", a JSON array of device ids, at most
// kMaxDevicesPerAlias), written synced. Only devices registered for the app may be bound; a
// device unregistered later stays bound until removed, and a push to the alias skips it.
// Changes are serialised by an asynchronous lock, as in AppService.
//
// Thread-safe. Owns nothing it is given.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "logic/detail/async_lock.h"
#include "logic/logic_error.h"
#include "logic/message_service.h"
#include "storage/device_store.h"
#include "storage/record_store.h"
#include "storage/stream_store.h"

namespace herald::logic {

class AliasService {
 public:
  static constexpr std::size_t kMaxDevicesPerAlias = 100;

  AliasService(boost::asio::any_io_executor executor, storage::StreamStore& streams,
               storage::RecordStore& records, storage::DeviceStore& devices, Clock clock);

  // The devices bound to `alias`, in the order they were bound. kUnknownAlias when none.
  [[nodiscard]] boost::system::result<std::vector<std::string>> devices(std::string_view app,
                                                                        std::string_view alias);

  // Binds exactly `devices` (duplicates removed). Errors: kBadRequest (invalid alias or device
  // id, none, more than the maximum), kUnknownDevice (one is not registered for the app), kBusy,
  // kStorageFailed. Returns the bound devices.
  boost::asio::awaitable<boost::system::result<std::vector<std::string>>> async_set(
      std::string app, std::string alias, std::vector<std::string> devices);
  // Binds one more device (creating the alias). Same errors; binding a bound device is a no-op.
  boost::asio::awaitable<boost::system::result<std::vector<std::string>>> async_add(
      std::string app, std::string alias, std::string device);
  // Unbinds one device; the alias goes away with its last device. Errors: kUnknownAlias,
  // kUnknownDevice (not bound to it), kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<std::vector<std::string>>> async_remove(
      std::string app, std::string alias, std::string device);
  // Errors: kUnknownAlias, kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<void>> async_erase(std::string app,
                                                                  std::string alias);

  // 1..128 bytes of [A-Za-z0-9._:@+-] (room for e-mail-like user ids).
  [[nodiscard]] static bool valid_alias(std::string_view alias);
  [[nodiscard]] static std::string record_key(std::string_view app, std::string_view alias);

 private:
  // Writes the alias (or deletes it when `devices` is empty).
  boost::asio::awaitable<boost::system::result<void>> async_store(
      const std::string& app, const std::string& alias, const std::vector<std::string>& devices);
  [[nodiscard]] std::optional<LogicError> check_registered(std::string_view app,
                                                           const std::vector<std::string>& devices);

  storage::StreamStore& streams_;
  storage::RecordStore& records_;
  storage::DeviceStore& devices_;
  Clock clock_;
  detail::AsyncLock lock_;  // serialises changes
};

}  // namespace herald::logic
