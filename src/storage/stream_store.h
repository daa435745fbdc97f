// StreamStore: append-only logs ("streams") with a sequence number per entry, an epoch per stream
// and an expiry per entry. This is the storage layer's contract; `rocksdb/` implements it for the
// embedded default, a Redis Cluster implementation will follow for the cluster mode.
//
// Streams are named by opaque keys chosen by the logic layer (a device inbox is "i/<device>").
// Invariants every implementation keeps:
//   - Within one epoch the sequence numbers of a stream are 1, 2, 3, ... with no gap and no reuse.
//   - An append is durable (per the configured durability mode) before its completion runs:
//     commit before deliver.
//   - An entry whose expires_at_ms <= now is never returned; it is dropped at some later point.
//   - If entries that were acknowledged could have been lost (a crash in a non-syncing mode) or a
//     stream was reset, the stream's epoch changes, so no client mistakes new entries for old.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace herald::storage {

enum class DataKind : std::uint8_t { kJson = 0, kBinary = 1 };

struct Entry {
  std::uint64_t seq = 0;  // assigned by the store on append
  std::string app;
  std::string message_id;
  DataKind kind = DataKind::kJson;
  std::string data;
  std::int64_t sent_at_ms = 0;
  std::int64_t expires_at_ms = 0;
};

struct AppendRequest {
  std::string stream;  // stream key
  Entry entry;         // entry.seq is ignored
};

struct AppendResult {
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
};

struct ReadRequest {
  std::string_view stream;
  std::uint64_t epoch = 0;  // the reader's epoch; 0 = none yet
  std::uint64_t after_seq = 0;
  std::size_t max_entries = 100;
  std::size_t max_bytes = 256 * 1024;  // sum of data sizes; at least one entry is returned
  std::int64_t now_ms = 0;             // entries with expires_at_ms <= now_ms are skipped
};

struct ReadResult {
  std::uint64_t epoch = 0;     // the stream's current epoch (0 if the stream was never written)
  std::uint64_t head_seq = 0;  // last sequence number assigned in this epoch
  bool epoch_changed = false;  // request.epoch != 0 and != epoch: entries start at seq 1
  // Non-zero when entries after the effective after_seq and before this seq are gone (expired or
  // pruned): the reader's cursor may jump to truncated_before - 1.
  std::uint64_t truncated_before = 0;
  bool more = false;  // limits cut the answer short
  std::vector<Entry> entries;
};

struct StreamHead {
  std::uint64_t epoch = 0;
  std::uint64_t head_seq = 0;
};

using AppendSignature = void(boost::system::error_code, std::vector<AppendResult>);

class StreamStore {
 public:
  virtual ~StreamStore() = default;

  // Appends every request of `batch`, in order, as one atomic and durable write, assigning each
  // entry the next sequence number of its stream (a batch may name a stream several times).
  // Completes on the handler's associated executor once the write is durable, with one result per
  // request in the same order. Errors: errc::resource_unavailable_try_again when the writer's
  // queue is full (nothing was appended; retry later), or a storage error from the engine. After
  // an engine error the outcome is unknown: a write that reached the log before its fsync failed
  // may reappear when the database is reopened (all of the batch or none of it, with its head
  // records, so sequence numbers stay consistent). RocksDB refuses further writes until then.
  // Thread-safe.
  template <class Token>
  auto async_append(std::vector<AppendRequest> batch, Token&& token) {
    return boost::asio::async_initiate<Token, AppendSignature>(
        [this](auto handler, std::vector<AppendRequest> b) {
          do_append(std::move(b), std::move(handler));
        },
        token, std::move(batch));
  }

  // Reads entries of a stream after a sequence number. Thread-safe; runs on the caller's thread.
  [[nodiscard]] virtual boost::system::result<ReadResult> read(const ReadRequest& request) = 0;

  // The current epoch and head of a stream ({0, 0} for a stream never written).
  [[nodiscard]] virtual boost::system::result<StreamHead> head(std::string_view stream) = 0;

 protected:
  virtual void do_append(std::vector<AppendRequest> batch,
                         boost::asio::any_completion_handler<AppendSignature> handler) = 0;
};

}  // namespace herald::storage
