// Replays the checked-in cluster-message corpus through its fuzz target in every build, one test
// per file, and checks that the corpus still holds a real message of every record kind (the
// seeds follow the layout drawn in cluster_message.h), so a change of format that forgets the
// corpus fails here.

#include <gtest/gtest.h>

#include <filesystem>

#include "distribution/redis/cluster_message.h"
#include "protocol/fuzz_replay.h"

namespace herald::distribution {
namespace {

const std::filesystem::path kCorpus = HERALD_FUZZ_CORPUS_DIR;

std::optional<ClusterMessage> seed(const char* name) {
  return decode_cluster_message(fuzz::read_file(kCorpus / name));
}

TEST(ClusterMessageFuzzCorpus, HoldsARealMessageOfEveryKind) {
  ASSERT_TRUE(seed("notify"));
  EXPECT_EQ(seed("notify")->records.at(0).kind, ClusterRecordKind::kNotify);
  ASSERT_TRUE(seed("streams_changed"));
  EXPECT_EQ(seed("streams_changed")->records.at(0).kind, ClusterRecordKind::kStreamsChanged);
  ASSERT_TRUE(seed("stream_notify_filtered"));
  EXPECT_TRUE(seed("stream_notify_filtered")->records.at(0).filter);
  ASSERT_TRUE(seed("stream_notify_unfiltered"));
  EXPECT_FALSE(seed("stream_notify_unfiltered")->records.at(0).filter);
  ASSERT_TRUE(seed("mixed"));
  EXPECT_EQ(seed("mixed")->records.size(), 4u);
}

TEST(ClusterMessageFuzzCorpus, RefusesTheBrokenSeeds) {
  for (const char* name : {"broken_truncated", "broken_trailing_byte", "broken_count_too_high",
                           "broken_unknown_kind", "broken_invalid_filter", "broken_version_2"}) {
    EXPECT_FALSE(seed(name)) << name;
  }
}

HERALD_FUZZ_REPLAY_TESTS(ClusterMessageFuzzReplay, kCorpus)

}  // namespace
}  // namespace herald::distribution
