// AccessServer: the access layer of one process — device connections on every event loop.
//
// One AccessLoop per io_context; each binds the same port with SO_REUSEPORT, so the kernel
// spreads new connections over the loops and no loop ever hands a socket to another. Several
// heraldd processes on one host may share the port the same way (production hosts with millions
// of connections, or hosts whose per-process file limit is low).
//
// Construct, start(), then run the io_contexts; stop() asks every device to reconnect elsewhere
// and closes the listeners. The collaborators in AccessContext must outlive the server.
#pragma once

#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "access/access_loop.h"

namespace herald::access {

class AccessServer {
 public:
  // Binds on every loop (throws std::system_error naming the address on failure: start-up only).
  AccessServer(const std::vector<boost::asio::io_context*>& loops, const AccessContext& context);

  void start();
  void stop();

  // The bound port (useful when the configured port is 0).
  [[nodiscard]] std::uint16_t port() const { return loops_.front()->port(); }

 private:
  std::vector<std::unique_ptr<AccessLoop>> loops_;
};

}  // namespace herald::access
