// HttpClient: a small synchronous HTTP/1.1 client with one keep-alive connection, for the herald
// CLI, integration tests and load tools. Not for use on an event loop: request() blocks.
//
// Every request has one deadline covering connecting, writing and reading the whole response. A
// connection the server closed while it sat idle is noticed before it is reused (and, should the
// close race with the request, the request is sent again once on a fresh connection, but only if
// not a single response byte came back: Herald's server closes only connections on which no
// request is in progress, so such a request was never processed). Any other failure closes the
// connection; the next request opens a new one.
//
// Thread-compatible: one client per thread (it owns a private io_context).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/result.hpp>

#include "http/message.h"

namespace herald::http {

class HttpClient {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // Response bodies above this are an error (http::error::body_limit).
  static constexpr std::size_t kMaxResponseBodyBytes = 64 * 1024 * 1024;

  // Connects lazily, on the first request. `host` is a name or an address; names are resolved
  // once, on first connect (resolution is not bounded by the deadline).
  HttpClient(std::string host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads its response. `target` is the path and query ("/v1/..."). Host,
  // User-Agent and Content-Length are set; a non-empty body gets Content-Type application/json
  // unless `headers` names one. Any status is a success here; errors are transport failures:
  // beast::error::timeout (the deadline passed; the connection is closed and the request may or
  // may not have been processed), connection refused, a malformed response, and so on.
  [[nodiscard]] boost::system::result<Response> request(boost::beast::http::verb verb,
                                                        std::string_view target,
                                                        std::string body = {},
                                                        const Headers& headers = {});

  [[nodiscard]] bool connected() const { return connected_; }
  // Closes the connection now; the next request opens a new one.
  void close();

  [[nodiscard]] const std::string& host() const { return host_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  struct Attempt {
    boost::system::result<Response> response{boost::asio::error::operation_aborted};
    // The failure could only have happened before the server processed the request: the
    // connection was reused, and it closed before a single response byte came back.
    bool retryable = false;
  };

  using Deadline = std::chrono::steady_clock::time_point;

  // One attempt over the current connection, opening one first if needed.
  boost::asio::awaitable<Attempt> async_attempt(Request request, Deadline deadline);
  // Runs one attempt on the private io_context until it completes.
  Attempt run_attempt(const Request& request, Deadline deadline);
  // True when the idle connection is still open as far as this side can tell.
  [[nodiscard]] bool idle_connection_alive();

  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::asio::ip::tcp::resolver::results_type> endpoints_;
  bool connected_ = false;
};

}  // namespace herald::http
