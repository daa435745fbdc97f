// HeartbeatAdvisor: the server's half of the server-assisted heartbeat (docs/protocol.md section
// 4). Devices report in their Hello the interval they settled on for the network they are on; the
// advisor keeps the latest report of each device per network and, once enough devices reported,
// suggests a starting interval for new devices on that network (GET /v1/endpoints?network=).
//
//   Hello{network, settled_heartbeat_s} ──record()──▶  network ─▶ device ─▶ (interval, when)
//   GET /v1/endpoints?network=N ─────────hint(N)───▶  low quantile of N's fresh reports
//
// The suggestion is a low quantile (the 25th percentile by default) of the devices' settled
// intervals, not their mean: a start below a device's real limit costs it a few short heartbeats
// on the way up, a start above it costs a failed heartbeat and a reconnect. With the 25th
// percentile three devices in four start at or below the interval they would find alone.
//
// Bounded: at most max_networks networks (the least recently reported one is forgotten first)
// and at most max_devices_per_network devices per network (the oldest report is replaced first);
// a device counts once per network, its newest report replacing the older one. Devices are kept
// as a 64-bit hash of their id, so a report costs 24 bytes whatever the id's length: the defaults
// hold at most 4096 x 256 reports, 24 MiB, plus the network names. Reports older than report_ttl
// are ignored and dropped. Nothing is persisted: a restarted node learns again.
//
// Thread-safe: one advisor is shared by every access loop (and the HTTP handlers); a mutex guards
// a small table touched once per Hello and once per endpoint list.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace herald::access {

struct HeartbeatAdvisorOptions {
  std::size_t max_networks = 4096;
  std::size_t max_devices_per_network = 256;
  // No hint for a network until this many distinct devices reported it: one device's network is
  // no evidence about the others'.
  std::size_t min_reports = 3;
  // The quantile of the reported intervals handed out, in percent (nearest rank, rounded down).
  std::uint32_t percentile = 25;
  std::chrono::milliseconds report_ttl{std::chrono::hours(7 * 24)};
};

// What the advisor suggests for a network.
struct HeartbeatAdvice {
  std::uint32_t start_s = 0;  // the starting interval
  std::uint32_t reports = 0;  // how many devices' reports it was computed from
};

class HeartbeatAdvisor {
 public:
  // Normalises the options: every bound at least 1, min_reports at most max_devices_per_network,
  // percentile at most 100.
  explicit HeartbeatAdvisor(HeartbeatAdvisorOptions options = {});

  // Device `device` settled on `settled_s` seconds on `network` at `now_ms` (Unix ms). Returns
  // false and records nothing when the network id is not valid (protocol::valid_network_id) or
  // settled_s is 0; range checks against the server's heartbeat bounds are the caller's.
  bool record(std::string_view network, std::string_view device, std::uint32_t settled_s,
              std::int64_t now_ms);

  // The starting interval for a new device on `network` at `now_ms`: nullopt when fewer than
  // min_reports devices reported it within report_ttl (or the id is not valid).
  [[nodiscard]] std::optional<HeartbeatAdvice> hint(std::string_view network,
                                                    std::int64_t now_ms) const;

  // Networks remembered now (for tests and metrics).
  [[nodiscard]] std::size_t networks() const;

  [[nodiscard]] const HeartbeatAdvisorOptions& options() const { return options_; }

 private:
  struct Report {              // 24 bytes
    std::uint64_t device = 0;  // hash of the device id
    std::uint32_t settled_s = 0;
    std::int64_t at_ms = 0;
  };
  struct Network {
    std::string id;
    std::vector<Report> reports;  // at most max_devices_per_network, one per device
  };
  using Networks = std::list<Network>;  // most recently reported first

  HeartbeatAdvisorOptions options_;
  mutable std::mutex mutex_;
  Networks networks_;                                               // guarded by mutex_
  std::unordered_map<std::string_view, Networks::iterator> index_;  // keys view Network::id
};

}  // namespace herald::access
