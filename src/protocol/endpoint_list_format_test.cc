#include "protocol/endpoint_list_format.h"

#include <string>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "protocol/base64.h"

namespace herald::protocol {
namespace {

namespace json = boost::json;

// Any 32 bytes decode as a public key; verification then fails on the signature.
const std::string kKey = base64_encode(std::string(32, '\x07'));

TEST(EndpointListFormat, CanonicalBytesCarryTheHeartbeatHintRightAfterTheKeyId) {
  EndpointList list{{{"10.0.0.1", 7700, "a", 100}}, 1700000000000, 1700000600000, "00ff"};
  list.heartbeat = HeartbeatHint{"carrier x", 240, 17};
  EXPECT_EQ(canonical_bytes(list),
            "herald-endpoints-v1\n"
            "issued_at_ms=1700000000000\n"
            "expires_at_ms=1700000600000\n"
            "key_id=00ff\n"
            "heartbeat=240 17 carrier x\n"
            "10.0.0.1 7700 100 a\n");
}

TEST(EndpointListFormat, FieldsCarryTheHintOnlyWhenSet) {
  EndpointList list{{}, 1, 2, "00ff"};
  EXPECT_FALSE(endpoint_list_fields(list).contains("heartbeat"));
  list.heartbeat = HeartbeatHint{"wifi", 120, 3};
  EXPECT_EQ(json::serialize(endpoint_list_fields(list).at("heartbeat")),
            R"({"network":"wifi","start_s":120,"reports":3})");
}

TEST(EndpointListFormat, HeartbeatNetworksAreBoundedAndHoldNoControlCharacter) {
  EXPECT_TRUE(valid_heartbeat_network("wifi home"));
  EXPECT_TRUE(valid_heartbeat_network(std::string(kMaxHeartbeatNetworkBytes, 'n')));
  EXPECT_FALSE(valid_heartbeat_network(std::string(kMaxHeartbeatNetworkBytes + 1, 'n')));
  EXPECT_FALSE(valid_heartbeat_network(""));
  EXPECT_FALSE(valid_heartbeat_network("wifi\n10.0.0.9 1 0 evil"));
}

TEST(EndpointListFormat, TextThatIsNotJsonIsMalformed) {
  const auto checked = check_signed_list(std::string_view("{\"endpoints\": ["), kKey, 0);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error(), EndpointListError::kMalformed);
}

TEST(EndpointListFormat, AMalformedHintMakesTheListMalformed) {
  const std::string base = R"({"endpoints": [], "issued_at_ms": 1, "expires_at_ms": 2,
                               "key_id": "00ff", "signature": "AAAA", "heartbeat": )";
  for (const char* hint : {R"(null)", R"({"network": "w", "start_s": 60})",
                           R"({"network": "", "start_s": 60, "reports": 1})",
                           R"({"network": "w", "start_s": -1, "reports": 1})",
                           R"({"network": "w", "start_s": 4294967296, "reports": 1})",
                           R"({"network": "w", "start_s": 60.5, "reports": 1})",
                           R"({"network": "a\u0001b", "start_s": 60, "reports": 1})"}) {
    const auto checked = check_signed_list(std::string_view(base + hint + "}"), kKey, 0);
    ASSERT_FALSE(checked) << hint;
    EXPECT_EQ(checked.error(), EndpointListError::kMalformed) << hint;
  }
}

TEST(EndpointListFormat, AListNamingAnotherKeyIsRefusedAsUnknownKey) {
  const auto checked = check_signed_list(
      std::string_view(R"({"endpoints": [{"host": "10.0.0.1", "port": 1, "node": "a", "load": 0}],
                           "issued_at_ms": 1, "expires_at_ms": 2, "key_id": "00ff",
                           "signature": "AAAA"})"),
      kKey, 0);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error(), EndpointListError::kUnknownKey);
}

TEST(EndpointListFormat, ATrustedKeyThatIsNotBase64Of32BytesIsReported) {
  EXPECT_FALSE(decode_endpoint_public_key("AAAA"));
  EXPECT_FALSE(decode_endpoint_public_key("not base64!"));
  EXPECT_TRUE(decode_endpoint_public_key(kKey));
  const auto checked = check_signed_list(std::string_view("{}"), "AAAA", 0);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error(), EndpointListError::kBadPublicKey);
  EXPECT_NE(checked.error().message().find("32-byte"), std::string::npos);
}

}  // namespace
}  // namespace herald::protocol
