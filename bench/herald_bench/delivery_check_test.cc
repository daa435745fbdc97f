#include "delivery_check.h"

#include <gtest/gtest.h>

namespace herald::bench {
namespace {

Delivery at(std::int64_t subscriber, std::int64_t k, std::int64_t sent_ms, std::int64_t recv_ms) {
  return {.subscriber = subscriber,
          .k = k,
          .sent_ns = sent_ms * 1'000'000,
          .recv_ns = recv_ms * 1'000'000};
}

TEST(Payload, CarriesItsNumberAndSendTimeAtTheRequestedSize) {
  const auto p = make_payload(42, 123456789, 10);
  EXPECT_EQ(p, R"({"k":42,"t":123456789,"pad":"xxxxxxxxxx"})");
  std::int64_t k = 0;
  std::int64_t t = 0;
  ASSERT_TRUE(parse_payload(p, k, t));
  EXPECT_EQ(k, 42);
  EXPECT_EQ(t, 123456789);
  // Herald hands the data back as JSON text it may have re-serialised with spaces elsewhere.
  ASSERT_TRUE(parse_payload(R"({"pad":"x","t":7,"k":3})", k, t));
  EXPECT_EQ(k, 3);
  EXPECT_EQ(t, 7);
  EXPECT_FALSE(parse_payload(R"({"k":"3","t":7})", k, t));
  EXPECT_FALSE(parse_payload("hello", k, t));
}

TEST(DeliveryCheck, UnicastDeliveredOnceEachIsExactlyOnce) {
  DeliveryCheck check(DeliveryCheck::Mode::kUnicast, 3, 4);
  for (int k = 0; k < 4; ++k) check.expect(k, k % 3);
  for (int k = 0; k < 4; ++k) check.record(at(k % 3, k, 100, 100 + k));
  const auto r = check.result();
  EXPECT_TRUE(r.exactly_once());
  EXPECT_EQ(r.expected, 4);
  EXPECT_EQ(r.delivered, 4);
  EXPECT_EQ(r.verdict(), "exactly once: 4 of 4");
  ASSERT_EQ(r.latency_ms.size(), 4U);
  EXPECT_DOUBLE_EQ(r.latency_ms[3], 3.0);
  EXPECT_EQ(r.first_recv_ns, 100'000'000);
  EXPECT_EQ(r.last_recv_ns, 103'000'000);
}

TEST(DeliveryCheck, UnicastCountsLostDuplicatedAndMisrouted) {
  DeliveryCheck check(DeliveryCheck::Mode::kUnicast, 2, 5);
  for (int k = 0; k < 4; ++k) check.expect(k, k % 2);  // message 4 was refused: owed to nobody
  check.record(at(0, 0, 0, 1));
  check.record(at(0, 0, 0, 2));  // a second copy
  check.record(at(0, 1, 0, 1));  // message 1 was for subscriber 1
  check.record(at(0, 2, 0, 1));
  check.record(at(1, 4, 0, 1));  // never accepted
  check.record(at(1, 99, 0, 1));
  const auto r = check.result();
  EXPECT_FALSE(r.exactly_once());
  EXPECT_EQ(r.expected, 4);
  EXPECT_EQ(r.delivered, 2);
  EXPECT_EQ(r.lost, 2);  // 1 (went astray) and 3
  EXPECT_EQ(r.duplicated, 1);
  EXPECT_EQ(r.unexpected, 3);
  EXPECT_EQ(r.verdict(), "LOST 2, DUPLICATED 1, UNEXPECTED 3 (of 4)");
  EXPECT_EQ(r.latency_ms.size(), 2U);  // first deliveries only
}

TEST(DeliveryCheck, BroadcastOwesEveryMessageToEverySubscriber) {
  DeliveryCheck check(DeliveryCheck::Mode::kBroadcast, 3, 2);
  check.expect(0);
  check.expect(1);
  for (int s = 0; s < 3; ++s) check.record(at(s, 0, 0, 5));
  check.record(at(0, 1, 0, 9));
  check.record(at(2, 1, 0, 7));
  check.record(at(2, 1, 0, 8));
  const auto r = check.result();
  EXPECT_EQ(r.expected, 6);
  EXPECT_EQ(r.delivered, 5);
  EXPECT_EQ(r.lost, 1);  // subscriber 1 never got message 1
  EXPECT_EQ(r.duplicated, 1);
  EXPECT_EQ(r.unexpected, 0);
  EXPECT_EQ(r.last_recv_ns, 9'000'000);
}

TEST(Percentile, NearestRank) {
  std::vector<double> v{5, 1, 4, 2, 3};
  EXPECT_DOUBLE_EQ(percentile(v, 50), 3);
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 5);
  std::vector<double> none;
  EXPECT_DOUBLE_EQ(percentile(none, 99), 0);
}

}  // namespace
}  // namespace herald::bench
