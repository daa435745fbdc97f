#include "cli/args.h"

#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace herald::cli {
namespace {

Args parse(std::vector<std::string_view> args) { return Args::parse(args); }

TEST(Args, FlagsStandBeforeOrAfterTheWords) {
  const Args a = parse({"--json", "alias", "--app=news", "set", "--device", "d1", "--device=d2"});
  EXPECT_EQ(a.command(), "alias set");
  EXPECT_TRUE(a.has("json"));
  EXPECT_EQ(a.get("app"), "news");
  EXPECT_EQ(a.all("device"), (std::vector<std::string>{"d1", "d2"}));
  EXPECT_EQ(a.given(), (std::vector<std::string>{"app", "device", "json"}));
}

TEST(Args, AValueMayStartWithADash) {
  EXPECT_EQ(parse({"push", "--data", "-1"}).get("data"), "-1");
}

TEST(Args, RefusesAnUnknownFlag) { EXPECT_THROW(parse({"push", "--dta", "1"}), UsageError); }

TEST(Args, RefusesAMissingValue) { EXPECT_THROW(parse({"push", "--data"}), UsageError); }

TEST(Args, RefusesAValueForASwitch) { EXPECT_THROW(parse({"--json=1", "health"}), UsageError); }

TEST(Args, RefusesANonRepeatableFlagGivenTwice) {
  EXPECT_THROW(parse({"push", "--app", "a", "--app", "b"}), UsageError);
}

TEST(Args, BroadcastIsASwitchAndAConditionOneValue) {
  const Args a = parse({"push", "--broadcast", "--condition", "'a' in topics && !('b' in topics)"});
  EXPECT_TRUE(a.has("broadcast"));
  EXPECT_EQ(a.get("condition"), "'a' in topics && !('b' in topics)");
  EXPECT_EQ(a.words(), (std::vector<std::string>{"push"}));
  EXPECT_THROW(parse({"push", "--broadcast=yes"}), UsageError);
}

TEST(Args, SpreadHistoryAndLimitAreWholeNumbers) {
  const Args a = parse({"--spread", "90", "--history", "5", "--limit", "1.5"});
  EXPECT_EQ(a.integer("spread"), 90);
  EXPECT_EQ(a.integer("history"), 5);
  EXPECT_THROW((void)a.integer("limit", 1), UsageError);
  EXPECT_THROW((void)parse({"--spread", "1m"}).integer("spread"), UsageError);
}

TEST(Args, ShortHIsHelp) { EXPECT_TRUE(parse({"push", "-h"}).help()); }

TEST(Args, RequiredNamesTheCommandAndTheFlag) {
  try {
    (void)parse({"alias", "get"}).required("alias");
    FAIL() << "no UsageError";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "alias get needs --alias NAME");
  }
}

TEST(Args, IntegersAndRatesAreCheckedWhole) {
  const Args a = parse({"push", "--ttl", "60", "--send-at", "12x", "--requests-per-s", "2.5"});
  EXPECT_EQ(a.integer("ttl"), 60);
  EXPECT_THROW((void)a.integer("send-at"), UsageError);
  EXPECT_EQ(a.rate("requests-per-s"), 2.5);
  EXPECT_EQ(a.integer("grace"), std::nullopt);
  EXPECT_THROW((void)parse({"--ttl", "-1"}).integer("ttl"), UsageError);
  EXPECT_THROW((void)parse({"--messages-per-s", "nan"}).rate("messages-per-s"), UsageError);
}

}  // namespace
}  // namespace herald::cli
