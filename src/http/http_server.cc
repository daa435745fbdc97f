#include "http/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl.hpp>

#include "common/crash_point.h"
#include "common/log.h"
#include "http/json_response.h"

namespace herald::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::ip::tcp;

namespace {

// The first read of a request (after an idle wait) asks for at most this much.
constexpr std::size_t kFirstReadBytes = 4096;
// After EMFILE/ENFILE the acceptor pauses instead of spinning on the same error.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
constexpr std::string_view kServerName = "herald";

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

bool is_parse_error(const beast::error_code& ec) {
  return &ec.category() == &bhttp::make_error_code(bhttp::error::bad_version).category();
}

std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "non-standard exception";
  }
}

void log_exception(std::string_view event, const std::exception_ptr& e) {
  if (e) log::error(event, {{"what", describe(e)}});
}

}  // namespace

namespace detail {

// What every listener and connection of one server shares. Connections hold it by shared_ptr, so
// it outlives the HttpServer object when connections are still finishing (the TLS context, in
// options.tls, with it).
struct HttpShared {
  Handler handler;
  HttpServerOptions options;
  std::atomic<std::size_t> connections{0};
};

// What a listener sees of a connection, whichever its stream type.
class HttpConnectionBase {
 public:
  virtual ~HttpConnectionBase() = default;
  // The server is stopping: an idle connection closes now, a busy one after its response.
  virtual void stop() = 0;
};

// One loop's acceptor and the connections it accepted. Every member function runs on the loop's
// thread, except the constructor (any thread, before start).
class HttpListener : public std::enable_shared_from_this<HttpListener> {
 public:
  HttpListener(asio::io_context& io, std::shared_ptr<HttpShared> shared,
               const tcp::endpoint& endpoint)
      : io_(io), shared_(std::move(shared)), acceptor_(io) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.set_option(ReusePort(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(shared_->options.listen_backlog);
    port_ = acceptor_.local_endpoint().port();
  }

  void start();
  void stop();

  [[nodiscard]] std::uint16_t port() const { return port_; }
  asio::io_context& io() { return io_; }
  const std::shared_ptr<HttpShared>& shared() const { return shared_; }
  [[nodiscard]] bool stopping() const { return stopping_; }

  void add(HttpConnectionBase* c) { connections_.insert(c); }
  void remove(HttpConnectionBase* c) { connections_.erase(c); }

 private:
  asio::awaitable<void> accept_loop(std::shared_ptr<HttpListener> self);

  asio::io_context& io_;
  std::shared_ptr<HttpShared> shared_;
  tcp::acceptor acceptor_;
  // Raw pointers: each connection adds itself on start and removes itself in its destructor, both
  // on this loop's thread, so every pointer here is alive.
  std::unordered_set<HttpConnectionBase*> connections_;
  std::uint16_t port_ = 0;
  bool stopping_ = false;
};

// One accepted connection: (over TLS, the handshake first,) reads a request, asks the handler,
// writes the response, repeats while keep-alive holds. One coroutine does all of it, so there is
// one reader and one writer. `Stream` is beast::tcp_stream (plaintext) or
// beast::ssl_stream<beast::tcp_stream> (HTTPS); the request loop is the same for both, only the
// handshake and the close differ. Every deadline is set on the TCP stream underneath, so it
// bounds the TLS records as well as the HTTP bytes.
template <class Stream>
class HttpConnection : public HttpConnectionBase,
                       public std::enable_shared_from_this<HttpConnection<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  // The listener already counted this connection in HttpShared::connections; the destructor
  // uncounts it. `stream_args` build the stream (the accepted socket, and the TLS context).
  template <class... StreamArgs>
  explicit HttpConnection(std::shared_ptr<HttpListener> listener, StreamArgs&&... stream_args)
      : listener_(std::move(listener)),
        shared_(listener_->shared()),
        stream_(std::forward<StreamArgs>(stream_args)...),
        buffer_(buffer_limit(shared_->options)) {}

  ~HttpConnection() override {
    listener_->remove(this);
    shared_->connections.fetch_sub(1, std::memory_order_relaxed);
  }

  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  void start() {
    listener_->add(this);
    asio::co_spawn(stream_.get_executor(), run(this->shared_from_this()),
                   [](const std::exception_ptr& e) { log_exception("http_session_failed", e); });
  }

  void stop() override {
    stopping_ = true;
    if (state_ == State::kIdle) tcp().cancel();
  }

 private:
  // kIdle: waiting for the first byte of a request (or for the TLS handshake), where stop()
  // may cancel; kBusy: a request is being read, handled or answered.
  enum class State { kIdle, kBusy };

  // The read buffer holds at most one request header (the body moves into the request as it is
  // parsed) plus what follows it in the same read.
  static std::size_t buffer_limit(const HttpServerOptions& o) {
    return std::max<std::size_t>(o.max_header_bytes, kFirstReadBytes) + kFirstReadBytes;
  }

  // The TCP stream, under TLS or not: deadlines, cancellation and the socket.
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  // `self` keeps the connection alive for as long as its coroutine runs.
  asio::awaitable<void> run(std::shared_ptr<HttpConnection> self);
  // The request loop; returns how the connection should end.
  enum class Ending { kClose, kGraceful };
  asio::awaitable<Ending> async_serve();
  // TLS only: the server side of the handshake within request_timeout_ms; false (logged at debug
  // level: a port scanner or a plaintext client is no news) when it failed.
  asio::awaitable<bool> async_handshake();
  // Reads one request into `parser` under the deadline already set, answering
  // "Expect: 100-continue" between header and body (curl sends it for bodies above 1 KiB and
  // would otherwise wait a second before sending the body).
  asio::awaitable<beast::error_code> async_read_request(
      bhttp::request_parser<bhttp::string_body>& parser);
  // Writes `res` within the write deadline; false when the connection is gone.
  asio::awaitable<bool> async_write_response(Response res, unsigned version, bool keep_alive);
  // Sends a final error answer to a request that could not be read, then closes.
  asio::awaitable<void> async_reject(bhttp::status status, std::string code, std::string message);
  // Closes the write side (over TLS: a close_notify first), then reads and drops what the client
  // still sends for a short while: closing with unread bytes makes the kernel send a reset, which
  // can destroy the answer before the client read it.
  asio::awaitable<void> async_linger_close();
  // TLS only: sends a close_notify within close_linger_ms (Beast's async_shutdown), without
  // waiting for the client's: the connection ends here whatever the client answers, and a client
  // that never answers must not hold it open.
  asio::awaitable<void> async_send_close_notify();

  std::shared_ptr<HttpListener> listener_;
  std::shared_ptr<HttpShared> shared_;
  Stream stream_;
  beast::flat_buffer buffer_;
  State state_ = State::kBusy;
  bool stopping_ = false;
};

template <class Stream>
asio::awaitable<void> HttpConnection<Stream>::run(std::shared_ptr<HttpConnection> /*self*/) {
  bool handshake_done = true;
  if constexpr (kTls) handshake_done = co_await async_handshake();
  if (handshake_done) {
    const Ending ending = co_await async_serve();
    if constexpr (kTls) {
      if (ending == Ending::kGraceful) co_await async_send_close_notify();
    }
  }
  beast::error_code ignored;
  tcp().socket().close(ignored);
}

template <class Stream>
asio::awaitable<bool> HttpConnection<Stream>::async_handshake() {
  // Nothing of a request yet: stop() may cancel the handshake, as an idle wait.
  state_ = State::kIdle;
  tcp().expires_after(std::chrono::milliseconds(shared_->options.request_timeout_ms));
  auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server,
                                               asio::as_tuple(asio::use_awaitable));
  state_ = State::kBusy;
  if (ec || stopping_) {
    // Nothing was a request: no answer, no count, no more than a debug line.
    log::debug("http_tls_handshake_failed", {{"error", ec ? ec.message() : "server stopping"}});
    co_return false;
  }
  co_return true;
}

template <class Stream>
asio::awaitable<typename HttpConnection<Stream>::Ending> HttpConnection<Stream>::async_serve() {
  const HttpServerOptions& options = shared_->options;
  for (;;) {
    if (buffer_.size() == 0) {
      // Idle keep-alive connection: no request has started, so the idle deadline applies and
      // the buffer is given back.
      if (stopping_) co_return Ending::kGraceful;
      buffer_.shrink_to_fit();
      state_ = State::kIdle;
      tcp().expires_after(std::chrono::milliseconds(options.idle_timeout_ms));
      auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                                                      asio::as_tuple(asio::use_awaitable));
      state_ = State::kBusy;
      // A request whose first bytes raced with stop() is dropped unanswered: the client sees the
      // connection close before any response byte, so it knows the request was not processed.
      // Cancelled by stop(), the connection is intact and may end gracefully; after a timeout
      // (the stream closed the socket) or a peer gone, it cannot.
      if (stopping_ || ec == asio::error::operation_aborted) co_return Ending::kGraceful;
      if (ec) co_return Ending::kClose;
      buffer_.commit(n);
    }

    // One deadline for the whole request, set once: trickling bytes cannot extend it.
    tcp().expires_after(std::chrono::milliseconds(options.request_timeout_ms));
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(
        static_cast<std::uint32_t>(std::min<std::size_t>(options.max_header_bytes, UINT32_MAX)));
    parser.body_limit(options.max_body_bytes);
    beast::error_code ec = co_await async_read_request(parser);
    if (ec) {
      // Decide the answer first, then send it: no temporaries live across the suspension.
      std::optional<bhttp::status> status;
      std::string code;
      std::string message;
      if (ec == bhttp::error::body_limit) {
        status = bhttp::status::payload_too_large;
        code = "payload_too_large";
        message = "request body exceeds " + std::to_string(options.max_body_bytes) + " bytes";
      } else if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
        status = bhttp::status::request_header_fields_too_large;
        code = "header_too_large";
        message = "request header exceeds " + std::to_string(options.max_header_bytes) + " bytes";
      } else if (ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
                 is_parse_error(ec)) {
        status = bhttp::status::bad_request;
        code = "bad_request";
        message = "malformed HTTP request: " + ec.message();
      } else if (ec == beast::error::timeout) {
        // The stream already closed the socket; nobody is left to answer.
        log::debug("http_request_timeout", {{"timeout_ms", options.request_timeout_ms}});
      }
      // Anything else is the peer going away mid-request.
      if (status) co_await async_reject(*status, std::move(code), std::move(message));
      co_return Ending::kClose;
    }

    Request req = parser.release();
    const unsigned version = req.version();
    const bool client_keep_alive = req.keep_alive();
    const std::string target(req.target());
    Response res;
    std::exception_ptr failure;
    try {
      res = co_await shared_->handler(std::move(req));
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {
      // Caught once, here: the request fails, the connection and the server carry on.
      log::error("http_handler_failed", {{"target", target}, {"what", describe(failure)}});
      res = error_response(bhttp::status::internal_server_error, "internal",
                           "internal error; the request may or may not have taken effect");
    }
    const bool keep_alive = client_keep_alive && res.keep_alive() && !stopping_;
    const bool written = co_await async_write_response(std::move(res), version, keep_alive);
    if (written) HERALD_CRASH_POINT("after_http_answer");
    if (!written) co_return Ending::kClose;
    if (!keep_alive) {
      co_await async_linger_close();
      co_return Ending::kClose;
    }
  }
}

template <class Stream>
asio::awaitable<beast::error_code> HttpConnection<Stream>::async_read_request(
    bhttp::request_parser<bhttp::string_body>& parser) {
  auto [header_ec, header_n] = co_await bhttp::async_read_header(
      stream_, buffer_, parser, asio::as_tuple(asio::use_awaitable));
  if (header_ec) co_return header_ec;
  if (parser.is_done()) co_return beast::error_code{};
  const Request& header = parser.get();
  if (header.version() >= 11 && beast::iequals(header[bhttp::field::expect], "100-continue")) {
    bhttp::response<bhttp::empty_body> go_on{bhttp::status::continue_, 11};
    auto [write_ec, write_n] =
        co_await bhttp::async_write(stream_, go_on, asio::as_tuple(asio::use_awaitable));
    if (write_ec) co_return write_ec;
  }
  auto [body_ec, body_n] =
      co_await bhttp::async_read(stream_, buffer_, parser, asio::as_tuple(asio::use_awaitable));
  co_return body_ec;
}

template <class Stream>
asio::awaitable<bool> HttpConnection<Stream>::async_write_response(Response res, unsigned version,
                                                                   bool keep_alive) {
  res.version(version);
  res.keep_alive(keep_alive);
  res.set(bhttp::field::server, kServerName);
  res.prepare_payload();
  tcp().expires_after(std::chrono::milliseconds(shared_->options.write_timeout_ms));
  auto [ec, n] = co_await bhttp::async_write(stream_, res, asio::as_tuple(asio::use_awaitable));
  co_return !ec;
}

template <class Stream>
asio::awaitable<void> HttpConnection<Stream>::async_reject(bhttp::status status, std::string code,
                                                           std::string message) {
  // The request could not be parsed, so its version is unknown: answer in HTTP/1.1 and close.
  // No co_await inside a condition or on a prvalue argument: with GCC 12, this coroutine written
  // as `if (co_await async_write_response(error_response(...), ...))` read garbage parameters.
  Response res = error_response(status, code, message);
  const bool written = co_await async_write_response(std::move(res), 11, false);
  if (written) co_await async_linger_close();
}

template <class Stream>
asio::awaitable<void> HttpConnection<Stream>::async_linger_close() {
  if constexpr (kTls) co_await async_send_close_notify();
  beast::error_code ignored;
  tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
  tcp().expires_after(std::chrono::milliseconds(shared_->options.close_linger_ms));
  // Under TLS too the bytes are dropped unread, as records: after the close_notify there is
  // nothing left to decrypt them for.
  std::array<char, 4096> sink;
  for (;;) {
    auto [ec, n] =
        co_await tcp().async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
    if (ec) break;
  }
}

template <class Stream>
asio::awaitable<void> HttpConnection<Stream>::async_send_close_notify() {
  if (!tcp().socket().is_open()) co_return;
  // As if the client's close_notify had arrived: SSL_shutdown then completes once ours is
  // written instead of reading until the client's.
  SSL* ssl = stream_.native_handle();
  SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
  tcp().expires_after(std::chrono::milliseconds(shared_->options.close_linger_ms));
  auto [ec] = co_await stream_.async_shutdown(asio::as_tuple(asio::use_awaitable));
  if (ec) log::debug("http_tls_shutdown_failed", {{"error", ec.message()}});
}

void HttpListener::start() {
  asio::co_spawn(io_, accept_loop(shared_from_this()),
                 [](const std::exception_ptr& e) { log_exception("http_accept_failed", e); });
}

void HttpListener::stop() {
  if (stopping_) return;
  stopping_ = true;
  beast::error_code ignored;
  acceptor_.close(ignored);
  // HttpConnection::stop() only cancels; completions run on a later turn, so connections_ does
  // not change under this loop.
  for (HttpConnectionBase* c : connections_) c->stop();
}

asio::awaitable<void> HttpListener::accept_loop(std::shared_ptr<HttpListener> self) {
  asio::steady_timer backoff(io_);
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || stopping_) break;
    if (ec) {
      // Out of file descriptors or a transient error: pause rather than spin.
      log::warn("http_accept_failed", {{"error", ec.message()}});
      backoff.expires_after(kAcceptBackoff);
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    // Count first, then compare, so concurrent loops cannot overshoot together.
    if (shared_->connections.fetch_add(1, std::memory_order_relaxed) >=
        shared_->options.max_connections) {
      shared_->connections.fetch_sub(1, std::memory_order_relaxed);
      log::debug("http_connection_rejected",
                 {{"max_connections", shared_->options.max_connections}});
      beast::error_code ignored;
      socket.close(ignored);
      continue;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (const auto& tls = shared_->options.tls) {
      std::make_shared<HttpConnection<beast::ssl_stream<beast::tcp_stream>>>(
          self, std::move(socket), *tls)
          ->start();
    } else {
      std::make_shared<HttpConnection<beast::tcp_stream>>(self, std::move(socket))->start();
    }
  }
}

}  // namespace detail

HttpServer::HttpServer(const std::vector<asio::io_context*>& loops, const tcp::endpoint& endpoint,
                       Handler handler, HttpServerOptions options)
    : shared_(std::make_shared<detail::HttpShared>()) {
  shared_->handler = std::move(handler);
  shared_->options = options;
  tcp::endpoint bind_to = endpoint;
  for (asio::io_context* io : loops) {
    try {
      listeners_.push_back(std::make_shared<detail::HttpListener>(*io, shared_, bind_to));
    } catch (const std::system_error& e) {
      throw std::system_error(e.code(), "http: cannot listen on " + bind_to.address().to_string() +
                                            ":" + std::to_string(bind_to.port()));
    }
    // Port 0: the first listener picked a port; the others share it.
    bind_to.port(listeners_.front()->port());
  }
  if (listeners_.empty()) throw std::invalid_argument("http: no event loops");
  port_ = listeners_.front()->port();
}

HttpServer::~HttpServer() = default;

void HttpServer::start() {
  for (const auto& l : listeners_) {
    asio::post(l->io(), [l] { l->start(); });
  }
}

void HttpServer::stop() {
  for (const auto& l : listeners_) {
    asio::post(l->io(), [l] { l->stop(); });
  }
}

std::size_t HttpServer::connections() const {
  return shared_->connections.load(std::memory_order_relaxed);
}

}  // namespace herald::http
