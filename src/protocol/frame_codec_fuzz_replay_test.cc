// Replays the checked-in fuzz corpus through the fuzz target in every build, one test per file:
// a seed or a saved crash reproducer that trips an invariant aborts the test binary.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace herald::protocol {
namespace {

std::vector<std::filesystem::path> corpus_files() {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(HERALD_FUZZ_CORPUS_DIR, ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string test_name(const std::filesystem::path& p) {
  std::string name = p.filename().string();
  for (char& c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0) c = '_';
  }
  return name;
}

TEST(FrameCodecFuzzCorpus, HoldsAValidFrameOfEveryType) {
  const std::vector<std::filesystem::path> files = corpus_files();
  for (const char* name : {"valid_hello", "valid_hello_ok", "valid_ping", "valid_pong",
                           "valid_notify_inbox", "valid_pull", "valid_messages", "valid_ack",
                           "valid_reconnect", "valid_error", "valid_upstream", "valid_upstream_ack",
                           "valid_messages_tombstone", "valid_messages_recall"}) {
    EXPECT_NE(
        std::find(files.begin(), files.end(), std::filesystem::path(HERALD_FUZZ_CORPUS_DIR) / name),
        files.end())
        << name;
  }
}

class FrameCodecFuzzReplay : public testing::TestWithParam<std::filesystem::path> {};

INSTANTIATE_TEST_SUITE_P(Corpus, FrameCodecFuzzReplay, testing::ValuesIn(corpus_files()),
                         [](const testing::TestParamInfo<std::filesystem::path>& file) {
                           return test_name(file.param);
                         });

TEST_P(FrameCodecFuzzReplay, RunsWithoutTrippingAnInvariant) {
  std::ifstream in(GetParam(), std::ios::binary);
  ASSERT_TRUE(in) << GetParam();
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                        std::istreambuf_iterator<char>());
  EXPECT_EQ(LLVMFuzzerTestOneInput(bytes.data(), bytes.size()), 0);
}

}  // namespace
}  // namespace herald::protocol
