#include "server/node_number.h"

#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/errc.hpp>

#include "logic/message_id.h"

namespace herald::server {
namespace {

namespace asio = boost::asio;

constexpr std::string_view kPrefix = "nodenum/";

// result<bool> from an error code (error_code converts to bool, so it must be said).
boost::system::result<bool> failed(boost::system::error_code ec) {
  return {boost::system::in_place_error, ec};
}

std::string key_of(std::uint32_t number) { return std::string(kPrefix) + std::to_string(number); }

}  // namespace

asio::awaitable<boost::system::result<std::uint32_t>> async_claim_node_number(
    storage::StreamStore& streams, storage::RecordStore& records, std::string node_name,
    std::int64_t now_ms, std::int64_t lease_ms) {
  // Which numbers are held, and whether one is still ours.
  std::vector<bool> held(logic::MessageIdGenerator::kMaxNodes, false);
  std::string after;
  for (;;) {
    auto page = records.scan(kPrefix, after, 256, now_ms);
    if (!page) co_return page.error();
    for (const auto& record : *page) {
      const auto number = std::stoul(record.key.substr(kPrefix.size()));
      if (number >= held.size()) continue;
      if (record.value == node_name) {
        auto renewed = co_await async_renew_node_number(
            streams, records, node_name, static_cast<std::uint32_t>(number), now_ms, lease_ms);
        if (!renewed) co_return renewed.error();
        if (*renewed) co_return static_cast<std::uint32_t>(number);
      }
      held[number] = true;
    }
    if (page->size() < 256) break;
    after = page->back().key;
  }
  for (std::uint32_t number = 0; number < held.size(); ++number) {
    if (held[number]) continue;
    storage::AppendBatch batch;
    batch.now_ms = now_ms;
    batch.unless_record_exists = key_of(number);
    batch.put_records.push_back({key_of(number), node_name, now_ms + lease_ms});
    auto [ec, outcome] =
        co_await streams.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return ec;
    if (!outcome.existing) co_return number;  // else another node took it meanwhile
  }
  co_return make_error_code(boost::system::errc::resource_unavailable_try_again);
}

asio::awaitable<boost::system::result<bool>> async_renew_node_number(
    storage::StreamStore& streams, storage::RecordStore& records, std::string node_name,
    std::uint32_t number, std::int64_t now_ms, std::int64_t lease_ms) {
  const auto key = key_of(number);
  auto current = records.get(key, now_ms);
  if (!current) co_return failed(current.error());
  if (*current && (*current)->value != node_name) co_return false;
  // Between that read and this write another node can take the number only if the lease lapsed,
  // which renewing every third of it prevents.
  storage::AppendBatch batch;
  batch.now_ms = now_ms;
  batch.put_records.push_back({key, node_name, now_ms + lease_ms});
  auto [ec, outcome] =
      co_await streams.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return failed(ec);
  co_return true;
}

}  // namespace herald::server
