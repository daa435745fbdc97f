// HttpClient: a small HTTP/1.1 client with one keep-alive connection. Two modes:
//
//   - synchronous: HttpClient(host, port, timeout) owns a private io_context and request()
//     blocks; for the herald CLI, integration tests and load tools. Not for an event loop.
//   - asynchronous: HttpClient(executor, host, port, timeout) lives on an event loop and
//     async_request() suspends the calling coroutine; for outbound calls made by the server
//     itself (the webhook dispatcher). request() is not available in this mode.
//
// Every request has one deadline covering connecting, writing and reading the whole response
// (name resolution is not bounded by it; a literal address needs none). A connection the server
// closed while it sat idle is noticed before it is reused (and, should the close race with the
// request, the request is sent again once on a fresh connection, but only if not a single
// response byte came back: a server that closes an idle keep-alive connection never processed
// anything on it). Any other failure closes the connection; the next request opens a new one and,
// if connecting failed, resolves the name again.
//
// HTTPS: with TlsSettings (a client context from tls::make_client_context and the name the
// server's certificate must carry, also sent as SNI unless it is an IP literal) every connection
// is TLS. The client keeps a copy of the TLS session of its last connection and offers it when it
// connects again, so a reconnect (after the server closed an idle connection, or after an error)
// is an abbreviated handshake that the server resumes from its ticket. A failed handshake is a
// transport error like any other: a certificate the client refuses (not signed by a CA it
// trusts, not for the server name, expired) is an error of certificate_category() whose value is
// OpenSSL's X509_V_ERR_* code and whose message says why ("certificate verify failed: ..."),
// and retrying will not help until the configuration changes; any other handshake failure is in
// asio::error::get_ssl_category().
//
// Thread-compatible: one request at a time per client. A synchronous client belongs to one
// thread; an asynchronous one to its executor (call async_request from coroutines running there).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/ssl.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/system/result.hpp>

#include "http/message.h"

namespace herald::http {

// The category of a server certificate the client refused; values are OpenSSL's X509_V_ERR_*.
[[nodiscard]] const boost::system::error_category& certificate_category();

class HttpClient {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // Response bodies above this are an error (http::error::body_limit).
  static constexpr std::size_t kMaxResponseBodyBytes = 64 * 1024 * 1024;

  // HTTPS, when `context` is set.
  struct TlsSettings {
    // A client context (tls::make_client_context): the CAs to trust and whether to verify.
    // Null: plaintext HTTP.
    std::shared_ptr<boost::asio::ssl::context> context;
    // The name the server's certificate must carry (a DNS name or an IP address), sent as SNI
    // when it is a name. Empty: `host`.
    std::string server_name;
  };

  // A synchronous client. Connects lazily, on the first request. `host` is a name or an address;
  // names are resolved on first connect, and again after a connection attempt failed.
  HttpClient(std::string host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(10), TlsSettings tls = {});
  // An asynchronous client whose connection and timers run on `executor`.
  HttpClient(boost::asio::any_io_executor executor, std::string host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(10), TlsSettings tls = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads its response. `target` is the path and query ("/v1/..."). Host,
  // User-Agent and Content-Length are set; a non-empty body gets Content-Type application/json
  // unless `headers` names one. Any status is a success here; errors are transport failures:
  // beast::error::timeout (the deadline passed; the connection is closed and the request may or
  // may not have been processed), connection refused, a malformed response, and so on.
  // Synchronous clients only (throws std::logic_error on an asynchronous one).
  [[nodiscard]] boost::system::result<Response> request(boost::beast::http::verb verb,
                                                        std::string_view target,
                                                        std::string body = {},
                                                        const Headers& headers = {});

  // The same, as a coroutine on the client's executor; completes with the same results. At most
  // one call in flight per client. Destroying the client while a call is suspended is undefined:
  // keep it alive until the call completes (it does by the deadline). Asynchronous clients only
  // (throws std::logic_error on a synchronous one).
  boost::asio::awaitable<boost::system::result<Response>> async_request(
      boost::beast::http::verb verb, std::string target, std::string body = {},
      Headers headers = {});

  [[nodiscard]] bool connected() const { return connected_; }
  // Closes the connection now; the next request opens a new one.
  void close();

  [[nodiscard]] const std::string& host() const { return host_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Whether requests go over TLS.
  [[nodiscard]] bool tls() const { return tls_.context != nullptr; }
  // Whether the TLS handshake of the last connection opened resumed an earlier session (an
  // abbreviated handshake); false for plaintext and before the first connection.
  [[nodiscard]] bool last_connection_resumed() const { return last_resumed_; }

 private:
  struct Attempt {
    boost::system::result<Response> response{boost::asio::error::operation_aborted};
    // The failure could only have happened before the server processed the request: the
    // connection was reused, and it closed before a single response byte came back.
    bool retryable = false;
  };

  using Deadline = std::chrono::steady_clock::time_point;

  [[nodiscard]] Request make_request(boost::beast::http::verb verb, std::string_view target,
                                     std::string body, const Headers& headers) const;
  // One attempt over the current connection, opening one first if needed.
  boost::asio::awaitable<Attempt> async_attempt(Request request, Deadline deadline);
  // Runs one attempt on the private io_context until it completes.
  Attempt run_attempt(const Request& request, Deadline deadline);
  // True when the idle connection is still open as far as this side can tell.
  [[nodiscard]] bool idle_connection_alive();
  // Writes `request` and reads its response over `stream` (the plaintext or the TLS stream).
  template <class Stream>
  boost::asio::awaitable<Attempt> async_exchange(Stream* stream, Request request, bool fresh);
  // TLS: opens a TLS stream over a fresh TCP stream, with SNI, the name to verify and the
  // session to resume.
  void open_tls_stream();
  // TLS: keeps a copy of the connection's session if it is resumable and new.
  void remember_session();
  // The TCP stream of the connection, under TLS or not.
  boost::beast::tcp_stream& tcp();

  struct SessionFree {
    void operator()(SSL_SESSION* session) const { SSL_SESSION_free(session); }
  };
  using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  TlsSettings tls_;
  // The private loop of a synchronous client; null for an asynchronous one.
  std::unique_ptr<boost::asio::io_context> io_;
  boost::asio::any_io_executor executor_;
  // Plaintext: the connection, reused across reconnects.
  boost::beast::tcp_stream stream_;
  // TLS: the connection, made anew for each (an SSL object serves one connection only).
  std::optional<TlsStream> tls_stream_;
  // TLS: a copy of the last connection's resumable session (a copy because OpenSSL marks the
  // connection's own session unresumable when the connection ends without a close_notify,
  // which is how this client ends its connections); and which session it was copied from.
  std::unique_ptr<SSL_SESSION, SessionFree> session_;
  const SSL_SESSION* session_source_ = nullptr;
  bool last_resumed_ = false;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::asio::ip::tcp::resolver::results_type> endpoints_;
  bool connected_ = false;
};

}  // namespace herald::http
