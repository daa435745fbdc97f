// What every corpus replay test (*_fuzz_replay_test.cc) shares: the corpus's files, their bytes,
// and HERALD_FUZZ_REPLAY_TESTS, which runs each file through the fuzz target linked into the
// test (LLVMFuzzerTestOneInput, whose HERALD_FUZZ_CHECKs abort on a broken invariant).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace herald::fuzz {

// The regular files of the corpus directory `dir`, sorted; none when it does not exist.
inline std::vector<std::filesystem::path> corpus_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The bytes of `file`.
inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `file`'s name as a test name: every character but a letter or a digit becomes '_'.
inline std::string test_name(const std::filesystem::path& file) {
  std::string name = file.filename().string();
  for (char& c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0) c = '_';
  }
  return name;
}

}  // namespace herald::fuzz

// Defines the test suite `Suite`, one test per file of the corpus directory `dir`: each file's
// bytes through the fuzz target must come back without tripping an invariant.
#define HERALD_FUZZ_REPLAY_TESTS(Suite, dir)                                                       \
  class Suite : public ::testing::TestWithParam<std::filesystem::path> {};                         \
  INSTANTIATE_TEST_SUITE_P(Corpus, Suite, ::testing::ValuesIn(::herald::fuzz::corpus_files(dir)),  \
                           [](const ::testing::TestParamInfo<std::filesystem::path>& file) {       \
                             return ::herald::fuzz::test_name(file.param);                         \
                           });                                                                     \
  TEST_P(Suite, RunsWithoutTrippingAnInvariant) {                                                  \
    const std::string bytes = ::herald::fuzz::read_file(GetParam());                               \
    EXPECT_EQ(                                                                                     \
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), \
        0);                                                                                        \
  }
