// Replays the checked-in fuzz corpus through the fuzz target in every build, one test per file:
// a seed or a saved crash reproducer that trips an invariant aborts the test binary.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "protocol/fuzz_replay.h"

namespace herald::protocol {
namespace {

const std::filesystem::path kCorpus = HERALD_FUZZ_CORPUS_DIR;

TEST(FrameCodecFuzzCorpus, HoldsAValidFrameOfEveryType) {
  const std::vector<std::filesystem::path> files = fuzz::corpus_files(kCorpus);
  for (const char* name : {"valid_hello", "valid_hello_ok", "valid_ping", "valid_pong",
                           "valid_notify_inbox", "valid_pull", "valid_messages", "valid_ack",
                           "valid_reconnect", "valid_error", "valid_upstream", "valid_upstream_ack",
                           "valid_messages_tombstone", "valid_messages_recall"}) {
    EXPECT_NE(std::find(files.begin(), files.end(), kCorpus / name), files.end()) << name;
  }
}

HERALD_FUZZ_REPLAY_TESTS(FrameCodecFuzzReplay, kCorpus)

}  // namespace
}  // namespace herald::protocol
