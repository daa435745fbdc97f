#include "http/http_client.h"

#include <sys/socket.h>

#include <cerrno>
#include <exception>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
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
         ec == asio::error::connection_aborted;
}

}  // namespace

HttpClient::HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      io_(std::make_unique<asio::io_context>()),
      stream_(io_->get_executor()) {}

HttpClient::HttpClient(asio::any_io_executor executor, std::string host, std::uint16_t port,
                       std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), timeout_(timeout), stream_(std::move(executor)) {}

HttpClient::~HttpClient() = default;

void HttpClient::close() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
  buffer_.clear();
  connected_ = false;
}

bool HttpClient::idle_connection_alive() {
  // Between requests the server has nothing to say: a readable socket means it closed (EOF),
  // reset, or sent something unasked-for. Either way the connection is not reusable.
  char byte;
  const ssize_t n = ::recv(stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
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
  stream_.expires_at(deadline);
  if (fresh) {
    if (!endpoints_) {
      tcp::resolver resolver(stream_.get_executor());
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
    auto [ec, endpoint] =
        co_await stream_.async_connect(*endpoints_, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      close();
      endpoints_.reset();  // the name may point elsewhere by the next attempt
      attempt.response = ec;
      co_return attempt;
    }
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    connected_ = true;
  }

  auto [write_ec, written] =
      co_await bhttp::async_write(stream_, request, asio::as_tuple(asio::use_awaitable));
  if (write_ec) {
    close();
    attempt.retryable = !fresh && is_closed_by_peer(write_ec);
    attempt.response = write_ec;
    co_return attempt;
  }

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxResponseBodyBytes);
  auto [read_ec, read] =
      co_await bhttp::async_read(stream_, buffer_, parser, asio::as_tuple(asio::use_awaitable));
  if (read_ec) {
    close();
    attempt.retryable = !fresh && !parser.got_some() && is_closed_by_peer(read_ec);
    attempt.response = read_ec;
    co_return attempt;
  }
  Response response = parser.release();
  if (!response.keep_alive()) close();
  attempt.response = std::move(response);
  co_return attempt;
}

}  // namespace herald::http
