// Replays the checked-in stored-record corpus through its fuzz target in every build, one test
// per file, and checks that the corpus still holds a real record of every kind the store writes:
// the seeds were produced by the encoders (see docs/fuzzing.md), so a change of format that
// forgets the corpus fails here.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "protocol/fuzz_replay.h"
#include "storage/rocksdb/detail/meta_codec.h"
#include "storage/rocksdb/detail/record_codec.h"
#include "storage/rocksdb/detail/record_value_codec.h"

namespace herald::storage::detail {
namespace {

const std::filesystem::path kCorpus = HERALD_FUZZ_CORPUS_DIR;

std::optional<DataKind> kind_of(const char* name) {
  const auto entry = decode_entry_record(fuzz::read_file(kCorpus / name));
  if (!entry) return std::nullopt;
  return entry->kind;
}

TEST(StoredRecordFuzzCorpus, HoldsARealRecordOfEveryKind) {
  EXPECT_EQ(kind_of("entry_json"), DataKind::kJson);
  EXPECT_EQ(kind_of("entry_binary"), DataKind::kBinary);
  EXPECT_EQ(kind_of("entry_tombstone"), DataKind::kTombstone);
  EXPECT_EQ(kind_of("entry_recall"), DataKind::kRecall);
  const auto with_audience = decode_entry_record(fuzz::read_file(kCorpus / "entry_with_audience"));
  ASSERT_TRUE(with_audience);
  EXPECT_FALSE(with_audience->audience.empty());
  EXPECT_TRUE(decode_record_value("k", fuzz::read_file(kCorpus / "record_idempotency")));
  EXPECT_TRUE(decode_stream_meta(fuzz::read_file(kCorpus / "stream_meta")));
  EXPECT_TRUE(decode_database_state(fuzz::read_file(kCorpus / "database_state")));
  EXPECT_TRUE(decode_registration(fuzz::read_file(kCorpus / "registration")));
  EXPECT_TRUE(decode_acked_cursor(fuzz::read_file(kCorpus / "acked_cursor")));
  EXPECT_TRUE(decode_collapse_pointer(fuzz::read_file(kCorpus / "collapse_pointer")));
}

TEST(StoredRecordFuzzCorpus, RefusesTheBrokenSeeds) {
  EXPECT_FALSE(decode_entry_record(fuzz::read_file(kCorpus / "broken_entry_truncated")));
  EXPECT_FALSE(decode_entry_record(fuzz::read_file(kCorpus / "broken_entry_trailing_byte")));
  EXPECT_FALSE(decode_entry_record(fuzz::read_file(kCorpus / "broken_entry_unknown_kind")));
  EXPECT_FALSE(decode_entry_record(fuzz::read_file(kCorpus / "broken_entry_tombstone_with_data")));
  EXPECT_FALSE(decode_entry_record(fuzz::read_file(kCorpus / "broken_entry_length_past_end")));
  EXPECT_FALSE(decode_entry_record(fuzz::read_file(kCorpus / "broken_entry_varint_overflow")));
  EXPECT_FALSE(decode_stream_meta(fuzz::read_file(kCorpus / "broken_stream_meta_zero_epoch")));
  EXPECT_FALSE(
      decode_database_state(fuzz::read_file(kCorpus / "broken_database_state_unknown_flag")));
  EXPECT_FALSE(decode_acked_cursor(fuzz::read_file(kCorpus / "broken_acked_cursor_version_2")));
}

HERALD_FUZZ_REPLAY_TESTS(StoredRecordFuzzReplay, kCorpus)

}  // namespace
}  // namespace herald::storage::detail
