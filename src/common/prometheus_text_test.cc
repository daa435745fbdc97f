#include "common/prometheus_text.h"

#include <limits>
#include <string>

#include <gtest/gtest.h>

namespace herald::metrics {
namespace {

using namespace std::chrono_literals;

TEST(PrometheusText, WritesAFamilyWithItsHelpTypeAndSamples) {
  PrometheusText out;
  out.family("herald_requests_total", "counter", "Requests answered.");
  out.sample("herald_requests_total", std::uint64_t{3}, {{"api", "send"}, {"code", "200"}});
  out.sample("herald_requests_total", std::uint64_t{1}, {{"api", "send"}, {"code", "404"}});
  out.gauge("herald_connections", "Open sockets.", std::int64_t{-2});
  EXPECT_EQ(out.text(),
            "# HELP herald_requests_total Requests answered.\n"
            "# TYPE herald_requests_total counter\n"
            "herald_requests_total{api=\"send\",code=\"200\"} 3\n"
            "herald_requests_total{api=\"send\",code=\"404\"} 1\n"
            "# HELP herald_connections Open sockets.\n"
            "# TYPE herald_connections gauge\n"
            "herald_connections -2\n");
}

TEST(PrometheusText, EscapesLabelValuesAndHelpText) {
  PrometheusText out;
  out.family("x_total", "counter", "a \\ b\nc \"quoted\"");
  out.sample("x_total", std::uint64_t{1}, {{"app", "we\"ird\\app\nname"}});
  EXPECT_EQ(out.text(),
            "# HELP x_total a \\\\ b\\nc \"quoted\"\n"
            "# TYPE x_total counter\n"
            "x_total{app=\"we\\\"ird\\\\app\\nname\"} 1\n");
}

TEST(PrometheusText, WritesIntegersExactlyAndDoublesInTheirShortestForm) {
  PrometheusText out;
  out.sample("big", std::numeric_limits<std::uint64_t>::max());
  out.sample("share", 0.25);
  out.sample("third", 1.0 / 3.0);
  out.sample("up", std::numeric_limits<double>::infinity());
  out.sample("down", -std::numeric_limits<double>::infinity());
  out.sample("nan", std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(out.text(),
            "big 18446744073709551615\n"
            "share 0.25\n"
            "third 0.3333333333333333\n"
            "up +Inf\n"
            "down -Inf\n"
            "nan NaN\n");
}

TEST(LatencyHistogram, CountsEachObservationInTheFirstBucketThatHoldsIt) {
  LatencyHistogram h;
  h.observe(50us);   // <= 0.0001
  h.observe(100us);  // == 0.0001: bounds are inclusive
  h.observe(3ms);    // <= 0.005
  h.observe(20s);    // <= 60
  h.observe(48h);    // beyond every bound
  h.observe(-1ms);   // a clock step back counts as zero
  EXPECT_EQ(h.count(), 6u);
  PrometheusText out;
  out.family("lat_seconds", "histogram", "Latency.");
  h.write(out, "lat_seconds", {{"api", "send"}});
  const std::string& text = out.text();
  EXPECT_NE(text.find("lat_seconds_bucket{api=\"send\",le=\"0.0001\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("lat_seconds_bucket{api=\"send\",le=\"0.0025\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{api=\"send\",le=\"0.005\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{api=\"send\",le=\"10\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{api=\"send\",le=\"60\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{api=\"send\",le=\"86400\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{api=\"send\",le=\"+Inf\"} 6\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_sum{api=\"send\"} 172820.00315\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_count{api=\"send\"} 6\n"), std::string::npos);
}

TEST(LatencyHistogram, WritesEveryBucketInOrderOfItsBoundThenSumAndCount) {
  LatencyHistogram h;
  PrometheusText out;
  h.write(out, "empty_seconds");
  std::string expected;
  for (const char* le :
       {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
        "0.25", "0.5", "1", "10", "60", "600", "3600", "86400", "+Inf"}) {
    expected += std::string("empty_seconds_bucket{le=\"") + le + "\"} 0\n";
  }
  expected += "empty_seconds_sum 0\nempty_seconds_count 0\n";
  EXPECT_EQ(out.text(), expected);
}

}  // namespace
}  // namespace herald::metrics
