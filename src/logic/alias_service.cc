#include "logic/alias_service.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/system/errc.hpp>

#include "common/log.h"
#include "logic/device_token.h"

namespace herald::logic {

namespace asio = boost::asio;
namespace json = boost::json;

AliasService::AliasService(asio::any_io_executor executor, storage::StreamStore& streams,
                           storage::RecordStore& records, storage::DeviceStore& devices,
                           Clock clock)
    : streams_(streams),
      records_(records),
      devices_(devices),
      clock_(std::move(clock)),
      lock_(std::move(executor)) {}

bool AliasService::valid_alias(std::string_view alias) {
  if (alias.empty() || alias.size() > 128) return false;
  return std::all_of(alias.begin(), alias.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '@' || c == '+' || c == '-';
  });
}

std::string AliasService::record_key(std::string_view app, std::string_view alias) {
  std::string key = "alias/";
  key.append(app).append("/").append(alias);
  return key;
}

boost::system::result<std::vector<std::string>> AliasService::devices(std::string_view app,
                                                                      std::string_view alias) {
  if (!valid_alias(alias)) return LogicError::kUnknownAlias;
  auto record = records_.get(record_key(app, alias), clock_());
  if (!record) return storage_error(record.error());
  if (!*record) return LogicError::kUnknownAlias;
  std::vector<std::string> out;
  boost::system::error_code ec;
  const json::value v = json::parse((*record)->value, ec);
  if (ec || !v.is_array()) {
    log::error("alias_record_corrupt", {{"key", (*record)->key}});
    return LogicError::kStorageFailed;
  }
  for (const auto& d : v.get_array()) {
    if (!d.is_string()) return LogicError::kStorageFailed;
    out.emplace_back(d.get_string());
  }
  return out;
}

std::optional<LogicError> AliasService::check_registered(std::string_view app,
                                                         const std::vector<std::string>& devices) {
  for (const auto& device : devices) {
    if (!DeviceTokenAuthority::valid_device_id(device)) return LogicError::kBadRequest;
    auto registered = devices_.is_registered(app, device);
    if (!registered) return static_cast<LogicError>(storage_error(registered.error()).value());
    if (!*registered) return LogicError::kUnknownDevice;
  }
  return std::nullopt;
}

asio::awaitable<boost::system::result<void>> AliasService::async_store(
    const std::string& app, const std::string& alias, const std::vector<std::string>& devices) {
  storage::AppendBatch batch;
  batch.now_ms = clock_();
  if (devices.empty()) {
    batch.delete_records.push_back(record_key(app, alias));
  } else {
    json::array list;
    for (const auto& d : devices) list.emplace_back(d);
    batch.put_records.push_back({record_key(app, alias), json::serialize(list), 0});
  }
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return storage_error(ec);
  co_return boost::system::result<void>{};
}

asio::awaitable<boost::system::result<std::vector<std::string>>> AliasService::async_set(
    std::string app, std::string alias, std::vector<std::string> devices) {
  if (!valid_alias(alias)) co_return LogicError::kBadRequest;
  std::vector<std::string> unique;
  for (auto& d : devices) {
    if (std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(std::move(d));
  }
  if (unique.empty() || unique.size() > kMaxDevicesPerAlias) co_return LogicError::kBadRequest;
  if (auto e = check_registered(app, unique)) co_return *e;
  auto held = co_await lock_.acquire();
  auto stored = co_await async_store(app, alias, unique);
  if (!stored) co_return stored.error();
  co_return unique;
}

asio::awaitable<boost::system::result<std::vector<std::string>>> AliasService::async_add(
    std::string app, std::string alias, std::string device) {
  if (!valid_alias(alias)) co_return LogicError::kBadRequest;
  if (auto e = check_registered(app, {device})) co_return *e;
  auto held = co_await lock_.acquire();
  auto current = devices(app, alias);
  std::vector<std::string> list;
  if (current) {
    list = std::move(*current);
  } else if (current.error() != LogicError::kUnknownAlias) {
    co_return current.error();
  }
  if (std::find(list.begin(), list.end(), device) != list.end()) co_return list;
  if (list.size() >= kMaxDevicesPerAlias) co_return LogicError::kBadRequest;
  list.push_back(std::move(device));
  auto stored = co_await async_store(app, alias, list);
  if (!stored) co_return stored.error();
  co_return list;
}

asio::awaitable<boost::system::result<std::vector<std::string>>> AliasService::async_remove(
    std::string app, std::string alias, std::string device) {
  auto held = co_await lock_.acquire();
  auto current = devices(app, alias);
  if (!current) co_return current.error();
  auto it = std::find(current->begin(), current->end(), device);
  if (it == current->end()) co_return LogicError::kUnknownDevice;
  current->erase(it);
  auto stored = co_await async_store(app, alias, *current);
  if (!stored) co_return stored.error();
  co_return std::move(*current);
}

asio::awaitable<boost::system::result<void>> AliasService::async_erase(std::string app,
                                                                       std::string alias) {
  auto held = co_await lock_.acquire();
  auto current = devices(app, alias);
  if (!current) co_return current.error();
  co_return co_await async_store(app, alias, {});
}

}  // namespace herald::logic
