#include "storage/rocksdb/detail/key_codec.h"

#include "storage/rocksdb/detail/coding.h"

namespace herald::storage::detail {

std::string stream_prefix(std::string_view stream) {
  std::string prefix;
  prefix.reserve(kMaxVarint32Bytes + stream.size() + kSeqBytes);
  put_length_prefixed(prefix, stream);
  return prefix;
}

std::string entry_key(std::string_view stream, std::uint64_t seq) {
  std::string key = stream_prefix(stream);
  put_fixed64(key, seq);
  return key;
}

std::string entry_key_from_prefix(std::string_view prefix, std::uint64_t seq) {
  std::string key;
  key.reserve(prefix.size() + kSeqBytes);
  key.append(prefix);
  put_fixed64(key, seq);
  return key;
}

std::optional<std::uint64_t> entry_key_seq(std::string_view key, std::string_view prefix) {
  if (key.size() != prefix.size() + kSeqBytes || !key.starts_with(prefix)) return std::nullopt;
  return decode_fixed64(key.data() + prefix.size());
}

std::string pair_key(std::string_view first, std::string_view second) {
  std::string key;
  key.reserve(kMaxVarint32Bytes + first.size() + second.size());
  put_length_prefixed(key, first);
  key.append(second);
  return key;
}

std::string pair_key_prefix(std::string_view first) {
  std::string prefix;
  put_length_prefixed(prefix, first);
  return prefix;
}

std::optional<std::string_view> pair_key_second(std::string_view key, std::string_view prefix) {
  if (!key.starts_with(prefix)) return std::nullopt;
  return key.substr(prefix.size());
}

std::string prefix_successor(std::string_view prefix) {
  std::string successor(prefix);
  while (!successor.empty()) {
    const auto last = static_cast<unsigned char>(successor.back());
    if (last != 0xff) {
      successor.back() = static_cast<char>(last + 1);
      return successor;
    }
    successor.pop_back();
  }
  return successor;
}

}  // namespace herald::storage::detail
