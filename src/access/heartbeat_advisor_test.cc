#include "access/heartbeat_advisor.h"

#include <string>

#include <gtest/gtest.h>

namespace herald::access {
namespace {

constexpr std::int64_t kHourMs = 3'600'000;

HeartbeatAdvisorOptions options() {
  HeartbeatAdvisorOptions o;
  o.max_networks = 3;
  o.max_devices_per_network = 8;
  o.min_reports = 3;
  o.percentile = 25;
  o.report_ttl = std::chrono::hours(24);
  return o;
}

void report(HeartbeatAdvisor& a, const std::string& network, int devices, std::uint32_t settled_s,
            std::int64_t now_ms, const std::string& prefix = "d") {
  for (int i = 0; i < devices; ++i) {
    ASSERT_TRUE(a.record(network, prefix + std::to_string(i), settled_s, now_ms));
  }
}

TEST(HeartbeatAdvisor, NoHintBeforeMinReportsDistinctDevices) {
  HeartbeatAdvisor a(options());
  report(a, "carrier:1", 2, 300, 0);
  EXPECT_FALSE(a.hint("carrier:1", 0));
  report(a, "carrier:1", 1, 300, 0, "other");
  const auto hint = a.hint("carrier:1", 0);
  ASSERT_TRUE(hint);
  EXPECT_EQ(hint->start_s, 300u);
  EXPECT_EQ(hint->reports, 3u);
}

TEST(HeartbeatAdvisor, ADeviceCountsOnceAndItsNewestReportReplacesTheOlder) {
  HeartbeatAdvisor a(options());
  for (std::uint32_t s = 60; s <= 600; s += 60) ASSERT_TRUE(a.record("wifi:x", "d0", s, 0));
  ASSERT_TRUE(a.record("wifi:x", "d1", 600, 0));
  EXPECT_FALSE(a.hint("wifi:x", 0));  // two devices, however many reports
  ASSERT_TRUE(a.record("wifi:x", "d2", 600, 0));
  const auto hint = a.hint("wifi:x", 0);
  ASSERT_TRUE(hint);
  EXPECT_EQ(hint->reports, 3u);
  EXPECT_EQ(hint->start_s, 600u);  // d0's 60..540 were replaced
}

TEST(HeartbeatAdvisor, HintIsTheLowQuantileNotTheMean) {
  HeartbeatAdvisor a(options());
  // Eight devices: 120 180 240 300 300 300 360 360; rank floor(0.25 x 7) = 1 -> 180.
  const std::uint32_t settled[] = {300, 360, 120, 300, 240, 360, 180, 300};
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(a.record("carrier:1", std::to_string(i), settled[i], 0));
  const auto hint = a.hint("carrier:1", 0);
  ASSERT_TRUE(hint);
  EXPECT_EQ(hint->start_s, 180u);
  EXPECT_EQ(hint->reports, 8u);
}

TEST(HeartbeatAdvisor, NetworksAreComparedExactly) {
  HeartbeatAdvisor a(options());
  report(a, "carrier:310-260", 3, 300, 0);
  EXPECT_TRUE(a.hint("carrier:310-260", 0));
  EXPECT_FALSE(a.hint("carrier:310-26", 0));
  EXPECT_FALSE(a.hint("CARRIER:310-260", 0));
}

TEST(HeartbeatAdvisor, ReportsOlderThanTheTtlAreIgnored) {
  HeartbeatAdvisor a(options());
  report(a, "carrier:1", 3, 300, 0);
  EXPECT_TRUE(a.hint("carrier:1", 24 * kHourMs));
  EXPECT_FALSE(a.hint("carrier:1", 24 * kHourMs + 1));
  // A fresh report does not revive the stale ones.
  ASSERT_TRUE(a.record("carrier:1", "new", 240, 25 * kHourMs));
  EXPECT_FALSE(a.hint("carrier:1", 25 * kHourMs));
}

TEST(HeartbeatAdvisor, AFullNetworkReplacesItsOldestReport) {
  HeartbeatAdvisor a(options());  // 8 devices per network
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(a.record("n", "old" + std::to_string(i), 60, i));
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(a.record("n", "new" + std::to_string(i), 600, 100 + i));
  const auto hint = a.hint("n", 200);
  ASSERT_TRUE(hint);
  EXPECT_EQ(hint->reports, 8u);
  EXPECT_EQ(hint->start_s, 600u);  // every old report was replaced, oldest first
}

TEST(HeartbeatAdvisor, ForgetsTheLeastRecentlyReportedNetworkPastTheBound) {
  HeartbeatAdvisor a(options());  // 3 networks
  report(a, "a", 3, 300, 0);
  report(a, "b", 3, 300, 0);
  report(a, "c", 3, 300, 0);
  ASSERT_TRUE(a.record("a", "d0", 300, 1));  // a is recent again
  report(a, "d", 3, 300, 2);                 // evicts b
  EXPECT_EQ(a.networks(), 3u);
  EXPECT_TRUE(a.hint("a", 2));
  EXPECT_FALSE(a.hint("b", 2));
  EXPECT_TRUE(a.hint("c", 2));
  EXPECT_TRUE(a.hint("d", 2));
}

TEST(HeartbeatAdvisor, BadReportsChangeNothing) {
  HeartbeatAdvisor a(options());
  EXPECT_FALSE(a.record("", "d", 300, 0));
  EXPECT_FALSE(a.record(std::string(65, 'n'), "d", 300, 0));
  EXPECT_FALSE(a.record("wifi:\nforged", "d", 300, 0));
  EXPECT_FALSE(a.record(std::string("a\0b", 3), "d", 300, 0));
  EXPECT_FALSE(a.record("carrier:1", "d", 0, 0));
  EXPECT_EQ(a.networks(), 0u);
  EXPECT_TRUE(a.record(std::string(64, 'n'), "d", 300, 0));
  EXPECT_FALSE(a.hint("wifi:\nforged", 0));
}

}  // namespace
}  // namespace herald::access
