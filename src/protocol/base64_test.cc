#include "protocol/base64.h"

#include <gtest/gtest.h>

namespace herald::protocol {
namespace {

TEST(Base64, RoundTripsEveryLengthModThree) {
  const std::string bytes("\x00\xff\x10\x80hello\x7f", 10);
  for (std::size_t n = 0; n <= bytes.size(); ++n) {
    const std::string in = bytes.substr(0, n);
    const auto out = base64_decode(base64_encode(in));
    ASSERT_TRUE(out.has_value()) << n;
    EXPECT_EQ(*out, in) << n;
  }
}

TEST(Base64, MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_decode("Zm9vYg==").value(), "foob");
}

TEST(Base64, AcceptsMissingPadding) {
  EXPECT_EQ(base64_decode("Zg").value(), "f");
  EXPECT_EQ(base64_decode("Zm8").value(), "fo");
}

TEST(Base64, RejectsCharactersOutsideTheStandardAlphabet) {
  EXPECT_FALSE(base64_decode("Zm9v YmFy").has_value());
  EXPECT_FALSE(base64_decode("Zm9v\nYmFy").has_value());
  EXPECT_FALSE(base64_decode("-_-_").has_value());
  EXPECT_FALSE(base64_decode(std::string("Zm\0v", 4)).has_value());
}

TEST(Base64, RejectsMisplacedOrWrongPadding) {
  EXPECT_FALSE(base64_decode("Zg=").has_value());
  EXPECT_FALSE(base64_decode("Z===").has_value());
  EXPECT_FALSE(base64_decode("Zg==Zg==").has_value());
  EXPECT_FALSE(base64_decode("=").has_value());
  EXPECT_FALSE(base64_decode("Zm9vY").has_value());
}

TEST(Base64, RejectsNonZeroTrailingBits) {
  EXPECT_FALSE(base64_decode("Zh==").has_value());
  EXPECT_FALSE(base64_decode("Zm9=").has_value());
}

}  // namespace
}  // namespace herald::protocol
