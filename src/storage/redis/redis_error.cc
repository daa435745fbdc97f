#include "storage/redis/redis_error.h"

#include <string>

#include <boost/system/errc.hpp>

namespace herald::storage {
namespace {

class RedisErrorCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "herald.storage.redis"; }

  std::string message(int value) const override {
    switch (static_cast<RedisError>(value)) {
      case RedisError::kBadAddress:
        return "Redis address is not host:port";
      case RedisError::kConnectFailed:
        return "cannot connect to Redis";
      case RedisError::kConnectionLost:
        return "Redis connection lost; the outcome of the command is unknown";
      case RedisError::kTimedOut:
        return "Redis did not answer in time; the outcome of the command is unknown";
      case RedisError::kProtocolError:
        return "unreadable answer from Redis";
      case RedisError::kNoSlotOwner:
        return "no Redis master owns the key's slot";
      case RedisError::kTooManyRedirects:
        return "too many Redis Cluster redirects";
      case RedisError::kClusterDown:
        return "Redis Cluster is down";
      case RedisError::kErrorReply:
        return "Redis answered an error";
      case RedisError::kUnexpectedReply:
        return "unexpected answer from Redis";
      case RedisError::kShuttingDown:
        return "Redis client is shutting down; nothing was sent";
      case RedisError::kOutOfMemory:
        return "Redis is out of memory (maxmemory); nothing was written";
      case RedisError::kCorruptRecord:
        return "stored entry is corrupt";
      case RedisError::kCorruptMeta:
        return "stored stream meta, record, registration or cursor is corrupt";
      case RedisError::kBadStreamKey:
        return "stream key empty or too long";
      case RedisError::kBadKey:
        return "app, device or stream name empty or too long";
      case RedisError::kBadRecordKey:
        return "record key empty or too long";
      case RedisError::kBadCollapseKey:
        return "collapse key too long";
      case RedisError::kEntryTooLarge:
        return "entry field too large";
      case RedisError::kRecordTooLarge:
        return "record value too large";
      case RedisError::kBadEntryKind:
        return "entry kind cannot be appended (tombstones are made by the store)";
      case RedisError::kUnsyncedEntries:
        return "sync=false is only allowed for batches of records, not entries or tombstones";
      case RedisError::kBatchTooLarge:
        return "append batch larger than the writer queue; split it";
      case RedisError::kTooFewReplicas:
        return "fewer Redis replicas than required acknowledged the write; outcome unknown";
      case RedisError::kNotDurable:
        return "Redis master does not run with appendonly yes and appendfsync always";
      case RedisError::kBadKeyspace:
        return "Redis keyspace empty or holding '{' or '}'";
    }
    return "unknown Redis error";
  }

  boost::system::error_condition default_error_condition(int value) const noexcept override {
    namespace errc = boost::system::errc;
    switch (static_cast<RedisError>(value)) {
      case RedisError::kBadAddress:
        return errc::invalid_argument;
      case RedisError::kTimedOut:
        return errc::timed_out;
      case RedisError::kShuttingDown:
        return errc::operation_canceled;
      case RedisError::kOutOfMemory:
        return errc::no_space_on_device;
      case RedisError::kBadStreamKey:
      case RedisError::kBadKey:
      case RedisError::kBadRecordKey:
      case RedisError::kBadCollapseKey:
      case RedisError::kEntryTooLarge:
      case RedisError::kRecordTooLarge:
      case RedisError::kBadEntryKind:
      case RedisError::kUnsyncedEntries:
      case RedisError::kBatchTooLarge:
      case RedisError::kBadKeyspace:
        return errc::invalid_argument;
      case RedisError::kCorruptRecord:
      case RedisError::kCorruptMeta:
      case RedisError::kTooFewReplicas:
      case RedisError::kNotDurable:
        return errc::io_error;
      case RedisError::kConnectFailed:
      case RedisError::kConnectionLost:
      case RedisError::kProtocolError:
      case RedisError::kNoSlotOwner:
      case RedisError::kTooManyRedirects:
      case RedisError::kClusterDown:
      case RedisError::kErrorReply:
      case RedisError::kUnexpectedReply:
        return errc::io_error;
    }
    return {value, *this};
  }
};

}  // namespace

const boost::system::error_category& redis_error_category() noexcept {
  static const RedisErrorCategory category;
  return category;
}

}  // namespace herald::storage
