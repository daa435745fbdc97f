// AccessServer: the access layer of one process — device connections on every event loop.
//
// One AccessLoop per io_context; each binds the same port with SO_REUSEPORT, so the kernel
// spreads new connections over the loops and no loop ever hands a socket to another. Several
// heraldd processes on one host may share the port the same way (production hosts with millions
// of connections, or hosts whose per-process file limit is low).
//
// The process's guards against connection floods (ConnectionAdmission: the per-source
// connection rate and the cap on unauthenticated connections) are owned here and shared by every
// loop, so one source's connections count once however the kernel spreads them.
//
// Construct, start(), then run the io_contexts; stop() asks every device to reconnect elsewhere
// and closes the listeners. drain() is the gradual form: listeners close at once, devices are
// asked to leave at a bounded rate (DrainPacer) and stay served until they do; the server's owner
// decides when to stop() (docs/operations.md, "Draining a node"). The collaborators in
// AccessContext must outlive the server.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "access/access_loop.h"
#include "access/connection_admission.h"

namespace herald::access {

class AccessServer {
 public:
  // Binds on every loop (throws std::system_error naming the address on failure: start-up only).
  AccessServer(const std::vector<boost::asio::io_context*>& loops, const AccessContext& context);

  void start();
  void stop();
  // Starts a drain at `rate_per_s` Reconnect{DRAIN} frames per second over every loop. Any
  // thread; only the first call does anything.
  void drain(std::uint32_t rate_per_s);

  // The bound port (useful when the configured port is 0).
  [[nodiscard]] std::uint16_t port() const { return loops_.front()->port(); }

 private:
  // One for the whole process (before the loops: it outlives them and their sessions).
  ConnectionAdmission admission_;
  std::vector<std::unique_ptr<AccessLoop>> loops_;
  std::atomic<bool> drain_started_{false};
};

}  // namespace herald::access
