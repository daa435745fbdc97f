// Errors of the RocksDB storage, in their own category (as Beast's websocket/error.hpp).
// Each says what the caller should do. Callers that only need the broad class test the
// conditions: errc::invalid_argument (fix the request), errc::io_error (the disk failed: retry
// later, alert), errc::no_space_on_device (below the free-space reserve: nothing written, retry
// once space returns), errc::operation_canceled (the store is closing). The writer's queue being
// full is reported as errc::resource_unavailable_try_again itself (retry later).
#pragma once

#include <string>
#include <type_traits>

#include <boost/assert/source_location.hpp>
#include <boost/system/error_category.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/error_condition.hpp>

namespace rocksdb {
class Status;
}

namespace herald::storage {

enum class RocksDbError {
  kBadStreamKey = 1,  // empty or longer than kMaxStreamKeyBytes: fix the caller, do not retry
  kBadKey,            // an empty or too long app, device or stream name: fix the caller
  kEntryTooLarge,     // a field of an entry does not fit the record format: fix the caller
  kBatchTooLarge,     // more entries than the writer queue holds: split the batch
  kShuttingDown,      // the store is closing; nothing was written
  kCorruptRecord,     // a stored entry failed to decode: data damage, alert an operator
  kCorruptMeta,       // a stream meta, registration, cursor, record or collapse pointer failed
                      // to decode: data damage, alert an operator
  kIoError,           // the engine failed to read or write the disk: retry later, alert
  kEngineCorruption,  // the engine found corrupt files: alert, restore from a replica/backup
  kEngineFailure,     // any other engine failure; the log line carries its status
  kBadRecordKey,      // a record key empty or longer than kMaxRecordKeyBytes: fix the caller
  kRecordTooLarge,    // a record value longer than kMaxRecordValueBytes: fix the caller
  kBadCollapseKey,    // a collapse key longer than kMaxCollapseKeyBytes: fix the caller
  kBadEntryKind,      // an append of kind kTombstone (the store makes those) or of an unknown kind
  kUnsyncedEntries,   // sync = false on a batch with entries or tombstones: only records may
                      // skip the fsync; fix the caller
  kStorageFull,       // the disk's free space is below RocksDbOptions::min_free_bytes: a batch
                      // adding entries is refused before it is queued, so nothing was written.
                      // Retry once space was freed (the store accepts again by itself); alert
};

[[nodiscard]] const boost::system::error_category& rocksdb_error_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(RocksDbError e) noexcept {
  return {static_cast<int>(e), rocksdb_error_category()};
}

// kIoError, kEngineCorruption or kEngineFailure for a non-ok engine status.
[[nodiscard]] boost::system::error_code make_error_code(const ::rocksdb::Status& status);

// What the database factory reports: the code and a message naming the path and the engine's
// own explanation, e.g. "cannot open RocksDB at '/var/lib/herald': IO error: ...".
struct OpenError {
  boost::system::error_code code;
  std::string message;
};

// Lets boost::system::result<T, OpenError>::value() throw boost::system::system_error carrying
// the message, for start-up code that prefers an exception.
[[noreturn]] void throw_exception_from_error(const OpenError& error,
                                             const boost::source_location& location);

}  // namespace herald::storage

namespace boost::system {
template <>
struct is_error_code_enum<herald::storage::RocksDbError> : std::true_type {};
}  // namespace boost::system
