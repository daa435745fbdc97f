// Replays the checked-in endpoint list corpus through its fuzz target in every build, one test
// per file, and checks the corpus's signed lists as golden vectors: they were signed by openssl
// over canonical bytes built by a separate script, so a drift in this implementation's canonical
// bytes or parsing fails here.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "protocol/endpoint_list_format.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace herald::protocol {
namespace {

// The corpus's signing key (public half; endpoint_list_fuzz.cc) and a time inside its lists'
// validity.
constexpr std::string_view kPublicKey = "MmHb9+q+lA+pNmIjtmXSk+rIgFZ+hZ253wWl6bQBVxY=";
constexpr std::int64_t kNowMs = 1'700'000'000'000;

const std::filesystem::path kCorpus = HERALD_FUZZ_CORPUS_DIR;

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::filesystem::path> corpus_files() {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus, ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

boost::system::result<EndpointList> check(const char* name) {
  return check_signed_list(std::string_view(read(kCorpus / name)), kPublicKey, kNowMs);
}

TEST(EndpointListGolden, ListsSignedByAnIndependentImplementationVerify) {
  const auto plain = check("valid_list");
  ASSERT_TRUE(plain) << plain.error().message();
  ASSERT_EQ(plain->endpoints.size(), 2u);
  EXPECT_EQ(plain->endpoints[1].host, "fd00::10");
  EXPECT_EQ(plain->endpoints[1].node, "access 1");
  EXPECT_FALSE(plain->heartbeat);

  const auto hinted = check("valid_list_with_heartbeat");
  ASSERT_TRUE(hinted) << hinted.error().message();
  ASSERT_TRUE(hinted->heartbeat);
  EXPECT_EQ(hinted->heartbeat->network, "carrier:310-260");
  EXPECT_EQ(hinted->heartbeat->start_s, 240u);
  EXPECT_EQ(hinted->heartbeat->reports, 17u);
}

TEST(EndpointListGolden, BrokenListsAreRefusedForTheirReason) {
  EXPECT_EQ(check("expired_list").error(), EndpointListError::kExpired);
  EXPECT_EQ(check("tampered_heartbeat").error(), EndpointListError::kBadSignature);
  EXPECT_EQ(check("malformed_heartbeat").error(), EndpointListError::kMalformed);
  EXPECT_EQ(check("not_json").error(), EndpointListError::kMalformed);
}

class EndpointListFuzzReplay : public testing::TestWithParam<std::filesystem::path> {};

INSTANTIATE_TEST_SUITE_P(Corpus, EndpointListFuzzReplay, testing::ValuesIn(corpus_files()),
                         [](const testing::TestParamInfo<std::filesystem::path>& file) {
                           std::string name = file.param.filename().string();
                           std::replace_if(
                               name.begin(), name.end(),
                               [](char c) {
                                 return !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                                          (c >= 'A' && c <= 'Z'));
                               },
                               '_');
                           return name;
                         });

TEST_P(EndpointListFuzzReplay, RunsWithoutTrippingAnInvariant) {
  const std::string bytes = read(GetParam());
  EXPECT_EQ(
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0);
}

}  // namespace
}  // namespace herald::protocol
