#include "storage/rocksdb/rocksdb_error.h"

#include <rocksdb/status.h>
#include <boost/system/errc.hpp>
#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>

namespace herald::storage {
namespace {

class RocksDbErrorCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "herald.storage.rocksdb"; }

  std::string message(int value) const override {
    switch (static_cast<RocksDbError>(value)) {
      case RocksDbError::kBadStreamKey:
        return "stream key empty or too long";
      case RocksDbError::kBadKey:
        return "app, device or stream name empty or too long";
      case RocksDbError::kEntryTooLarge:
        return "entry field too large for the record format";
      case RocksDbError::kBatchTooLarge:
        return "append batch larger than the writer queue; split it";
      case RocksDbError::kShuttingDown:
        return "storage is shutting down; nothing was written";
      case RocksDbError::kCorruptRecord:
        return "stored entry is corrupt";
      case RocksDbError::kCorruptMeta:
        return "stored metadata, record or collapse pointer is corrupt";
      case RocksDbError::kIoError:
        return "storage I/O error; retry later";
      case RocksDbError::kEngineCorruption:
        return "storage engine reports corruption";
      case RocksDbError::kEngineFailure:
        return "storage engine failure";
      case RocksDbError::kBadRecordKey:
        return "record key empty or too long";
      case RocksDbError::kRecordTooLarge:
        return "record value too large";
      case RocksDbError::kBadCollapseKey:
        return "collapse key too long";
      case RocksDbError::kBadEntryKind:
        return "entry kind cannot be appended (tombstones are made by the store)";
      case RocksDbError::kUnsyncedEntries:
        return "sync=false is only allowed for batches of records, not entries or tombstones";
      case RocksDbError::kStorageFull:
        return "free disk space is below the configured reserve; nothing was written";
    }
    return "unknown storage error";
  }

  boost::system::error_condition default_error_condition(int value) const noexcept override {
    namespace errc = boost::system::errc;
    switch (static_cast<RocksDbError>(value)) {
      case RocksDbError::kBadStreamKey:
      case RocksDbError::kBadKey:
      case RocksDbError::kEntryTooLarge:
      case RocksDbError::kBatchTooLarge:
      case RocksDbError::kBadRecordKey:
      case RocksDbError::kRecordTooLarge:
      case RocksDbError::kBadCollapseKey:
      case RocksDbError::kBadEntryKind:
      case RocksDbError::kUnsyncedEntries:
        return errc::make_error_condition(errc::invalid_argument);
      case RocksDbError::kShuttingDown:
        return errc::make_error_condition(errc::operation_canceled);
      case RocksDbError::kIoError:
        return errc::make_error_condition(errc::io_error);
      case RocksDbError::kStorageFull:
        return errc::make_error_condition(errc::no_space_on_device);
      default:
        return {value, *this};
    }
  }
};

}  // namespace

const boost::system::error_category& rocksdb_error_category() noexcept {
  static const RocksDbErrorCategory category;
  return category;
}

boost::system::error_code make_error_code(const ::rocksdb::Status& status) {
  if (status.IsIOError() || status.IsNoSpace() || status.IsPathNotFound()) {
    return make_error_code(RocksDbError::kIoError);
  }
  if (status.IsCorruption()) return make_error_code(RocksDbError::kEngineCorruption);
  return make_error_code(RocksDbError::kEngineFailure);
}

void throw_exception_from_error(const OpenError& error, const boost::source_location& location) {
  boost::throw_exception(boost::system::system_error(error.code, error.message), location);
}

}  // namespace herald::storage
