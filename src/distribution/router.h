// Router: the distribution layer's routing table, device -> the connection that holds it.
//
// The logic layer asks the router to carry a Notify to a device; access sessions attach and
// detach themselves. A device has at most one route: attaching a second connection supersedes the
// first (one connection per device). A notify to a stale or missing route is harmless: the device
// pulls from its cursor on its next connect. `local_router.h` is the embedded implementation (one
// process); the cluster implementation keeps routes in Redis Cluster and forwards over RPC.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

namespace herald::distribution {

// How soon a notify must reach the device. kHigh is written at once. kNormal may wait at the
// access node up to `access.normal_notify_delay_ms`, merged with the connection's other waiting
// notifies, so a burst of normal messages wakes the device's radio once (APNs priority 5, FCM
// normal); a kHigh notify to the same connection takes the waiting ones along.
enum class NotifyPriority : std::uint8_t { kNormal, kHigh };

// The router's view of one device connection; implemented by access sessions.
class DeviceLink {
 public:
  virtual ~DeviceLink() = default;
  // Queue a Notify for this connection. Thread-safe, never blocks: the work is posted to the
  // connection's own event loop. A notify to a closed link is dropped.
  virtual void notify(std::uint64_t stream, std::uint64_t head_seq, NotifyPriority priority) = 0;
  // A newer connection of the same device took the route: tell the device and close.
  virtual void supersede() = 0;
};

class Router {
 public:
  virtual ~Router() = default;
  // Routes `device` to `link`, superseding any previous link. Thread-safe.
  virtual void attach(std::string_view device, std::shared_ptr<DeviceLink> link) = 0;
  // Removes the route if it still points at `link` (a newer link is left alone). Thread-safe.
  virtual void detach(std::string_view device, const DeviceLink* link) = 0;
  // Hands a Notify to the device's current link. Returns false when the device has no route here.
  virtual bool notify(std::string_view device, std::uint64_t stream, std::uint64_t head_seq,
                      NotifyPriority priority) = 0;
  virtual bool is_online(std::string_view device) = 0;
  virtual std::size_t size() = 0;
};

}  // namespace herald::distribution
