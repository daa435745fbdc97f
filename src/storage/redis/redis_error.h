// Errors of the Redis Cluster client and the stores built on it, in their own category (as
// Beast's websocket/error.hpp). Each says what the caller should do. Callers that only need the
// broad class test the conditions: errc::invalid_argument (fix the request),
// errc::io_error (Redis could not be reached or answered badly: retry later, alert),
// errc::timed_out (no answer in time: the outcome of a write is unknown),
// errc::no_space_on_device (Redis at its maxmemory refused a write: nothing written),
// errc::operation_canceled (closing). The stores' full writer queue is
// errc::resource_unavailable_try_again itself (retry later).
#pragma once

#include <type_traits>

#include <boost/system/error_category.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/error_condition.hpp>

namespace herald::storage {

enum class RedisError {
  kBadAddress = 1,    // a seed address is not host:port: fix the configuration
  kConnectFailed,     // no seed or master accepted a connection: retry later, alert
  kConnectionLost,    // the connection broke after the command was sent: the outcome of a
                      // write is unknown (it may have been applied); reads may be retried
  kTimedOut,          // no answer within the command timeout: as kConnectionLost
  kProtocolError,     // Redis answered something the client cannot read: alert
  kNoSlotOwner,       // the cluster's slot map names no master for the key's slot (resharding
                      // or a cluster still forming): retry later
  kTooManyRedirects,  // MOVED/ASK/TRYAGAIN kept coming past the limit: the cluster is unstable
  kClusterDown,       // the cluster answered CLUSTERDOWN until the deadline: alert
  kErrorReply,        // Redis answered an error (the message is in the reply): a bug or a
                      // misconfigured server (a script refused, a command disabled)
  kUnexpectedReply,   // a reply of the wrong shape for the command: a bug or data damage
  kShuttingDown,      // the client is closing; nothing was sent
  // The stores (redis_stream_store.h and siblings):
  kOutOfMemory,      // Redis refused a write at its maxmemory (OOM reply): nothing was
                     // written; free memory or add masters, then retry
  kCorruptRecord,    // a stored entry failed to decode: data damage, alert an operator
  kCorruptMeta,      // a stream meta, record, registration or cursor failed to decode: alert
  kBadStreamKey,     // a stream key empty or too long: fix the caller, do not retry
  kBadKey,           // an app, device or stream name empty or too long: fix the caller
  kBadRecordKey,     // a record key empty or too long: fix the caller
  kBadCollapseKey,   // a collapse key too long: fix the caller
  kEntryTooLarge,    // an entry field too large: fix the caller
  kRecordTooLarge,   // a record value too large: fix the caller
  kBadEntryKind,     // an append of kind kTombstone (the store makes those) or an unknown kind
  kUnsyncedEntries,  // sync = false on a batch with entries or tombstones: fix the caller
  kBatchTooLarge,    // more items than the writer queue holds: split the batch
  kTooFewReplicas,   // WAIT saw fewer replicas than RedisStorageOptions::replicas_to_wait
                     // acknowledge: the write is on the master but may be lost on a failover;
                     // the outcome is unknown, alert
  kNotDurable,       // a master runs without appendonly yes / appendfsync always: fix its
                     // configuration (the stores refuse to open on it)
  kBadKeyspace,      // RedisStorageOptions::keyspace empty or holding '{' or '}'
};

[[nodiscard]] const boost::system::error_category& redis_error_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(RedisError e) noexcept {
  return {static_cast<int>(e), redis_error_category()};
}

}  // namespace herald::storage

namespace boost::system {
template <>
struct is_error_code_enum<herald::storage::RedisError> : std::true_type {};
}  // namespace boost::system
