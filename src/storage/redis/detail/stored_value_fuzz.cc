// libFuzzer target for what the Redis stores read back from Redis: arbitrary bytes, read as every
// stored value of detail/value_codec.h would be after data damage, a bad restore or a bug in
// another writer. The same bytes go to every decoder: decode_entry (the entries hash),
// decode_record (record strings), decode_cursor (acked cursors), parse_u64 / parse_i64 (epochs,
// heads, registration times).
//
// Invariants (a violation aborts, which libFuzzer reports as a crash and the corpus replay test
// as a failure):
//   - no decoder crashes, whatever the bytes;
//   - a value a decoder accepts round-trips: decode(encode(v)) == v; records, cursors and numbers
//     re-encode to the very bytes (their text or layout is canonical).
//
// Build with -DHERALD_BUILD_FUZZERS=ON and clang; run as
//   build-fuzz/bin/herald_redis_stored_value_fuzz src/storage/redis/fuzz_corpus/stored_value
// The checked-in corpus is replayed in every build by herald_redis_stored_value_fuzz_replay_test.
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/fuzz_check.h"
#include "storage/redis/detail/value_codec.h"

namespace herald::storage::redis_detail {
namespace {

bool same_entry(const Entry& a, const Entry& b) {
  return a.seq == b.seq && a.app == b.app && a.message_id == b.message_id && a.kind == b.kind &&
         a.data == b.data && a.sent_at_ms == b.sent_at_ms && a.expires_at_ms == b.expires_at_ms &&
         a.audience == b.audience;
}

void check_entry(std::string_view bytes) {
  const auto entry = decode_entry(bytes);
  if (!entry) return;
  HERALD_FUZZ_CHECK(entry->seq == 0);
  HERALD_FUZZ_CHECK(entry->kind != DataKind::kTombstone ||
                    (entry->data.empty() && entry->audience.empty()));
  // The collapse key is the store's own and not decoded: re-encoded without it, the value can
  // only be shorter.
  const std::string encoded = encode_entry(*entry, "");
  HERALD_FUZZ_CHECK(encoded.size() <= bytes.size());
  const auto again = decode_entry(encoded);
  HERALD_FUZZ_CHECK(again.has_value() && same_entry(*again, *entry));
}

void check_record(std::string_view bytes) {
  const auto record = decode_record("key", bytes);
  if (!record) return;
  HERALD_FUZZ_CHECK(record->key == "key");
  HERALD_FUZZ_CHECK(encode_record(record->expires_at_ms, record->value) == bytes);
}

void check_cursor(std::string_view bytes) {
  const auto cursor = decode_cursor(bytes);
  if (!cursor) return;
  HERALD_FUZZ_CHECK(encode_cursor(*cursor) == bytes);
}

void check_numbers(std::string_view bytes) {
  if (const auto u = parse_u64(bytes)) HERALD_FUZZ_CHECK(std::to_string(*u) == bytes);
  if (const auto i = parse_i64(bytes)) HERALD_FUZZ_CHECK(std::to_string(*i) == bytes);
}

}  // namespace
}  // namespace herald::storage::redis_detail

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  herald::storage::redis_detail::check_entry(bytes);
  herald::storage::redis_detail::check_record(bytes);
  herald::storage::redis_detail::check_cursor(bytes);
  herald::storage::redis_detail::check_numbers(bytes);
  return 0;
}
