// ClusterMessage: what one heraldd node tells another through Redis pub/sub in cluster mode —
// notifies and "streams changed" for devices attached to the receiving node (published to that
// node's shard channel), and shared-stream notifies for every node (published to the
// deployment-wide channel). Shared by the encoder (ClusterMessageWriter) and the decoder
// (decode_cluster_message), as LevelDB's log_format.h is.
//
// A message is a header and one or more records, integers big-endian:
//
//   +---------+------------+--------------+--------------+----------+-----+----------+
//   | version | sender_len | sender       | record_count | record 1 | ... | record n |
//   | u8 = 1  | u8 (1..)   | sender_len B | u16 n (1..)  |          |     |          |
//   +---------+------------+--------------+--------------+----------+-----+----------+
//
//   record kNotify (1):          kind | priority u8 | stream u64 | head_seq u64 | device_len u16
//                                     | device
//   record kStreamsChanged (2):  kind | device_len u16 | device
//   record kStreamNotify (3):    kind | priority u8 | stream u64 | head_seq u64 | spread_ms u32
//                                     | filter_len u16 | filter (StreamFilter::encode(); 0 = none)
//
// `sender` is the publishing node's name: a node ignores its own messages (it hears its own
// broadcasts). Priority is NotifyPriority's value (0 normal, 1 high).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "distribution/router.h"

namespace herald::distribution {

inline constexpr std::uint8_t kClusterMessageVersion = 1;
// Device ids and node names longer than these are refused by the writer and the decoder.
inline constexpr std::size_t kMaxClusterDeviceBytes = 1024;
inline constexpr std::size_t kMaxClusterNodeNameBytes = 255;
// The most records one message holds (its count is a u16).
inline constexpr std::size_t kMaxClusterRecords = 0xffff;

enum class ClusterRecordKind : std::uint8_t { kNotify = 1, kStreamsChanged = 2, kStreamNotify = 3 };

struct ClusterRecord {
  ClusterRecordKind kind = ClusterRecordKind::kNotify;
  std::string device;  // kNotify, kStreamsChanged
  std::uint64_t stream = 0;
  std::uint64_t head_seq = 0;
  NotifyPriority priority = NotifyPriority::kHigh;
  std::uint32_t spread_ms = 0;                 // kStreamNotify
  std::shared_ptr<const StreamFilter> filter;  // kStreamNotify; null = every reader
};

struct ClusterMessage {
  std::string sender;
  std::vector<ClusterRecord> records;
};

// Builds one message record by record. Not thread-safe.
class ClusterMessageWriter {
 public:
  // Precondition: 1 <= sender.size() <= kMaxClusterNodeNameBytes.
  explicit ClusterMessageWriter(std::string_view sender);

  // Each returns false (and writes nothing) for a device id longer than kMaxClusterDeviceBytes
  // or empty, a filter that is not valid(), or a message that holds kMaxClusterRecords already.
  bool add_notify(std::string_view device, std::uint64_t stream, std::uint64_t head_seq,
                  NotifyPriority priority);
  bool add_streams_changed(std::string_view device);
  bool add_stream_notify(const StreamNotify& notify);

  [[nodiscard]] std::size_t records() const { return records_; }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }
  // The message so far; the writer is then empty (header only) again.
  [[nodiscard]] std::string take();

 private:
  std::string header_;
  std::string bytes_;
  std::size_t records_ = 0;
};

// The message in `bytes`, or nullopt when they are not one well-formed message (unknown version
// or kind, a length past the end or above its maximum, an invalid filter or priority, no
// records, a record count that does not match, trailing bytes). Never throws; allocates only after
// checking each length.
[[nodiscard]] std::optional<ClusterMessage> decode_cluster_message(std::string_view bytes);

}  // namespace herald::distribution
