// Node numbers: which processes share one storage (cluster mode) tell their message ids apart by
// a number each holds under a lease (logic/message_id.h). A number is held by a record
//
//   nodenum/<n> = <node name>, expiring lease_ms after its last renewal
//
// written only if no live record holds it (AppendBatch::unless_record_exists), so two live
// nodes never hold the same one. A node renews its lease well before it lapses; one that crashed
// frees its number when the lease lapses. A restarted node takes back the number its name still
// holds. Node names must be unique in a deployment (they also name the node's routes).
#pragma once

#include <cstdint>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "storage/record_store.h"
#include "storage/stream_store.h"

namespace herald::server {

inline constexpr std::int64_t kNodeNumberLeaseMs = 60'000;

// The number `node_name` holds (the one it held before, or the lowest free one), under a lease
// until now_ms + lease_ms. Errors: storage errors; errc::resource_unavailable_try_again when all
// logic::MessageIdGenerator::kMaxNodes numbers are held.
[[nodiscard]] boost::asio::awaitable<boost::system::result<std::uint32_t>> async_claim_node_number(
    storage::StreamStore& streams, storage::RecordStore& records, std::string node_name,
    std::int64_t now_ms, std::int64_t lease_ms = kNodeNumberLeaseMs);

// Extends the lease of `number` to now_ms + lease_ms. false when another node holds it now (this
// node's lease lapsed and the number was taken): ids drawn from then on could collide, so the
// caller stops the node.
[[nodiscard]] boost::asio::awaitable<boost::system::result<bool>> async_renew_node_number(
    storage::StreamStore& streams, storage::RecordStore& records, std::string node_name,
    std::uint32_t number, std::int64_t now_ms, std::int64_t lease_ms = kNodeNumberLeaseMs);

}  // namespace herald::server
