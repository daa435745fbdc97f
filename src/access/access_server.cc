#include "access/access_server.h"

#include <stdexcept>

#include <boost/asio/ip/address.hpp>

namespace herald::access {

namespace asio = boost::asio;

AccessServer::AccessServer(const std::vector<asio::io_context*>& loops,
                           const AccessContext& context)
    : admission_(context.options, context.metrics) {
  if (loops.empty()) throw std::invalid_argument("access: no event loops");
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(context.options.listen_address, ec);
  if (ec) {
    throw std::invalid_argument("access.listen: not an IP address: " +
                                context.options.listen_address);
  }
  // The first loop binds the configured port (maybe 0 = any); the others join the port it got.
  asio::ip::tcp::endpoint endpoint(address, context.options.listen_port);
  for (auto* io : loops) {
    try {
      loops_.push_back(std::make_unique<AccessLoop>(*io, context, endpoint, admission_));
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("access.listen: cannot listen on " + context.options.listen_address +
                               ":" + std::to_string(endpoint.port()) + ": " + e.what());
    }
    endpoint.port(loops_.front()->port());
  }
}

void AccessServer::start() {
  for (auto& loop : loops_) {
    loop->context().router.add_fanout(loop.get());
    loop->start();
  }
}

void AccessServer::drain(std::uint32_t rate_per_s) {
  if (drain_started_.exchange(true)) return;
  const auto pacer = std::make_shared<DrainPacer>(rate_per_s, DrainPacer::Clock::now());
  for (auto& loop : loops_) loop->drain(pacer);
}

void AccessServer::stop() {
  for (auto& loop : loops_) loop->stop();
}

}  // namespace herald::access
