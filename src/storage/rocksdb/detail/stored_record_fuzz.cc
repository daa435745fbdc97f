// libFuzzer target for what the embedded store reads back from RocksDB: arbitrary bytes, read as
// every stored value and key of docs/storage.md would be after a disk fault, a bad restore or a
// bug in an older writer. The same bytes go to every decoder:
//
//   stream_entries value   decode_entry_record, entry_record_expires_at_ms
//   records value          decode_record_value, record_value_drop_at_ms
//   stream_meta value      decode_stream_meta
//   default "state"        decode_database_state
//   app_devices value,
//   device_apps value      decode_registration
//   acked_cursors value    decode_acked_cursor
//   collapse_keys value    decode_collapse_pointer, collapse_pointer_expires_at_ms
//   keys                   entry_key_seq, pair_key_second, prefix_successor
//
// Invariants (a violation aborts, which libFuzzer reports as a crash and the corpus replay test
// as a failure):
//   - no decoder crashes, whatever the bytes;
//   - a value a decoder accepts round-trips: decode(encode(v)) == v, and encode(v) is stable
//     (encoding is canonical after one round); fixed-layout values re-encode to the very bytes;
//   - the fast expiry readers (the TTL compaction filter's) agree with the full decoders;
//   - a key that splits as prefix + rest is rebuilt from its parts byte for byte.
//
// Build with -DHERALD_BUILD_FUZZERS=ON and clang; run as
//   build-fuzz/bin/herald_stored_record_fuzz src/storage/rocksdb/fuzz_corpus/stored_record
// The checked-in corpus is replayed in every build by herald_stored_record_fuzz_replay_test.

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/fuzz_check.h"
#include "storage/rocksdb/detail/coding.h"
#include "storage/rocksdb/detail/key_codec.h"
#include "storage/rocksdb/detail/meta_codec.h"
#include "storage/rocksdb/detail/record_codec.h"
#include "storage/rocksdb/detail/record_value_codec.h"

namespace herald::storage::detail {
namespace {

bool same_entry(const Entry& a, const Entry& b) {
  return a.seq == b.seq && a.app == b.app && a.message_id == b.message_id && a.kind == b.kind &&
         a.data == b.data && a.sent_at_ms == b.sent_at_ms && a.expires_at_ms == b.expires_at_ms &&
         a.audience == b.audience;
}

void check_entry_record(std::string_view bytes) {
  const auto entry = decode_entry_record(bytes);
  const auto expires_at_ms = entry_record_expires_at_ms(bytes);
  if (!entry) return;
  HERALD_FUZZ_CHECK(entry->seq == 0);  // the seq is in the key, never in the value
  HERALD_FUZZ_CHECK(expires_at_ms.has_value() && *expires_at_ms == entry->expires_at_ms);
  HERALD_FUZZ_CHECK(entry->kind != DataKind::kTombstone || entry->data.empty());
  const std::string encoded = encode_entry_record(*entry);
  // Only the varint lengths may have been spelt longer than needed.
  HERALD_FUZZ_CHECK(encoded.size() <= bytes.size());
  const auto again = decode_entry_record(encoded);
  HERALD_FUZZ_CHECK(again.has_value() && same_entry(*again, *entry));
  HERALD_FUZZ_CHECK(encode_entry_record(*again) == encoded);

  const auto tombstone = decode_entry_record(encode_tombstone_record(*entry));
  HERALD_FUZZ_CHECK(tombstone.has_value());
  HERALD_FUZZ_CHECK(tombstone->kind == DataKind::kTombstone && tombstone->data.empty() &&
                    tombstone->audience.empty());
  HERALD_FUZZ_CHECK(tombstone->app == entry->app && tombstone->message_id == entry->message_id &&
                    tombstone->sent_at_ms == entry->sent_at_ms &&
                    tombstone->expires_at_ms == entry->expires_at_ms);
}

void check_record_value(std::string_view bytes) {
  const auto record = decode_record_value("key", bytes);
  const auto drop_at_ms = record_value_drop_at_ms(bytes);
  if (!record) {
    HERALD_FUZZ_CHECK(!drop_at_ms.has_value());
    return;
  }
  HERALD_FUZZ_CHECK(record->key == "key");
  // The TTL filter drops exactly the records that expire, at their expiry.
  if (record->expires_at_ms == 0) {
    HERALD_FUZZ_CHECK(!drop_at_ms.has_value());
  } else {
    HERALD_FUZZ_CHECK(drop_at_ms.has_value() && *drop_at_ms == record->expires_at_ms);
  }
  HERALD_FUZZ_CHECK(encode_record_value(record->expires_at_ms, record->value) == bytes);
}

void check_meta_records(std::string_view bytes) {
  if (const auto meta = decode_stream_meta(bytes)) {
    HERALD_FUZZ_CHECK(meta->stream_epoch32 != 0);  // zero would read as "never written"
    HERALD_FUZZ_CHECK(encode_stream_meta(*meta) == bytes);
  }
  if (const auto state = decode_database_state(bytes)) {
    const std::string encoded = encode_database_state(*state);
    HERALD_FUZZ_CHECK(encoded.size() <= bytes.size());
    const auto again = decode_database_state(encoded);
    HERALD_FUZZ_CHECK(again.has_value());
    HERALD_FUZZ_CHECK(again->generation == state->generation && again->running == state->running &&
                      again->fast_run == state->fast_run && again->boot_id == state->boot_id);
    HERALD_FUZZ_CHECK(encode_database_state(*again) == encoded);
  }
  if (const auto registered_at_ms = decode_registration(bytes)) {
    HERALD_FUZZ_CHECK(encode_registration(*registered_at_ms) == bytes);
  }
  if (const auto cursor = decode_acked_cursor(bytes)) {
    HERALD_FUZZ_CHECK(encode_acked_cursor(*cursor) == bytes);
  }
  const auto pointer = decode_collapse_pointer(bytes);
  const auto expires_at_ms = collapse_pointer_expires_at_ms(bytes);
  if (pointer) {
    HERALD_FUZZ_CHECK(expires_at_ms.has_value() && *expires_at_ms == pointer->expires_at_ms);
    const std::string encoded = encode_collapse_pointer(*pointer);
    HERALD_FUZZ_CHECK(encoded.size() <= bytes.size());
    const auto again = decode_collapse_pointer(encoded);
    HERALD_FUZZ_CHECK(again.has_value() && *again == *pointer);
    HERALD_FUZZ_CHECK(encode_collapse_pointer(*again) == encoded);
  }
}

// Reads the bytes as a key: lp(first) followed by a sequence number or a second name.
void check_keys(std::string_view bytes) {
  std::string_view rest = bytes;
  std::string_view first;
  if (get_length_prefixed(rest, first)) {
    const std::string prefix = stream_prefix(first);
    HERALD_FUZZ_CHECK(prefix == pair_key_prefix(first));
    // A non-minimal varint spells another prefix: the key is then under none of `first`'s.
    const bool canonical = bytes.starts_with(prefix);
    if (const auto seq = entry_key_seq(bytes, prefix)) {
      HERALD_FUZZ_CHECK(canonical);
      HERALD_FUZZ_CHECK(entry_key(first, *seq) == bytes);
      HERALD_FUZZ_CHECK(entry_key_from_prefix(prefix, *seq) == bytes);
    }
    if (const auto second = pair_key_second(bytes, prefix)) {
      HERALD_FUZZ_CHECK(canonical && *second == rest);
      HERALD_FUZZ_CHECK(pair_key(first, *second) == bytes);
    } else {
      HERALD_FUZZ_CHECK(!canonical);
    }
  }
  // The successor bounds every key that starts with `bytes` from above.
  const std::string successor = prefix_successor(bytes);
  if (bytes.find_first_not_of('\xff') == std::string_view::npos) {
    HERALD_FUZZ_CHECK(successor.empty());
  } else {
    HERALD_FUZZ_CHECK(std::string_view(successor) > bytes);
    HERALD_FUZZ_CHECK(!std::string_view(successor).starts_with(bytes));
    HERALD_FUZZ_CHECK(successor.size() <= bytes.size());
  }
}

}  // namespace
}  // namespace herald::storage::detail

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  herald::storage::detail::check_entry_record(bytes);
  herald::storage::detail::check_record_value(bytes);
  herald::storage::detail::check_meta_records(bytes);
  herald::storage::detail::check_keys(bytes);
  return 0;
}
