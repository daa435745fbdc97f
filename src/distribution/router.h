// Router: the distribution layer's routing table, device -> the connection that holds it.
//
// The logic layer asks the router to carry a Notify to a device; access sessions attach and
// detach themselves. A device has at most one route: attaching a second connection supersedes the
// first (one connection per device). A notify to a stale or missing route is harmless: the device
// pulls from its cursor on its next connect. `local_router.h` is the embedded implementation (one
// process); the cluster implementation (redis/cluster_router.h) keeps routes in Redis Cluster
// and forwards notifies to the node holding the device over Redis pub/sub.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "distribution/stream_filter.h"

namespace herald::distribution {

// How soon a notify must reach the device. kHigh is written at once. kNormal may wait at the
// access node up to `access.normal_notify_delay_ms`, merged with the connection's other waiting
// notifies, so a burst of normal messages wakes the device's radio once (APNs priority 5, FCM
// normal); a kHigh notify to the same connection takes the waiting ones along.
enum class NotifyPriority : std::uint8_t { kNormal, kHigh };

// A notify for a stream many devices read: a topic, or an app's broadcast stream.
struct StreamNotify {
  std::uint64_t stream = 0;
  std::uint64_t head_seq = 0;
  NotifyPriority priority = NotifyPriority::kHigh;
  // Non-zero: each access node spreads its connections' notifies evenly over this many
  // milliseconds (a paced broadcast), so they do not all pull in the same second.
  std::uint32_t spread_ms = 0;
  // Set: only connections whose streams match it (a topic condition).
  std::shared_ptr<const StreamFilter> filter;
};

// The local readers of shared streams on one access node (one per event loop); implemented by
// the access layer.
class StreamFanout {
 public:
  virtual ~StreamFanout() = default;
  // Writes the notify to every local connection that reads `notify->stream` (and matches its
  // filter): the frame is encoded once and copied into each connection's output queue.
  // Thread-safe, never blocks: the work is posted to the fan-out's own event loop.
  virtual void fan_out(std::shared_ptr<const StreamNotify> notify) = 0;
};

// The router's view of one device connection; implemented by access sessions.
class DeviceLink {
 public:
  virtual ~DeviceLink() = default;
  // Queue a Notify for this connection. Thread-safe, never blocks: the work is posted to the
  // connection's own event loop. A notify to a closed link is dropped.
  virtual void notify(std::uint64_t stream, std::uint64_t head_seq, NotifyPriority priority) = 0;
  // A newer connection of the same device took the route: tell the device and close.
  virtual void supersede() = 0;
  // The device's shared streams changed (the sender API joined or left topics for it): reload
  // them and tell the device. Thread-safe, never blocks.
  virtual void refresh_streams() = 0;
};

// What attach() did.
enum class AttachResult : std::uint8_t {
  kAttached,  // `link` holds the route now; a previous link was superseded
  kRaceLost,  // the device's live link came with the same non-zero race id: nothing changed
};

class Router {
 public:
  virtual ~Router() = default;
  // Routes `device` to `link`, superseding any previous link, unless `race_id` is not 0 and
  // equals the race id the device's live link was attached with: then the route and the live
  // link are left alone and `link` is not routed (docs/protocol.md section 3, "Racing": of one
  // client's racing attempts only the first to arrive wins a node). The check and the change are
  // one atomic step. Thread-safe.
  [[nodiscard]] virtual AttachResult attach(std::string_view device,
                                            std::shared_ptr<DeviceLink> link,
                                            std::uint64_t race_id) = 0;
  // attach() outside a race: always routes `link`.
  void attach(std::string_view device, std::shared_ptr<DeviceLink> link) {
    (void)attach(device, std::move(link), 0);
  }
  // Removes the route if it still points at `link` (a newer link is left alone). Thread-safe.
  virtual void detach(std::string_view device, const DeviceLink* link) = 0;
  // Hands a Notify to the device's current link. Returns false when the device has no route here.
  virtual bool notify(std::string_view device, std::uint64_t stream, std::uint64_t head_seq,
                      NotifyPriority priority) = 0;
  virtual bool is_online(std::string_view device) = 0;
  virtual std::size_t size() = 0;

  // Registers the local readers of shared streams of one event loop. `fanout` must outlive the
  // router's use of it; call before the first notify_stream. Thread-safe.
  virtual void add_fanout(StreamFanout* fanout) = 0;
  // Hands a shared-stream notify to every access node's fan-outs. Thread-safe, never blocks.
  virtual void notify_stream(StreamNotify notify) = 0;
  // Tells the device's link, if it has one here, that its shared streams changed. Returns false
  // when the device has no route here. Thread-safe.
  virtual bool streams_changed(std::string_view device) = 0;
};

}  // namespace herald::distribution
