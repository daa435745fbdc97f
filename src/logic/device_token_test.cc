#include "logic/device_token.h"

#include <gtest/gtest.h>

namespace herald::logic {
namespace {

const std::string kSecret(32, 's');

TEST(DeviceToken, AMintedTokenVerifiesForItsDevice) {
  DeviceTokenAuthority auth(kSecret, 0);
  EXPECT_TRUE(auth.verify("phone-1", auth.mint("phone-1", 1000), 5000));
}

TEST(DeviceToken, ATokenDoesNotVerifyForAnotherDevice) {
  DeviceTokenAuthority auth(kSecret, 0);
  EXPECT_FALSE(auth.verify("phone-2", auth.mint("phone-1", 1000), 1000));
}

TEST(DeviceToken, ATokenFromAnotherSecretIsRefused) {
  DeviceTokenAuthority auth(kSecret, 0);
  DeviceTokenAuthority other(std::string(32, 'o'), 0);
  EXPECT_FALSE(auth.verify("phone-1", other.mint("phone-1", 1000), 1000));
}

TEST(DeviceToken, AnAlteredIssueTimeIsRefused) {
  DeviceTokenAuthority auth(kSecret, 0);
  std::string token = auth.mint("phone-1", 1000);
  token.replace(3, 4, "1001");
  EXPECT_FALSE(auth.verify("phone-1", token, 1000));
}

TEST(DeviceToken, MalformedTokensAreRefused) {
  DeviceTokenAuthority auth(kSecret, 0);
  for (const char* t : {"", "v1.", "v1..", "v1.x.abc", "v2.1000.abc", "v1.-5.abc", "garbage"}) {
    EXPECT_FALSE(auth.verify("phone-1", t, 1000)) << t;
  }
}

TEST(DeviceToken, ExpiredTokensAreRefusedWhenAMaxAgeIsSet) {
  DeviceTokenAuthority auth(kSecret, 3600);
  const auto token = auth.mint("phone-1", 1000);
  EXPECT_TRUE(auth.verify("phone-1", token, 1000 + 3600));
  EXPECT_FALSE(auth.verify("phone-1", token, 1000 + 3601));
}

TEST(DeviceToken, AShortSecretIsRejectedAtConstruction) {
  EXPECT_THROW(DeviceTokenAuthority(std::string(31, 's'), 0), std::invalid_argument);
}

TEST(DeviceToken, DeviceIdsFollowTheDocumentedCharset) {
  EXPECT_TRUE(DeviceTokenAuthority::valid_device_id("Phone_1.a:b-c"));
  EXPECT_FALSE(DeviceTokenAuthority::valid_device_id(""));
  EXPECT_FALSE(DeviceTokenAuthority::valid_device_id("has space"));
  EXPECT_FALSE(DeviceTokenAuthority::valid_device_id("slash/no"));
  EXPECT_FALSE(DeviceTokenAuthority::valid_device_id(std::string(129, 'a')));
}

}  // namespace
}  // namespace herald::logic
