#include "http/endpoint_list.h"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "common/run_to_completion.h"
#include "http/endpoint_api.h"

namespace herald::http {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr std::int64_t kNowMs = 1'700'000'000'000;

EndpointList two_nodes(const EndpointSigner& signer) {
  return {{{"10.0.0.1", 7700, "a", 100}, {"10.0.0.2", 7700, "b b", 900}},
          kNowMs,
          kNowMs + 600'000,
          signer.key_id()};
}

TEST(EndpointList, CanonicalBytesAreTheDocumentedLines) {
  const EndpointList list{{{"10.0.0.1", 7700, "a", 100}, {"fd00::2", 443, "node b", 900}},
                          1700000000000,
                          1700000600000,
                          "0123456789abcdef"};
  EXPECT_EQ(canonical_bytes(list),
            "herald-endpoints-v1\n"
            "issued_at_ms=1700000000000\n"
            "expires_at_ms=1700000600000\n"
            "key_id=0123456789abcdef\n"
            "10.0.0.1 7700 100 a\n"
            "fd00::2 443 900 node b\n");
}

TEST(EndpointList, LoadIsTheLargerOfConnectionShareAndCpuInThousandths) {
  EXPECT_EQ(load_permille(0, 100, 0.0), 0u);
  EXPECT_EQ(load_permille(25, 100, 0.1), 250u);
  EXPECT_EQ(load_permille(25, 100, 0.5), 500u);
  EXPECT_EQ(load_permille(300, 100, 0.0), kFullLoad);
  EXPECT_EQ(load_permille(0, 0, 0.0), kFullLoad);
}

TEST(EndpointList, SortsLeastLoadedFirstAndBreaksTiesByNode) {
  std::vector<Endpoint> endpoints{
      {"10.0.0.3", 1, "c", 500}, {"10.0.0.2", 1, "b", 10}, {"10.0.0.1", 1, "a", 10}};
  sort_by_load(endpoints);
  EXPECT_EQ(endpoints[0].node, "a");
  EXPECT_EQ(endpoints[1].node, "b");
  EXPECT_EQ(endpoints[2].node, "c");
}

TEST(EndpointList, ASignedListVerifiesWithThePublicKey) {
  const auto signer = EndpointSigner::generate();
  const json::value served = signed_list_json(two_nodes(signer), signer);
  const auto verified = verify_signed_list(served, signer.public_key_base64(), kNowMs);
  ASSERT_TRUE(verified.has_value());
  EXPECT_EQ(canonical_bytes(*verified), canonical_bytes(two_nodes(signer)));
}

TEST(EndpointList, ATamperedListFailsVerification) {
  const auto signer = EndpointSigner::generate();
  const json::object served = signed_list_json(two_nodes(signer), signer);
  const auto tampered = [&](auto change) {
    json::value copy = served;
    change(copy.as_object());
    return verify_signed_list(copy, signer.public_key_base64(), kNowMs);
  };
  EXPECT_FALSE(tampered(
      [](json::object& o) { o["endpoints"].as_array()[0].as_object()["host"] = "6.6.6.6"; }));
  EXPECT_FALSE(
      tampered([](json::object& o) { o["endpoints"].as_array()[1].as_object()["load"] = 0; }));
  EXPECT_FALSE(tampered([](json::object& o) {
    auto& a = o["endpoints"].as_array();
    std::swap(a[0], a[1]);
  }));
  EXPECT_FALSE(tampered([](json::object& o) { o["endpoints"].as_array().pop_back(); }));
  EXPECT_FALSE(tampered([](json::object& o) { o["expires_at_ms"] = kNowMs + 86'400'000; }));
  EXPECT_FALSE(tampered([](json::object& o) { o["signature"] = "AAAA"; }));
  EXPECT_TRUE(tampered([](json::object&) {}));
}

TEST(EndpointList, AnotherKeyOrAnExpiredListFailsVerification) {
  const auto signer = EndpointSigner::generate();
  const json::value served = signed_list_json(two_nodes(signer), signer);
  EXPECT_FALSE(verify_signed_list(served, EndpointSigner::generate().public_key_base64(), kNowMs));
  EXPECT_FALSE(verify_signed_list(served, signer.public_key_base64(), kNowMs + 600'000));
}

TEST(EndpointList, AHeartbeatHintIsSignedAndVerified) {
  const auto signer = EndpointSigner::generate();
  EndpointList list = two_nodes(signer);
  list.heartbeat = HeartbeatHint{"carrier x", 240, 17};
  const json::value served = signed_list_json(list, signer);
  EXPECT_EQ(json::serialize(served.at("heartbeat")),
            R"({"network":"carrier x","start_s":240,"reports":17})");
  const auto verified = verify_signed_list(served, signer.public_key_base64(), kNowMs);
  ASSERT_TRUE(verified.has_value());
  ASSERT_TRUE(verified->heartbeat.has_value());
  EXPECT_EQ(verified->heartbeat->network, "carrier x");
  EXPECT_EQ(verified->heartbeat->start_s, 240u);
  EXPECT_EQ(verified->heartbeat->reports, 17u);
  EXPECT_EQ(canonical_bytes(*verified), canonical_bytes(list));
}

TEST(EndpointList, ATamperedAddedOrRemovedHeartbeatHintFailsVerification) {
  const auto signer = EndpointSigner::generate();
  EndpointList list = two_nodes(signer);
  list.heartbeat = HeartbeatHint{"wifi", 240, 17};
  const json::object served = signed_list_json(list, signer);
  const auto check = [&](auto change) {
    json::value copy = served;
    change(copy.as_object());
    return check_signed_list(copy, signer.public_key_base64(), kNowMs);
  };
  EXPECT_TRUE(check([](json::object&) {}));
  EXPECT_EQ(check([](json::object& o) { o["heartbeat"].as_object()["start_s"] = 600; }).error(),
            EndpointListError::kBadSignature);
  EXPECT_EQ(check([](json::object& o) { o["heartbeat"].as_object()["reports"] = 1000; }).error(),
            EndpointListError::kBadSignature);
  EXPECT_EQ(check([](json::object& o) { o["heartbeat"].as_object()["network"] = "lte"; }).error(),
            EndpointListError::kBadSignature);
  EXPECT_EQ(check([](json::object& o) { o.erase("heartbeat"); }).error(),
            EndpointListError::kBadSignature);
  // A hint added to a list signed without one.
  json::value plain = signed_list_json(two_nodes(signer), signer);
  plain.as_object()["heartbeat"] =
      json::object{{"network", "wifi"}, {"start_s", 60}, {"reports", 1}};
  EXPECT_EQ(check_signed_list(plain, signer.public_key_base64(), kNowMs).error(),
            EndpointListError::kBadSignature);
}

TEST(EndpointList, AMalformedHintMakesEvenAGenuinelySignedListInvalid) {
  const auto signer = EndpointSigner::generate();
  EndpointList list = two_nodes(signer);
  list.heartbeat = HeartbeatHint{"wifi\n10.6.6.6 1 0 evil", 60, 1};
  const json::value served = signed_list_json(list, signer);
  const auto checked = check_signed_list(served, signer.public_key_base64(), kNowMs);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error(), EndpointListError::kMalformed);
}

TEST(EndpointList, VerificationNamesWhyAListWasRefused) {
  const auto signer = EndpointSigner::generate();
  const json::value served = signed_list_json(two_nodes(signer), signer);
  EXPECT_EQ(
      check_signed_list(served, EndpointSigner::generate().public_key_base64(), kNowMs).error(),
      EndpointListError::kUnknownKey);
  EXPECT_EQ(check_signed_list(served, signer.public_key_base64(), kNowMs + 600'000).error(),
            EndpointListError::kExpired);
}

TEST(EndpointList, AKeySurvivesAPemRoundTrip) {
  const auto signer = EndpointSigner::generate();
  const auto again = EndpointSigner::from_pem(signer.private_key_pem());
  EXPECT_EQ(again.public_key(), signer.public_key());
  EXPECT_EQ(again.key_id(), signer.key_id());
  EXPECT_EQ(signer.public_key().size(), 32u);
  EXPECT_THROW((void)EndpointSigner::from_pem("not a key"), std::runtime_error);
}

TEST(EndpointList, NodeNamesWithControlCharactersAreRefused) {
  EXPECT_TRUE(valid_node_name("node b"));
  EXPECT_FALSE(valid_node_name("a\n10.0.0.9 1 0 evil"));
  EXPECT_FALSE(valid_node_name(""));
}

TEST(NodeLoad, RoundTripsThroughJson) {
  const NodeLoad load{"a", {{"10.0.0.1", 7700}, {"fd00::1", 7701}}, 5, 10, 0.25, false, kNowMs};
  const auto back = node_load_from_json(to_json(load));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->node, "a");
  ASSERT_EQ(back->endpoints.size(), 2u);
  EXPECT_EQ(back->endpoints[1].host, "fd00::1");
  EXPECT_EQ(back->endpoints[1].port, 7701);
  EXPECT_EQ(back->connections, 5);
  EXPECT_DOUBLE_EQ(back->cpu, 0.25);
  EXPECT_FALSE(node_load_from_json(json::parse(R"({"node": "a"})")));
}

TEST(EndpointDirectory, ListsFreshPeersByLoadAndDropsStaleOnes) {
  EndpointDirectory directory(
      [] {
        return NodeLoad{"self", {{"10.0.0.1", 7700}}, 80, 100, 0.0, false, kNowMs};
      },
      3s);
  const auto t0 = EndpointDirectory::SteadyClock::now();
  directory.peer_answered("10.0.0.2:7780",
                          {"peer", {{"10.0.0.2", 7700}}, 10, 100, 0.0, false, kNowMs}, t0);
  directory.peer_answered("10.0.0.3:7780",
                          {"gone", {{"10.0.0.3", 7700}}, 20, 100, 0.0, true, kNowMs}, t0);
  auto listed = directory.endpoints(t0 + 1s);
  ASSERT_EQ(listed.size(), 2u);  // the draining node is left out
  EXPECT_EQ(listed[0].node, "peer");
  EXPECT_EQ(listed[0].load, 100u);
  EXPECT_EQ(listed[1].node, "self");
  listed = directory.endpoints(t0 + 4s);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].node, "self");
}

TEST(EndpointApi, ServesASignedListAndTheNodeLoadWithoutCredentials) {
  EndpointDirectory directory(
      [] {
        return NodeLoad{"self", {{"10.0.0.1", 7700}}, 1, 4, 0.0, false, kNowMs};
      },
      3s);
  const auto signer = EndpointSigner::generate();
  EndpointApi api({directory, signer, 600s, [] { return kNowMs; }});
  boost::asio::io_context io;
  auto call = [&](bhttp::verb verb, const char* target) {
    return run_to_completion(io, api.handle(Request{verb, target, 11}));
  };
  const auto list = call(bhttp::verb::get, "/v1/endpoints");
  ASSERT_EQ(list.result(), bhttp::status::ok);
  const auto verified =
      verify_signed_list(json::parse(list.body()), signer.public_key_base64(), kNowMs);
  ASSERT_TRUE(verified.has_value());
  EXPECT_EQ(verified->expires_at_ms, kNowMs + 600'000);
  ASSERT_EQ(verified->endpoints.size(), 1u);
  EXPECT_EQ(verified->endpoints[0].load, 250u);

  const auto load = call(bhttp::verb::get, "/v1/node/load");
  ASSERT_EQ(load.result(), bhttp::status::ok);
  EXPECT_EQ(json::parse(load.body()).at("node"), "self");
  EXPECT_EQ(call(bhttp::verb::post, "/v1/endpoints").result(), bhttp::status::method_not_allowed);
}

}  // namespace
}  // namespace herald::http
