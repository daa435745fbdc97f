// HttpServer: a small HTTP/1.1 server (Beast) for Herald's APIs — the sender API, health and the
// endpoint list. It owns the sockets; what to answer is decided by a Handler, a plain function
// from a whole request to a whole response, so handlers are tested without sockets.
//
// Threads: one listener per io_context (one per event-loop thread). Every listener binds the same
// address and port with SO_REUSEPORT, so the kernel spreads new connections over the loops and a
// connection lives on the loop that accepted it from accept to close; no loop hands a socket to
// another and no connection state is shared between loops except an atomic connection count.
// (The alternative, one acceptor dealing sockets out round-robin, makes one loop the bottleneck
// for accepts and needs a cross-thread hand-off per connection.) A caveat of SO_REUSEPORT: a
// second process of the same user may bind the same port without an error.
//
// What one connection may cost is bounded:
//   - request header  <= max_header_bytes        else 431 + close
//   - request body    <= max_body_bytes          else 413 + close (checked against
//                                                Content-Length before the body is read)
//   - a whole request (first byte to last) within request_timeout_ms, else the connection is
//     closed without an answer (slowloris); the wait for the first byte of the next request on a
//     keep-alive connection is idle_timeout_ms; writing a response within write_timeout_ms
//   - malformed HTTP -> 400 + close
//   - at most max_connections open connections per server; beyond it new sockets are closed
//     right after accept
// Every error answer has the JSON body of json_response.h.
//
// HTTPS: with HttpServerOptions::tls set, every connection is TLS (Beast's ssl_stream over the
// same TCP stream) and the bounds above hold over it unchanged. The handshake comes first, within
// request_timeout_ms; one that fails (plaintext HTTP on the HTTPS port, a client refusing the
// certificate, silence) closes the connection unanswered, is no request, and is logged at debug
// level only. A connection the server ends (Connection: close, an error answer, stop()) sends a
// close_notify first, bounded by close_linger_ms, without waiting for the client's. An idle
// connection whose idle_timeout_ms passed is closed without one (the TCP stream's deadline
// closed the socket); clients see the connection end either way. An exception escaping the handler
// is caught once per request and answered with 500; the connection stays usable. "Expect:
// 100-continue" is answered with 100 once the header passed its checks.
//
// Lifetime: construct (binds; throws std::system_error on failure: start-up only), start(), run
// the io_contexts. stop() closes the listeners and idle connections; a request already being read
// or handled completes and is answered with "Connection: close". The io_contexts then run out of
// work. The handler must stay callable until then; the HttpServer object itself may be destroyed
// earlier (connections share ownership of what they use).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "http/message.h"

namespace herald::http {

// Answers one request. Runs on the event loop of the connection; may suspend (storage writes).
// Should not throw; if it does, the client gets a 500 and the exception is logged.
using Handler = std::function<boost::asio::awaitable<Response>(Request)>;

struct HttpServerOptions {
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::uint32_t request_timeout_ms = 10'000;  // first byte to end of body
  std::uint32_t idle_timeout_ms = 60'000;     // keep-alive: wait for the next request's first byte
  std::uint32_t write_timeout_ms = 10'000;    // writing one response
  // After a 4xx that closes the connection, how long unread request bytes are drained so the
  // client reads the answer instead of a reset.
  std::uint32_t close_linger_ms = 1'000;
  std::size_t max_connections = 10'000;  // per server, over all loops
  int listen_backlog = 1024;
  // Null: plaintext HTTP. Else HTTPS on every connection with this server context
  // (tls::make_server_context); shared with the connections, so it may outlive the server.
  std::shared_ptr<boost::asio::ssl::context> tls;
};

namespace detail {
class HttpListener;
struct HttpShared;
}  // namespace detail

class HttpServer {
 public:
  // Binds `endpoint` once per loop (port 0: the first listener picks a port, the others join it).
  // Throws std::system_error on failure.
  HttpServer(const std::vector<boost::asio::io_context*>& loops,
             const boost::asio::ip::tcp::endpoint& endpoint, Handler handler,
             HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts accepting on every loop. Any thread; call once.
  void start();
  // Stops accepting and closes idle connections (see the lifetime notes above). Any thread;
  // idempotent.
  void stop();

  // The bound port (useful when the endpoint's port was 0).
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Connections open right now, over all loops.
  [[nodiscard]] std::size_t connections() const;

 private:
  std::shared_ptr<detail::HttpShared> shared_;
  std::vector<std::shared_ptr<detail::HttpListener>> listeners_;
  std::uint16_t port_ = 0;
};

}  // namespace herald::http
