#include "distribution/redis/cluster_message.h"

#include <cassert>

namespace herald::distribution {
namespace {

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

template <class T>
void put_be(std::string& out, T v) {
  for (int shift = static_cast<int>(sizeof(T) * 8) - 8; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>(static_cast<std::uint8_t>(v >> shift)));
  }
}

// Reads from `bytes_` front to back; every get fails (and stays failed) past the end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  template <class T>
  bool get(T& v) {
    if (bytes_.size() < sizeof(T)) return false;
    T value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      value = static_cast<T>((value << 8) | static_cast<std::uint8_t>(bytes_[i]));
    }
    bytes_.remove_prefix(sizeof(T));
    v = value;
    return true;
  }
  bool get_bytes(std::size_t n, std::string_view& v) {
    if (bytes_.size() < n) return false;
    v = bytes_.substr(0, n);
    bytes_.remove_prefix(n);
    return true;
  }
  [[nodiscard]] bool done() const { return bytes_.empty(); }

 private:
  std::string_view bytes_;
};

bool valid_device(std::string_view device) {
  return !device.empty() && device.size() <= kMaxClusterDeviceBytes;
}

constexpr std::size_t kCountBytes = 2;  // the record count ends the header

bool get_priority(Reader& in, NotifyPriority& priority) {
  std::uint8_t raw = 0;
  if (!in.get(raw) || raw > static_cast<std::uint8_t>(NotifyPriority::kHigh)) return false;
  priority = static_cast<NotifyPriority>(raw);
  return true;
}

bool get_device(Reader& in, std::string& device) {
  std::uint16_t length = 0;
  std::string_view bytes;
  if (!in.get(length) || length == 0 || length > kMaxClusterDeviceBytes ||
      !in.get_bytes(length, bytes)) {
    return false;
  }
  device.assign(bytes);
  return true;
}

}  // namespace

ClusterMessageWriter::ClusterMessageWriter(std::string_view sender) {
  assert(!sender.empty() && sender.size() <= kMaxClusterNodeNameBytes);
  put_u8(header_, kClusterMessageVersion);
  put_u8(header_, static_cast<std::uint8_t>(sender.size()));
  header_.append(sender);
  put_be(header_, std::uint16_t{0});  // set by take()
  bytes_ = header_;
}

bool ClusterMessageWriter::add_notify(std::string_view device, std::uint64_t stream,
                                      std::uint64_t head_seq, NotifyPriority priority) {
  if (!valid_device(device) || records_ == kMaxClusterRecords) return false;
  put_u8(bytes_, static_cast<std::uint8_t>(ClusterRecordKind::kNotify));
  put_u8(bytes_, static_cast<std::uint8_t>(priority));
  put_be(bytes_, stream);
  put_be(bytes_, head_seq);
  put_be(bytes_, static_cast<std::uint16_t>(device.size()));
  bytes_.append(device);
  ++records_;
  return true;
}

bool ClusterMessageWriter::add_streams_changed(std::string_view device) {
  if (!valid_device(device) || records_ == kMaxClusterRecords) return false;
  put_u8(bytes_, static_cast<std::uint8_t>(ClusterRecordKind::kStreamsChanged));
  put_be(bytes_, static_cast<std::uint16_t>(device.size()));
  bytes_.append(device);
  ++records_;
  return true;
}

bool ClusterMessageWriter::add_stream_notify(const StreamNotify& notify) {
  if (records_ == kMaxClusterRecords) return false;
  std::string filter;
  if (notify.filter) {
    if (!notify.filter->valid()) return false;
    filter = notify.filter->encode();
    // A valid program of kMaxSteps steps is far below this; refuse rather than truncate.
    if (filter.empty() || filter.size() > 0xffff) return false;
  }
  put_u8(bytes_, static_cast<std::uint8_t>(ClusterRecordKind::kStreamNotify));
  put_u8(bytes_, static_cast<std::uint8_t>(notify.priority));
  put_be(bytes_, notify.stream);
  put_be(bytes_, notify.head_seq);
  put_be(bytes_, notify.spread_ms);
  put_be(bytes_, static_cast<std::uint16_t>(filter.size()));
  bytes_.append(filter);
  ++records_;
  return true;
}

std::string ClusterMessageWriter::take() {
  const std::size_t at = header_.size() - kCountBytes;
  bytes_[at] = static_cast<char>(static_cast<std::uint8_t>(records_ >> 8));
  bytes_[at + 1] = static_cast<char>(static_cast<std::uint8_t>(records_));
  std::string out = std::move(bytes_);
  bytes_ = header_;
  records_ = 0;
  return out;
}

std::optional<ClusterMessage> decode_cluster_message(std::string_view bytes) {
  Reader in(bytes);
  std::uint8_t version = 0;
  std::uint8_t sender_length = 0;
  std::string_view sender;
  std::uint16_t count = 0;
  if (!in.get(version) || version != kClusterMessageVersion || !in.get(sender_length) ||
      sender_length == 0 || !in.get_bytes(sender_length, sender) || !in.get(count) || count == 0) {
    return std::nullopt;
  }
  ClusterMessage message;
  message.sender.assign(sender);
  // Every record takes at least 3 bytes: a count the bytes cannot hold is refused before the
  // reserve.
  if (bytes.size() / 3 < count) return std::nullopt;
  message.records.reserve(count);
  for (std::uint16_t i = 0; i < count; ++i) {
    std::uint8_t kind = 0;
    if (!in.get(kind)) return std::nullopt;
    ClusterRecord record;
    switch (kind) {
      case static_cast<std::uint8_t>(ClusterRecordKind::kNotify):
        record.kind = ClusterRecordKind::kNotify;
        if (!get_priority(in, record.priority) || !in.get(record.stream) ||
            !in.get(record.head_seq) || !get_device(in, record.device)) {
          return std::nullopt;
        }
        break;
      case static_cast<std::uint8_t>(ClusterRecordKind::kStreamsChanged):
        record.kind = ClusterRecordKind::kStreamsChanged;
        if (!get_device(in, record.device)) return std::nullopt;
        break;
      case static_cast<std::uint8_t>(ClusterRecordKind::kStreamNotify): {
        record.kind = ClusterRecordKind::kStreamNotify;
        std::uint16_t filter_length = 0;
        std::string_view filter;
        if (!get_priority(in, record.priority) || !in.get(record.stream) ||
            !in.get(record.head_seq) || !in.get(record.spread_ms) || !in.get(filter_length) ||
            !in.get_bytes(filter_length, filter)) {
          return std::nullopt;
        }
        if (filter_length != 0) {
          auto decoded = StreamFilter::decode(filter);
          if (!decoded) return std::nullopt;
          record.filter = std::make_shared<const StreamFilter>(std::move(*decoded));
        }
        break;
      }
      default:
        return std::nullopt;
    }
    message.records.push_back(std::move(record));
  }
  if (!in.done()) return std::nullopt;  // trailing bytes
  return message;
}

}  // namespace herald::distribution
