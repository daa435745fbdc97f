// Replays the checked-in stored-value corpus through its fuzz target in every build, one test per
// file, and checks that the corpus still holds a real value of every kind the stores write (the
// seeds follow detail/value_codec.h; a change of format that forgets the corpus fails here).
#include <filesystem>
#include <optional>

#include <gtest/gtest.h>

#include "protocol/fuzz_replay.h"
#include "storage/redis/detail/value_codec.h"

namespace herald::storage::redis_detail {
namespace {

const std::filesystem::path kCorpus = HERALD_FUZZ_CORPUS_DIR;

std::optional<DataKind> kind_of(const char* name) {
  const auto entry = decode_entry(fuzz::read_file(kCorpus / name));
  if (!entry) return std::nullopt;
  return entry->kind;
}

TEST(RedisStoredValueFuzzCorpus, HoldsARealValueOfEveryKind) {
  EXPECT_EQ(kind_of("entry_json"), DataKind::kJson);
  EXPECT_EQ(kind_of("entry_binary"), DataKind::kBinary);
  EXPECT_EQ(kind_of("entry_tombstone"), DataKind::kTombstone);
  EXPECT_EQ(kind_of("entry_recall"), DataKind::kRecall);
  const auto full = decode_entry(fuzz::read_file(kCorpus / "entry_audience_collapse_key"));
  ASSERT_TRUE(full);
  EXPECT_FALSE(full->audience.empty());
  EXPECT_TRUE(decode_record("k", fuzz::read_file(kCorpus / "record_expiring")));
  EXPECT_TRUE(decode_record("k", fuzz::read_file(kCorpus / "record_never_expires")));
  EXPECT_TRUE(decode_cursor(fuzz::read_file(kCorpus / "acked_cursor")));
}

TEST(RedisStoredValueFuzzCorpus, RefusesTheBrokenSeeds) {
  for (const char* name : {"broken_entry_truncated", "broken_entry_trailing_byte",
                           "broken_entry_unknown_kind", "broken_entry_tombstone_with_data",
                           "broken_entry_length_past_end", "broken_entry_version_2"}) {
    EXPECT_FALSE(decode_entry(fuzz::read_file(kCorpus / name))) << name;
  }
  EXPECT_FALSE(decode_record("k", fuzz::read_file(kCorpus / "broken_record_short")));
  EXPECT_FALSE(decode_cursor(fuzz::read_file(kCorpus / "broken_cursor_leading_zero")));
}

HERALD_FUZZ_REPLAY_TESTS(RedisStoredValueFuzzReplay, kCorpus)

}  // namespace
}  // namespace herald::storage::redis_detail
