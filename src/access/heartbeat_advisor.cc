#include "access/heartbeat_advisor.h"

#include <algorithm>
#include <cassert>
#include <functional>

#include "protocol/network_id.h"

namespace herald::access {

namespace {

HeartbeatAdvisorOptions normalised(HeartbeatAdvisorOptions o) {
  o.max_networks = std::max<std::size_t>(o.max_networks, 1);
  o.max_devices_per_network = std::max<std::size_t>(o.max_devices_per_network, 1);
  o.min_reports = std::clamp<std::size_t>(o.min_reports, 1, o.max_devices_per_network);
  o.percentile = std::min<std::uint32_t>(o.percentile, 100);
  o.report_ttl = std::max(o.report_ttl, std::chrono::milliseconds(1));
  return o;
}

}  // namespace

HeartbeatAdvisor::HeartbeatAdvisor(HeartbeatAdvisorOptions options)
    : options_(normalised(options)) {}

bool HeartbeatAdvisor::record(std::string_view network, std::string_view device,
                              std::uint32_t settled_s, std::int64_t now_ms) {
  if (!protocol::valid_network_id(network) || settled_s == 0) return false;
  const std::uint64_t device_hash = std::hash<std::string_view>{}(device);
  const std::int64_t oldest_ms = now_ms - options_.report_ttl.count();

  const std::lock_guard lock(mutex_);
  Networks::iterator it;
  if (auto found = index_.find(network); found != index_.end()) {
    it = found->second;
    networks_.splice(networks_.begin(), networks_, it);
  } else {
    networks_.push_front(Network{std::string(network), {}});
    it = networks_.begin();
    index_.emplace(it->id, it);
    if (networks_.size() > options_.max_networks) {
      index_.erase(networks_.back().id);
      networks_.pop_back();
    }
  }
  assert(networks_.size() == index_.size() && networks_.size() <= options_.max_networks);

  auto& reports = it->reports;
  std::erase_if(reports, [oldest_ms](const Report& r) { return r.at_ms < oldest_ms; });
  const Report report{device_hash, settled_s, now_ms};
  auto same = std::find_if(reports.begin(), reports.end(),
                           [device_hash](const Report& r) { return r.device == device_hash; });
  if (same != reports.end()) {
    *same = report;
  } else if (reports.size() < options_.max_devices_per_network) {
    reports.push_back(report);
  } else {
    *std::min_element(reports.begin(), reports.end(),
                      [](const Report& a, const Report& b) { return a.at_ms < b.at_ms; }) = report;
  }
  assert(reports.size() <= options_.max_devices_per_network);
  return true;
}

std::optional<HeartbeatAdvice> HeartbeatAdvisor::hint(std::string_view network,
                                                      std::int64_t now_ms) const {
  if (!protocol::valid_network_id(network)) return std::nullopt;
  const std::int64_t oldest_ms = now_ms - options_.report_ttl.count();
  std::vector<std::uint32_t> intervals;
  {
    const std::lock_guard lock(mutex_);
    const auto found = index_.find(network);
    if (found == index_.end()) return std::nullopt;
    intervals.reserve(found->second->reports.size());
    for (const auto& r : found->second->reports) {
      if (r.at_ms >= oldest_ms) intervals.push_back(r.settled_s);
    }
  }
  if (intervals.size() < options_.min_reports) return std::nullopt;
  // The value at 0-based rank floor(percentile x (n - 1) / 100) of the sorted intervals.
  const std::size_t rank = options_.percentile * (intervals.size() - 1) / 100;
  std::nth_element(intervals.begin(), intervals.begin() + static_cast<std::ptrdiff_t>(rank),
                   intervals.end());
  return HeartbeatAdvice{intervals[rank], static_cast<std::uint32_t>(intervals.size())};
}

std::size_t HeartbeatAdvisor::networks() const {
  const std::lock_guard lock(mutex_);
  return networks_.size();
}

}  // namespace herald::access
