#include "delivery_checker.h"

#include <algorithm>
#include <sstream>
#include <tuple>
#include <utility>

#include <boost/json.hpp>

namespace herald::testing {

namespace {

// Acknowledged over unknown over refused: a careful sender's retries are one send.
int strength(SendOutcome o) {
  switch (o) {
    case SendOutcome::kAcknowledged:
      return 2;
    case SendOutcome::kUnknown:
      return 1;
    case SendOutcome::kRefused:
      break;
  }
  return 0;
}

std::string position(std::uint64_t stream, std::uint64_t epoch, std::uint64_t seq) {
  return "stream " + std::to_string(stream) + " " + std::to_string(epoch) + ":" +
         std::to_string(seq);
}

std::string describe(const DeliveryRecord& d) {
  return "key " + d.key + " on " + d.device + " at " + position(d.stream, d.epoch, d.seq);
}

// True when `gap` skipped position `p` of its stream.
bool covers(const GapRecord& gap, const StreamPosition& p) {
  if (gap.stream != p.stream) return false;
  if (p.epoch == gap.from_epoch && p.seq > gap.from_seq) {
    return gap.epoch != gap.from_epoch || p.seq <= gap.resume_after_seq;
  }
  return p.epoch == gap.epoch && p.epoch != gap.from_epoch && p.seq <= gap.resume_after_seq;
}

}  // namespace

const char* to_string(SendOutcome outcome) {
  switch (outcome) {
    case SendOutcome::kAcknowledged:
      return "acknowledged";
    case SendOutcome::kRefused:
      return "refused";
    case SendOutcome::kUnknown:
      break;
  }
  return "unknown";
}

SendRecord send_record(std::string key, std::vector<std::string> devices,
                       const PushOutcome& answer) {
  SendRecord s{std::move(key), std::move(devices), SendOutcome::kUnknown, {}};
  if (answer.status == 200 || answer.status == 202) {
    s.outcome = SendOutcome::kAcknowledged;
  } else if (answer.status >= 400 && answer.status < 500) {
    s.outcome = SendOutcome::kRefused;
  }
  if (s.outcome != SendOutcome::kAcknowledged || !answer.body.is_object()) return s;
  const auto* targets = answer.body.as_object().if_contains("targets");
  if (targets == nullptr || !targets->is_array() ||
      targets->as_array().size() != s.devices.size()) {
    return s;
  }
  for (const auto& t : targets->as_array()) {
    const auto* epoch = t.is_object() ? t.as_object().if_contains("epoch") : nullptr;
    const auto* seq = t.is_object() ? t.as_object().if_contains("seq") : nullptr;
    if (epoch == nullptr || seq == nullptr || !epoch->is_int64() || !seq->is_int64()) {
      s.positions.clear();  // a scheduled or dropped target: no position for any
      return s;
    }
    s.positions.push_back({0, static_cast<std::uint64_t>(epoch->as_int64()),
                           static_cast<std::uint64_t>(seq->as_int64())});
  }
  return s;
}

std::string payload_key(const Message& m) {
  if (m.binary) return "";
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(m.data, ec);
  if (ec || !v.is_object()) return "";
  const auto* k = v.as_object().if_contains("k");
  return k != nullptr && k->is_string() ? std::string(k->as_string()) : "";
}

void DeliveryReport::Finding::add(std::string example) {
  ++count;
  if (examples.size() < kMaxExamples) examples.push_back(std::move(example));
}

std::size_t DeliveryReport::violations() const {
  return lost.count + unexpected.count + duplicated.count + seq_reused.count + out_of_order.count +
         unannounced_gaps.count;
}

std::string DeliveryReport::summary() const {
  std::ostringstream out;
  out << "sends: " << acknowledged << " acknowledged, " << refused << " refused, " << unknown
      << " unknown; deliveries: " << deliveries << " (" << owed << " owed); gaps told: " << gaps
      << "\n";
  const std::pair<const char*, const Finding*> findings[] = {
      {"lost", &lost},
      {"unexpected", &unexpected},
      {"duplicated", &duplicated},
      {"seq reused within an epoch", &seq_reused},
      {"out of order", &out_of_order},
      {"unannounced gaps", &unannounced_gaps},
      {"lost inside an announced gap (allowed)", &lost_in_announced_gap},
      {"unknown outcome, arrived (not counted)", &unknown_arrived},
      {"unknown outcome, never arrived (not counted)", &unknown_not_arrived},
  };
  for (const auto& [name, finding] : findings) {
    out << "  " << name << ": " << finding->count << "\n";
    for (const auto& e : finding->examples) out << "    e.g. " << e << "\n";
  }
  out << (ok() ? "OK: no violation" : "VIOLATIONS: " + std::to_string(violations())) << "\n";
  return out.str();
}

void DeliveryChecker::record_send(SendRecord send) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = sends_.try_emplace(send.key, send);
  if (!inserted && strength(send.outcome) > strength(it->second.outcome)) {
    it->second = std::move(send);
  }
}

void DeliveryChecker::record_delivery(DeliveryRecord delivery) {
  std::lock_guard lock(mu_);
  ++delivery_count_;
  delivered_.emplace(delivery.device, delivery.key);
  auto& events = events_[delivery.device];
  events.push_back({std::move(delivery), std::nullopt});
  delivered_cv_.notify_all();
}

bool DeliveryChecker::wait_for(const std::string& device, const std::string& key,
                               std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return delivered_cv_.wait_for(lock, timeout, [&] { return delivered_.contains({device, key}); });
}

void DeliveryChecker::record_gap(GapRecord gap) {
  std::lock_guard lock(mu_);
  auto& events = events_[gap.device];
  events.push_back({std::nullopt, std::move(gap)});
}

Client::MessageHandler DeliveryChecker::message_handler(
    std::string device, std::function<std::string(const Message&)> key_of) {
  return [this, device = std::move(device), key_of = std::move(key_of)](const Message& m) {
    record_delivery({device, m.app, m.stream, m.epoch, m.seq, m.id, key_of(m)});
  };
}

Client::GapHandler DeliveryChecker::gap_handler(std::string device) {
  return [this, device = std::move(device)](const Gap& g) {
    record_gap({device, g.stream, g.from_epoch, g.from_seq, g.epoch, g.resume_after_seq});
  };
}

std::size_t DeliveryChecker::deliveries(const std::string& device) const {
  std::lock_guard lock(mu_);
  auto it = events_.find(device);
  if (it == events_.end()) return 0;
  return static_cast<std::size_t>(std::count_if(it->second.begin(), it->second.end(),
                                                [](const Event& e) { return e.delivery; }));
}

std::size_t DeliveryChecker::deliveries() const {
  std::lock_guard lock(mu_);
  return delivery_count_;
}

DeliveryReport DeliveryChecker::check() const {
  std::lock_guard lock(mu_);
  DeliveryReport r;
  r.deliveries = delivery_count_;
  for (const auto& [key, send] : sends_) {
    switch (send.outcome) {
      case SendOutcome::kAcknowledged:
        ++r.acknowledged;
        r.owed += send.devices.size();
        break;
      case SendOutcome::kRefused:
        ++r.refused;
        break;
      case SendOutcome::kUnknown:
        ++r.unknown;
        break;
    }
  }

  // How often each device got each key; what each position held.
  std::map<std::pair<std::string, std::string>, std::size_t> times;  // (device, key)
  using Position = std::tuple<std::string, std::uint64_t, std::uint64_t, std::uint64_t>;
  std::map<Position, std::string> held;  // (device, stream, epoch, seq) -> key
  std::map<std::string, std::vector<GapRecord>> gaps_of;

  for (const auto& [device, events] : events_) {
    // Per stream: where the device's app is, and whether that is known yet.
    struct Walk {
      bool started = false;
      std::uint64_t epoch = 0;
      std::uint64_t seq = 0;
    };
    std::map<std::uint64_t, Walk> walks;
    for (const Event& event : events) {
      if (event.gap) {
        const GapRecord& g = *event.gap;
        ++r.gaps;
        gaps_of[device].push_back(g);
        walks[g.stream] = {true, g.epoch, g.resume_after_seq};
        continue;
      }
      const DeliveryRecord& d = *event.delivery;

      // Sent to this device, and not only refused?
      auto sent = sends_.find(d.key);
      if (sent == sends_.end()) {
        r.unexpected.add(describe(d) + ": never sent");
      } else if (std::find(sent->second.devices.begin(), sent->second.devices.end(), device) ==
                 sent->second.devices.end()) {
        r.unexpected.add(describe(d) + ": sent to other devices");
      } else if (sent->second.outcome == SendOutcome::kRefused) {
        r.unexpected.add(describe(d) + ": its send was refused");
      }
      if (++times[{device, d.key}] > 1) r.duplicated.add(describe(d));

      auto [slot, fresh] = held.try_emplace(Position{device, d.stream, d.epoch, d.seq}, d.key);
      if (!fresh && slot->second != d.key) {
        r.seq_reused.add(describe(d) + ", where key " + slot->second + " was delivered before");
      }

      // The walk: each seq the one after the last, within an epoch, unless a gap was told.
      Walk& w = walks[d.stream];
      if (!w.started) {
        // The inbox starts at its beginning; another stream wherever the device joined it.
        w.started = true;
        w.epoch = d.epoch;
        w.seq = d.stream == 0 || d.seq == 0 ? 0 : d.seq - 1;
      }
      if (d.epoch != w.epoch) {
        r.unannounced_gaps.add(describe(d) + ": epoch " + std::to_string(w.epoch) + " at seq " +
                               std::to_string(w.seq) + " before, no gap told");
        w.epoch = d.epoch;
        w.seq = d.seq;
      } else if (d.seq == w.seq + 1) {
        w.seq = d.seq;
      } else if (d.seq > w.seq + 1) {
        r.unannounced_gaps.add(describe(d) + ": seq " + std::to_string(w.seq) +
                               " before, no gap told");
        w.seq = d.seq;
      } else if (fresh) {
        // At or below the last one, at a position never delivered: not a repeat, a reordering.
        r.out_of_order.add(describe(d) + ": seq " + std::to_string(w.seq) + " before");
      }
    }
  }

  // What each target of each send got.
  for (const auto& [key, send] : sends_) {
    for (std::size_t i = 0; i < send.devices.size(); ++i) {
      const std::string& device = send.devices[i];
      const auto got = times.find({device, key});
      const bool arrived = got != times.end() && got->second > 0;
      const std::string where = "key " + key + " for " + device;
      if (send.outcome == SendOutcome::kUnknown) {
        (arrived ? r.unknown_arrived : r.unknown_not_arrived).add(where);
        continue;
      }
      if (send.outcome != SendOutcome::kAcknowledged || arrived) continue;
      bool announced = false;
      if (i < send.positions.size()) {
        const StreamPosition& p = send.positions[i];
        auto gaps = gaps_of.find(device);
        if (gaps != gaps_of.end()) {
          announced = std::any_of(gaps->second.begin(), gaps->second.end(),
                                  [&](const GapRecord& g) { return covers(g, p); });
        }
      }
      if (announced) {
        r.lost_in_announced_gap.add(where);
      } else {
        const std::string at = i < send.positions.size()
                                   ? " (stored at " +
                                         position(send.positions[i].stream, send.positions[i].epoch,
                                                  send.positions[i].seq) +
                                         ")"
                                   : "";
        r.lost.add(where + at);
      }
    }
  }
  return r;
}

}  // namespace herald::testing
