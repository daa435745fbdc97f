#include "server/metrics.h"

#include <string>

#include <gtest/gtest.h>
#include <boost/beast/http/verb.hpp>

namespace herald::server {
namespace {

using namespace std::chrono_literals;
namespace bhttp = boost::beast::http;

TEST(HttpMetrics, CountsRequestsByApiAndStatusAndTimesThem) {
  HttpMetrics metrics;
  metrics.record(HttpApi::kSender, 200, 2ms);
  metrics.record(HttpApi::kSender, 200, 3ms);
  metrics.record(HttpApi::kSender, 429, 1ms);
  metrics.record(HttpApi::kAdmin, 401, 1ms);
  metrics.record(HttpApi::kEndpoints, 1000, 1ms);  // not a status: counted as 599
  EXPECT_EQ(metrics.requests(HttpApi::kSender, 200), 2u);
  EXPECT_EQ(metrics.requests(HttpApi::kSender, 429), 1u);
  EXPECT_EQ(metrics.requests(HttpApi::kAdmin, 200), 0u);
  EXPECT_EQ(metrics.requests(HttpApi::kEndpoints, 599), 1u);

  metrics::PrometheusText out;
  metrics.write(out);
  const std::string& text = out.text();
  EXPECT_NE(text.find("herald_http_requests_total{api=\"sender\",code=\"200\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("herald_http_requests_total{api=\"sender\",code=\"429\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("herald_http_requests_total{api=\"admin\",code=\"401\"} 1\n"),
            std::string::npos);
  // Codes never answered are left out, not written as zeros.
  EXPECT_EQ(text.find("code=\"500\""), std::string::npos);
  EXPECT_NE(text.find("herald_http_request_duration_seconds_count{api=\"sender\"} 3\n"),
            std::string::npos);
  EXPECT_NE(
      text.find("herald_http_request_duration_seconds_bucket{api=\"sender\",le=\"0.0025\"} 2\n"),
      std::string::npos);
  EXPECT_NE(text.find("herald_http_request_duration_seconds_count{api=\"operations\"} 0\n"),
            std::string::npos);
}

TEST(OperationsRoutes, AreTheMetricsAndReadinessPathsOnly) {
  const auto request = [](std::string target) {
    return http::Request{bhttp::verb::get, target, 11};
  };
  EXPECT_TRUE(is_operations_request(request("/metrics")));
  EXPECT_TRUE(is_operations_request(request("/readyz")));
  EXPECT_TRUE(is_operations_request(request("/metrics?name[]=x")));
  EXPECT_FALSE(is_operations_request(request("/metrics/")));
  EXPECT_FALSE(is_operations_request(request("/healthz")));
  EXPECT_FALSE(is_operations_request(request("/v1/admin/metrics")));
}

}  // namespace
}  // namespace herald::server
