#include "cli/format.h"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace herald::cli {
namespace {

namespace json = boost::json;

TEST(Format, AMissingOrNullFieldIsADash) {
  const json::value v = json::parse(R"({"a": null})");
  EXPECT_EQ(text(field(v, "a")), "-");
  EXPECT_EQ(text(field(v, "b")), "-");
  EXPECT_EQ(time_text(field(v, "b")), "-");
  EXPECT_EQ(text(field(json::value(3), "a")), "-");
}

TEST(Format, ValuesReadAsPeopleWriteThem) {
  const json::value v = json::parse(R"({"s": "x", "t": true, "f": false, "i": 7, "d": 2.5})");
  EXPECT_EQ(text(field(v, "s")), "x");
  EXPECT_EQ(text(field(v, "t")), "yes");
  EXPECT_EQ(text(field(v, "f")), "no");
  EXPECT_EQ(text(field(v, "i")), "7");
  EXPECT_EQ(text(field(v, "d")), "2.5");
}

TEST(Format, TimesAreUtcToTheMillisecond) {
  EXPECT_EQ(format_time_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_time_ms(1'714'564'800'123), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(format_time_ms(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Format, DurationsGrowCoarser) {
  EXPECT_EQ(format_duration_ms(42), "42ms");
  EXPECT_EQ(format_duration_ms(3'150), "3.1s");
  EXPECT_EQ(format_duration_ms(125'000), "2m05s");
  EXPECT_EQ(format_duration_ms(4 * 3'600'000 + 600'000), "4h10m");
  EXPECT_EQ(format_duration_ms(3 * 86'400'000 + 2 * 3'600'000), "3d02h");
}

TEST(Format, OffsetsAreSinceAGivenTime) {
  const json::value at = 1'012;
  EXPECT_EQ(offset_text(&at, 1'000), "+12ms");
  EXPECT_EQ(offset_text(nullptr, 1'000), "-");
}

}  // namespace
}  // namespace herald::cli
