// GET /v1/endpoints?network=: the heartbeat hint in the signed list (docs/endpoints.md).
#include "http/endpoint_api.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "common/run_to_completion.h"

namespace herald::http {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr std::int64_t kNowMs = 1'700'000'000'000;

class EndpointApiHint : public ::testing::Test {
 protected:
  EndpointApiHint()
      : directory_(
            [] {
              return NodeLoad{"self", {{"10.0.0.1", 7700}}, 1, 4, 0.0, false, kNowMs};
            },
            3s),
        signer_(EndpointSigner::generate()),
        api_({directory_, signer_, 600s, [] { return kNowMs; },
              [this](const std::string& network) -> std::optional<HeartbeatHint> {
                asked_.push_back(network);
                if (network != "carrier:310-260") return std::nullopt;
                return HeartbeatHint{network, 240, 17};
              }}) {}

  Response get(const std::string& target) {
    return run_to_completion(io_, api_.handle(Request{bhttp::verb::get, target, 11}));
  }
  std::optional<EndpointList> verified(const Response& response) {
    return verify_signed_list(json::parse(response.body()), signer_.public_key_base64(), kNowMs);
  }

  boost::asio::io_context io_;
  EndpointDirectory directory_;
  EndpointSigner signer_;
  std::vector<std::string> asked_;
  EndpointApi api_;
};

TEST_F(EndpointApiHint, AKnownNetworkGetsItsHintSignedWithTheList) {
  const auto response = get("/v1/endpoints?network=carrier%3A310-260");
  ASSERT_EQ(response.result(), bhttp::status::ok);
  const auto list = verified(response);
  ASSERT_TRUE(list);
  ASSERT_TRUE(list->heartbeat);
  EXPECT_EQ(list->heartbeat->network, "carrier:310-260");
  EXPECT_EQ(list->heartbeat->start_s, 240u);
  EXPECT_EQ(list->heartbeat->reports, 17u);
  EXPECT_EQ(asked_, std::vector<std::string>{"carrier:310-260"});  // percent-decoded
}

TEST_F(EndpointApiHint, AnUnknownNetworkOrNoneGetsAListWithoutHint) {
  for (const char* target :
       {"/v1/endpoints?network=wifi%3Aother", "/v1/endpoints", "/v1/endpoints?network="}) {
    const auto response = get(target);
    ASSERT_EQ(response.result(), bhttp::status::ok) << target;
    const auto list = verified(response);
    ASSERT_TRUE(list) << target;
    EXPECT_FALSE(list->heartbeat) << target;
    EXPECT_FALSE(json::parse(response.body()).as_object().contains("heartbeat")) << target;
  }
  EXPECT_EQ(asked_, std::vector<std::string>{"wifi:other"});  // empty is "not said"
}

TEST_F(EndpointApiHint, AnInvalidNetworkIsABadRequestAndAsksNothing) {
  const std::vector<std::string> targets = {"/v1/endpoints?network=a%0Ab",
                                            "/v1/endpoints?network=%7F",
                                            "/v1/endpoints?network=" + std::string(65, 'n')};
  for (const auto& target : targets) {
    const auto response = get(target);
    EXPECT_EQ(response.result(), bhttp::status::bad_request) << target;
    const auto body = json::parse(response.body());
    EXPECT_EQ(body.at("error").at("code"), "bad_request") << target;
  }
  EXPECT_TRUE(asked_.empty());
  EXPECT_EQ(get("/v1/endpoints?network=" + std::string(64, 'n')).result(), bhttp::status::ok);
}

TEST(EndpointApi, WithoutAHintSourceNoListCarriesAHint) {
  EndpointDirectory directory(
      [] {
        return NodeLoad{"self", {{"10.0.0.1", 7700}}, 1, 4, 0.0, false, kNowMs};
      },
      3s);
  const auto signer = EndpointSigner::generate();
  EndpointApi api({directory, signer, 600s, [] { return kNowMs; }});
  boost::asio::io_context io;
  const auto response = run_to_completion(
      io, api.handle(Request{bhttp::verb::get, "/v1/endpoints?network=carrier%3A1", 11}));
  ASSERT_EQ(response.result(), bhttp::status::ok);
  const auto list =
      verify_signed_list(json::parse(response.body()), signer.public_key_base64(), kNowMs);
  ASSERT_TRUE(list);
  EXPECT_FALSE(list->heartbeat);
}

}  // namespace
}  // namespace herald::http
