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
#include "protocol/fuzz_replay.h"

namespace herald::protocol {
namespace {

// The corpus's signing key (public half; endpoint_list_fuzz.cc) and a time inside its lists'
// validity.
constexpr std::string_view kPublicKey = "MmHb9+q+lA+pNmIjtmXSk+rIgFZ+hZ253wWl6bQBVxY=";
constexpr std::int64_t kNowMs = 1'700'000'000'000;

const std::filesystem::path kCorpus = HERALD_FUZZ_CORPUS_DIR;

boost::system::result<EndpointList> check(const char* name) {
  return check_signed_list(std::string_view(fuzz::read_file(kCorpus / name)), kPublicKey, kNowMs);
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

HERALD_FUZZ_REPLAY_TESTS(EndpointListFuzzReplay, kCorpus)

}  // namespace
}  // namespace herald::protocol
