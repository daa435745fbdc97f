#include "delivery_check.h"

#include <algorithm>
#include <charconv>
#include <limits>

namespace herald::bench {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string make_payload(std::int64_t k, std::int64_t sent_ns, int pad_bytes) {
  return "{\"k\":" + std::to_string(k) + ",\"t\":" + std::to_string(sent_ns) + ",\"pad\":\"" +
         std::string(static_cast<std::size_t>(std::max(pad_bytes, 0)), 'x') + "\"}";
}

namespace {

// The integer after `key` (`"name":`) in `text`; false when absent or not a number. Called for
// every delivery a worker records: no allocation.
bool field(std::string_view text, std::string_view key, std::int64_t& out) {
  const auto at = text.find(key);
  if (at == std::string_view::npos) return false;
  const char* first = text.data() + at + key.size();
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(first, last, out);
  return ec == std::errc{} && end != first;
}

}  // namespace

bool parse_payload(std::string_view payload, std::int64_t& k, std::int64_t& sent_ns) {
  return field(payload, R"("k":)", k) && field(payload, R"("t":)", sent_ns);
}

DeliveryCheck::DeliveryCheck(Mode mode, int subscribers, std::int64_t messages)
    : mode_(mode), subscribers_(subscribers), messages_(messages) {
  const auto n = static_cast<std::size_t>(messages);
  if (mode_ == Mode::kUnicast) {
    target_.assign(n, -1);
    count_.assign(n, 0);
  } else {
    accepted_.assign(n, false);
    count_.assign(n * static_cast<std::size_t>(subscribers), 0);
  }
}

std::size_t DeliveryCheck::slot(std::int64_t k, std::int64_t subscriber) const {
  if (mode_ == Mode::kUnicast) return static_cast<std::size_t>(k);
  return static_cast<std::size_t>(k) * static_cast<std::size_t>(subscribers_) +
         static_cast<std::size_t>(subscriber);
}

void DeliveryCheck::expect(std::int64_t k, int subscriber) {
  if (k < 0 || k >= messages_) return;
  if (mode_ == Mode::kUnicast) {
    target_[static_cast<std::size_t>(k)] = subscriber;
  } else {
    accepted_[static_cast<std::size_t>(k)] = true;
  }
}

void DeliveryCheck::record(const Delivery& d) {
  const bool known =
      d.k >= 0 && d.k < messages_ && d.subscriber >= 0 && d.subscriber < subscribers_ &&
      (mode_ == Mode::kUnicast ? target_[static_cast<std::size_t>(d.k)] == d.subscriber
                               : accepted_[static_cast<std::size_t>(d.k)]);
  if (!known) {
    ++unexpected_;
    return;
  }
  auto& n = count_[slot(d.k, d.subscriber)];
  if (n == 0) latency_ms_.push_back(static_cast<double>(d.recv_ns - d.sent_ns) / 1e6);
  if (n < std::numeric_limits<std::uint8_t>::max()) ++n;
  if (first_recv_ns_ == 0 || d.recv_ns < first_recv_ns_) first_recv_ns_ = d.recv_ns;
  last_recv_ns_ = std::max(last_recv_ns_, d.recv_ns);
}

DeliveryCheck::Result DeliveryCheck::result() const {
  Result r;
  const auto tally = [&r](std::uint8_t n) {
    ++r.expected;
    if (n == 0) {
      ++r.lost;
    } else {
      ++r.delivered;
      r.duplicated += n - 1;
    }
  };
  for (std::int64_t k = 0; k < messages_; ++k) {
    if (mode_ == Mode::kUnicast) {
      if (target_[static_cast<std::size_t>(k)] >= 0) tally(count_[slot(k, 0)]);
      continue;
    }
    if (!accepted_[static_cast<std::size_t>(k)]) continue;
    for (int s = 0; s < subscribers_; ++s) tally(count_[slot(k, s)]);
  }
  r.unexpected = unexpected_;
  r.latency_ms = latency_ms_;
  r.first_recv_ns = first_recv_ns_;
  r.last_recv_ns = last_recv_ns_;
  return r;
}

std::string DeliveryCheck::Result::verdict() const {
  if (exactly_once()) {
    return "exactly once: " + std::to_string(delivered) + " of " + std::to_string(expected);
  }
  std::string out;
  const auto add = [&out](std::string_view what, std::int64_t n) {
    if (n == 0) return;
    if (!out.empty()) out += ", ";
    out += std::string(what) + " " + std::to_string(n);
  };
  add("LOST", lost);
  add("DUPLICATED", duplicated);
  add("UNEXPECTED", unexpected);
  return out + " (of " + std::to_string(expected) + ")";
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rank), v.end());
  return v[rank];
}

}  // namespace herald::bench
