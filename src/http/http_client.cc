#include "http/http_client.h"

#include <sys/socket.h>

#include <cerrno>
#include <exception>
#include <stdexcept>

#include <openssl/x509.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace herald::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::ip::tcp;

namespace {

constexpr std::string_view kUserAgent = "herald-http-client";

// Errors that mean the peer closed or reset the connection.
bool is_closed_by_peer(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == asio::ssl::error::stream_truncated;
}

class CertificateCategory : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "herald.http.certificate"; }
  std::string message(int value) const override {
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(value);
  }
};

bool is_ip_literal(const std::string& name) {
  boost::system::error_code ec;
  (void)asio::ip::make_address(name, ec);
  return !ec;
}

}  // namespace

const boost::system::error_category& certificate_category() {
  static const CertificateCategory category;
  return category;
}

HttpClient::HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout,
                       TlsSettings tls)
    : host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      tls_(std::move(tls)),
      io_(std::make_unique<asio::io_context>()),
      executor_(io_->get_executor()),
      stream_(executor_) {
  if (tls_.server_name.empty()) tls_.server_name = host_;
}

HttpClient::HttpClient(asio::any_io_executor executor, std::string host, std::uint16_t port,
                       std::chrono::milliseconds timeout, TlsSettings tls)
    : host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      tls_(std::move(tls)),
      executor_(std::move(executor)),
      stream_(executor_) {
  if (tls_.server_name.empty()) tls_.server_name = host_;
}

HttpClient::~HttpClient() = default;

beast::tcp_stream& HttpClient::tcp() {
  return tls_stream_ ? beast::get_lowest_layer(*tls_stream_) : stream_;
}

void HttpClient::close() {
  // Over TLS without a close_notify: the server takes the end of the TCP stream for the end of
  // the connection, and the session stays resumable through session_, a copy.
  beast::error_code ignored;
  tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp().close();
  tls_stream_.reset();
  buffer_.clear();
  connected_ = false;
}

void HttpClient::open_tls_stream() {
  tls_stream_.emplace(executor_, *tls_.context);
  SSL* ssl = tls_stream_->native_handle();
  const std::string& name = tls_.server_name;
  // SNI carries names only (RFC 6066). SSL_set_tlsext_host_name without its C cast.
  if (!is_ip_literal(name)) {
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(name.c_str()));
  }
  // The name check through OpenSSL itself, not Asio's set_verify_callback: that one stores its
  // callback as the SSL's app data, where tls::make_client_context's new-session callback
  // expects a TlsChannel (with none there, that callback leaves the session to us).
  if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0) SSL_set1_host(ssl, name.c_str());
  // The SSL gets a copy of its own: OpenSSL may mark the session it used unresumable (a TLS 1.3
  // resumption, a connection ended without close_notify), and the server renews a ticket only
  // when its key rotated, so session_ must stay as it came to serve the next connection too.
  if (session_) {
    if (SSL_SESSION* offered = SSL_SESSION_dup(session_.get())) {
      SSL_set_session(ssl, offered);
      SSL_SESSION_free(offered);  // the SSL holds its own reference
    }
  }
  session_source_ = nullptr;
}

void HttpClient::remember_session() {
  SSL_SESSION* current = SSL_get1_session(tls_stream_->native_handle());
  if (current == nullptr) return;
  // TLS 1.3 delivers the ticket after the handshake, with the first response's bytes: the
  // session becomes resumable (and a new object) only then.
  if (current != session_source_ && SSL_SESSION_is_resumable(current) == 1) {
    if (SSL_SESSION* copy = SSL_SESSION_dup(current)) {
      session_.reset(copy);
      session_source_ = current;
    }
  }
  SSL_SESSION_free(current);
}

bool HttpClient::idle_connection_alive() {
  // Between requests the server has nothing to say: a readable socket means it closed (EOF),
  // reset, or sent something unasked-for. Either way the connection is not reusable.
  char byte;
  const ssize_t n = ::recv(tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

Request HttpClient::make_request(bhttp::verb verb, std::string_view target, std::string body,
                                 const Headers& headers) const {
  Request req{verb, target, 11};
  req.set(bhttp::field::host, host_ + ":" + std::to_string(port_));
  req.set(bhttp::field::user_agent, kUserAgent);
  bool has_content_type = false;
  for (const auto& [name, value] : headers) {
    req.set(name, value);
    has_content_type = has_content_type || beast::iequals(name, "content-type");
  }
  if (!body.empty() && !has_content_type) req.set(bhttp::field::content_type, "application/json");
  req.body() = std::move(body);
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

boost::system::result<Response> HttpClient::request(bhttp::verb verb, std::string_view target,
                                                    std::string body, const Headers& headers) {
  if (!io_) throw std::logic_error("HttpClient::request on an asynchronous client");
  const Request req = make_request(verb, target, std::move(body), headers);
  const Deadline deadline = std::chrono::steady_clock::now() + timeout_;
  if (connected_ && !idle_connection_alive()) close();
  Attempt attempt = run_attempt(req, deadline);
  if (!attempt.response && attempt.retryable) {
    // The server closed the reused connection just as the request went out; it never saw it.
    attempt = run_attempt(req, deadline);
  }
  return std::move(attempt.response);
}

asio::awaitable<boost::system::result<Response>> HttpClient::async_request(bhttp::verb verb,
                                                                           std::string target,
                                                                           std::string body,
                                                                           Headers headers) {
  if (io_) throw std::logic_error("HttpClient::async_request on a synchronous client");
  const Request req = make_request(verb, target, std::move(body), headers);
  const Deadline deadline = std::chrono::steady_clock::now() + timeout_;
  if (connected_ && !idle_connection_alive()) close();
  Attempt attempt = co_await async_attempt(req, deadline);
  if (!attempt.response && attempt.retryable) {
    // As in request(): the reused connection closed before the server saw the request.
    attempt = co_await async_attempt(req, deadline);
  }
  co_return std::move(attempt.response);
}

HttpClient::Attempt HttpClient::run_attempt(const Request& request, Deadline deadline) {
  std::optional<Attempt> result;
  std::exception_ptr failure;
  io_->restart();
  asio::co_spawn(*io_, async_attempt(request, deadline),
                 [&result, &failure](std::exception_ptr e, Attempt a) {
                   failure = e;
                   result = std::move(a);
                 });
  // Every operation of the attempt has the deadline, so run() returns by then.
  io_->run();
  if (failure) {
    close();
    std::rethrow_exception(failure);  // not a network error: out of memory or a bug
  }
  return std::move(*result);
}

asio::awaitable<HttpClient::Attempt> HttpClient::async_attempt(Request request, Deadline deadline) {
  Attempt attempt;
  const bool fresh = !connected_;
  if (fresh) {
    if (!endpoints_) {
      tcp::resolver resolver(executor_);
      const std::string service = std::to_string(port_);
      auto [resolve_ec, results] =
          co_await resolver.async_resolve(host_, service, asio::as_tuple(asio::use_awaitable));
      if (resolve_ec) {
        attempt.response = resolve_ec;
        co_return attempt;
      }
      endpoints_ = std::move(results);
    }
    buffer_.clear();
    if (tls()) open_tls_stream();
    tcp().expires_at(deadline);
    auto [ec, endpoint] =
        co_await tcp().async_connect(*endpoints_, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      close();
      endpoints_.reset();  // the name may point elsewhere by the next attempt
      attempt.response = ec;
      co_return attempt;
    }
    beast::error_code ignored;
    tcp().socket().set_option(tcp::no_delay(true), ignored);
    if (tls()) {
      auto [handshake_ec] = co_await tls_stream_->async_handshake(
          asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
      if (handshake_ec) {
        // The certificate check's own reason says more than the first error OpenSSL queued.
        const long verify = SSL_get_verify_result(tls_stream_->native_handle());
        close();
        attempt.response = verify != X509_V_OK
                               ? beast::error_code(static_cast<int>(verify), certificate_category())
                               : handshake_ec;
        co_return attempt;
      }
      last_resumed_ = SSL_session_reused(tls_stream_->native_handle()) == 1;
      remember_session();  // TLS 1.2: resumable already
    }
    connected_ = true;
  }
  tcp().expires_at(deadline);
  if (tls_stream_) {
    attempt = co_await async_exchange(&*tls_stream_, std::move(request), fresh);
  } else {
    attempt = co_await async_exchange(&stream_, std::move(request), fresh);
  }
  co_return attempt;
}

template <class Stream>
asio::awaitable<HttpClient::Attempt> HttpClient::async_exchange(Stream* stream, Request request,
                                                                bool fresh) {
  Attempt attempt;
  auto [write_ec, written] =
      co_await bhttp::async_write(*stream, request, asio::as_tuple(asio::use_awaitable));
  if (write_ec) {
    close();
    attempt.retryable = !fresh && is_closed_by_peer(write_ec);
    attempt.response = write_ec;
    co_return attempt;
  }

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxResponseBodyBytes);
  auto [read_ec, read] =
      co_await bhttp::async_read(*stream, buffer_, parser, asio::as_tuple(asio::use_awaitable));
  if (read_ec) {
    close();
    attempt.retryable = !fresh && !parser.got_some() && is_closed_by_peer(read_ec);
    attempt.response = read_ec;
    co_return attempt;
  }
  if (tls_stream_) remember_session();
  Response response = parser.release();
  if (!response.keep_alive()) close();
  attempt.response = std::move(response);
  co_return attempt;
}

}  // namespace herald::http
