// The exactly-once check of a herald-bench run: what the coordinator sent (and the system
// accepted) against what every subscriber handed to its application, wherever it ran.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herald::bench {

// One message handed to a subscriber's application: message `k`, sent (just before the API call
// or the publish) at `sent_ns` and received at `recv_ns`, both steady_clock nanoseconds, which
// on Linux is CLOCK_MONOTONIC and so comparable across the processes of one host.
struct Delivery {
  std::int64_t subscriber = 0;
  std::int64_t k = 0;
  std::int64_t sent_ns = 0;
  std::int64_t recv_ns = 0;
};

// steady_clock now, in nanoseconds: the clock of every timestamp in a Delivery.
std::int64_t now_ns();

// Every message of a run carries its number and send time in the same JSON text, padded to the
// run's payload size: {"k":12,"t":3456789,"pad":"xxxx"}.
std::string make_payload(std::int64_t k, std::int64_t sent_ns, int pad_bytes);
// Reads k and t back; false when `payload` is not such a text.
bool parse_payload(std::string_view payload, std::int64_t& k, std::int64_t& sent_ns);

class DeliveryCheck {
 public:
  enum class Mode {
    kUnicast,    // message k goes to one subscriber
    kBroadcast,  // message k goes to every subscriber
  };
  // Messages are numbered 0..messages-1.
  DeliveryCheck(Mode mode, int subscribers, std::int64_t messages);

  // The system accepted message k: for kUnicast, for `subscriber`; for kBroadcast, for all.
  void expect(std::int64_t k, int subscriber = -1);
  void record(const Delivery& d);

  struct Result {
    std::int64_t expected = 0;       // deliveries owed: accepted messages times their recipients
    std::int64_t delivered = 0;      // of those, delivered at least once
    std::int64_t lost = 0;           // owed and never delivered
    std::int64_t duplicated = 0;     // deliveries after the first of the same message to the same
                                     // subscriber
    std::int64_t unexpected = 0;     // delivered, never accepted, or to a subscriber it was not for
    std::vector<double> latency_ms;  // of each first delivery
    std::int64_t first_recv_ns = 0;  // earliest and latest delivery (0 when none)
    std::int64_t last_recv_ns = 0;
    [[nodiscard]] bool exactly_once() const {
      return lost == 0 && duplicated == 0 && unexpected == 0;
    }
    // "exactly once: 1000 of 1000" or "LOST 3, DUPLICATED 1 (of 1000)".
    [[nodiscard]] std::string verdict() const;
  };
  [[nodiscard]] Result result() const;

 private:
  [[nodiscard]] std::size_t slot(std::int64_t k, std::int64_t subscriber) const;

  Mode mode_;
  int subscribers_;
  std::int64_t messages_;
  std::vector<std::int32_t> target_;  // kUnicast: message k's subscriber; -1 = not accepted
  std::vector<bool> accepted_;        // kBroadcast: message k accepted
  std::vector<std::uint8_t> count_;   // deliveries per (message, recipient), saturating
  std::int64_t unexpected_ = 0;
  std::vector<double> latency_ms_;
  std::int64_t first_recv_ns_ = 0;
  std::int64_t last_recv_ns_ = 0;
};

// The p-th percentile (0..100) of `v`, nearest rank; 0 when empty. Reorders `v`.
double percentile(std::vector<double>& v, double p);

}  // namespace herald::bench
