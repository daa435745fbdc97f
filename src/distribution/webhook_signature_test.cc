#include "distribution/webhook_signature.h"

#include <gtest/gtest.h>

namespace herald::distribution {
namespace {

// Expected values computed outside Herald (Python's hmac module):
//   hmac.new(b"secret", b"1700000000.{}", hashlib.sha256).hexdigest()
TEST(WebhookSignature, IsHmacSha256OfTimestampDotBodyInLowercaseHex) {
  EXPECT_EQ(webhook_mac_hex("secret", 1'700'000'000, "{}"),
            "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163");
}

TEST(WebhookSignature, HeaderValueNamesTheTimestampAndTheV1Mac) {
  EXPECT_EQ(webhook_signature("0123456789abcdef0123456789abcdef", 1'700'000'000,
                              R"({"app":"news","messages":[]})"),
            "t=1700000000,v1=dbf0acb439578dcbce1826d4cfb4eeb53a046c240a0b47e2ab96e8af0edecf0a");
}

TEST(WebhookSignature, ChangesWithTheBodyTheTimestampAndTheSecret) {
  const auto base = webhook_mac_hex("secret", 1, "{}");
  EXPECT_NE(webhook_mac_hex("secret", 1, "{ }"), base);
  EXPECT_NE(webhook_mac_hex("secret", 2, "{}"), base);
  EXPECT_NE(webhook_mac_hex("secreT", 1, "{}"), base);
}

}  // namespace
}  // namespace herald::distribution
