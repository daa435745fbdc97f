#include "http/http_server.h"

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/json/parse.hpp>

#include "http/http_client.h"

namespace herald::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

std::atomic<int> g_handler_calls{0};

// "/throw" throws; anything else echoes "<method> <target>|<body>".
asio::awaitable<Response> echo_handler(Request req) {
  g_handler_calls.fetch_add(1);
  if (req.target() == "/throw") throw std::runtime_error("handler failed on purpose");
  Response res{bhttp::status::ok, 11};
  res.body() =
      std::string(req.method_string()) + " " + std::string(req.target()) + "|" + req.body();
  co_return res;
}

std::string error_code_of(const Response& res) {
  return std::string(boost::json::parse(res.body()).at("error").at("code").as_string());
}

// A raw loopback socket for what HttpClient would never send. Every wait is bounded.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port));
  }

  void send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }

  // Reads until the server closes the connection or `limit` passes. Returns what was read and
  // whether the server closed.
  std::pair<std::string, bool> read_until_closed(std::chrono::milliseconds limit) {
    std::string data;
    bool closed = false;
    std::array<char, 4096> chunk;
    asio::steady_timer timer(io_, limit);
    timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) socket_.cancel();
    });
    std::function<void(boost::system::error_code, std::size_t)> on_read =
        [&](boost::system::error_code ec, std::size_t n) {
          data.append(chunk.data(), n);
          if (ec) {
            closed = ec != asio::error::operation_aborted;
            timer.cancel();
            return;
          }
          socket_.async_read_some(asio::buffer(chunk), on_read);
        };
    socket_.async_read_some(asio::buffer(chunk), on_read);
    io_.restart();
    io_.run();
    return {data, closed};
  }

  // Reads one response within 5 s.
  Response read_response() {
    bhttp::response_parser<bhttp::string_body> parser;
    boost::system::error_code result = asio::error::timed_out;
    asio::steady_timer timer(io_, 5s);
    timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) socket_.cancel();
    });
    bhttp::async_read(socket_, buffer_, parser, [&](boost::system::error_code ec, std::size_t) {
      result = ec;
      timer.cancel();
    });
    io_.restart();
    io_.run();
    EXPECT_FALSE(result) << result.message();
    return parser.release();
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions options, std::size_t loops = 1) {
    g_handler_calls = 0;
    std::vector<asio::io_context*> raw;
    for (std::size_t i = 0; i < loops; ++i) {
      ios_.push_back(std::make_unique<asio::io_context>());
      raw.push_back(ios_.back().get());
    }
    server_ = std::make_unique<HttpServer>(raw, tcp::endpoint(asio::ip::address_v4::loopback(), 0),
                                           echo_handler, options);
    server_->start();
    for (auto& io : ios_) threads_.emplace_back([p = io.get()] { p->run(); });
  }

  void TearDown() override { stop_and_join(); }

  // Stops the server and waits until every loop ran out of work: a clean stop leaves nothing
  // running.
  void stop_and_join() {
    if (server_) server_->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  // Polls `done` for up to 5 s; the server's timers decide when it becomes true.
  template <class Predicate>
  static bool eventually(Predicate done) {
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  std::uint16_t port() const { return server_->port(); }

  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::thread> threads_;
};

TEST_F(HttpServerTest, BindsAnEphemeralPortSharedByEveryLoop) {
  start({}, 2);
  EXPECT_NE(port(), 0);
  // Enough connections that both listeners almost surely get some; each must be served.
  for (int i = 0; i < 8; ++i) {
    HttpClient client("127.0.0.1", port(), 5s);
    auto res = client.request(bhttp::verb::get, "/x");
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_EQ(res->body(), "GET /x|");
  }
}

TEST_F(HttpServerTest, KeepsTheConnectionAliveAcrossRequests) {
  start({});
  RawConnection raw(port());
  raw.send("GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(raw.read_response().body(), "GET /one|");
  raw.send("POST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(raw.read_response().body(), "POST /two|abc");
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(HttpServerTest, AnswersPipelinedRequestsInOrder) {
  start({});
  RawConnection raw(port());
  raw.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(raw.read_response().body(), "GET /a|");
  EXPECT_EQ(raw.read_response().body(), "GET /b|");
}

TEST_F(HttpServerTest, AnswersExpectContinueBeforeTheBodyArrives) {
  start({});
  RawConnection raw(port());
  raw.send("POST /c HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(raw.read_response().result(), bhttp::status::continue_);
  raw.send("abc");
  EXPECT_EQ(raw.read_response().body(), "POST /c|abc");
}

TEST_F(HttpServerTest, ClientReusesItsConnection) {
  start({});
  HttpClient client("127.0.0.1", port(), 5s);
  for (int i = 0; i < 3; ++i) {
    auto res = client.request(bhttp::verb::post, "/k", "body");
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_EQ(res->body(), "POST /k|body");
    EXPECT_TRUE(client.connected());
  }
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(HttpServerTest, ClosesWhenTheClientAsksTo) {
  start({});
  RawConnection raw(port());
  raw.send("GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  auto [data, closed] = raw.read_until_closed(5s);
  EXPECT_TRUE(closed);
  EXPECT_NE(data.find("GET /bye|"), std::string::npos);
}

TEST_F(HttpServerTest, RejectsAnOversizedBodyWith413WithoutCallingTheHandler) {
  HttpServerOptions options;
  options.max_body_bytes = 1024;
  start(options);
  HttpClient client("127.0.0.1", port(), 5s);
  auto res = client.request(bhttp::verb::post, "/big", std::string(2048, 'x'));
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->result(), bhttp::status::payload_too_large);
  EXPECT_EQ(error_code_of(*res), "payload_too_large");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_EQ(g_handler_calls.load(), 0);

  // A body at the limit is fine, on a new connection.
  res = client.request(bhttp::verb::post, "/ok", std::string(1024, 'y'));
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->result(), bhttp::status::ok);
}

TEST_F(HttpServerTest, RejectsAnOversizedChunkedBodyWith413) {
  HttpServerOptions options;
  options.max_body_bytes = 16;
  start(options);
  RawConnection raw(port());
  raw.send(
      "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
  auto [data, closed] = raw.read_until_closed(5s);
  EXPECT_TRUE(closed);
  EXPECT_NE(data.find("HTTP/1.1 413"), std::string::npos) << data;
  EXPECT_EQ(g_handler_calls.load(), 0);
}

TEST_F(HttpServerTest, RejectsAnOversizedHeaderWith431) {
  start({});
  HttpClient client("127.0.0.1", port(), 5s);
  auto res = client.request(bhttp::verb::get, "/h", {}, {{"X-Big", std::string(9000, 'h')}});
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->result(), bhttp::status::request_header_fields_too_large);
  EXPECT_EQ(error_code_of(*res), "header_too_large");
  EXPECT_EQ(g_handler_calls.load(), 0);
}

TEST_F(HttpServerTest, AnswersMalformedHttpWith400AndCloses) {
  start({});
  RawConnection raw(port());
  raw.send("THIS IS NOT HTTP\r\n\r\n");
  auto [data, closed] = raw.read_until_closed(5s);
  EXPECT_TRUE(closed);
  EXPECT_NE(data.find("HTTP/1.1 400"), std::string::npos) << data;
  EXPECT_NE(data.find("\"code\":\"bad_request\""), std::string::npos) << data;
}

TEST_F(HttpServerTest, ClosesARequestWhoseHeadersNeverComplete) {
  HttpServerOptions options;
  options.request_timeout_ms = 200;
  start(options);
  RawConnection raw(port());
  const auto begin = std::chrono::steady_clock::now();
  raw.send("GET /slow HTTP/1.1\r\nHost: t\r\n");
  auto [data, closed] = raw.read_until_closed(5s);
  const auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_TRUE(closed);
  EXPECT_TRUE(data.empty()) << data;
  EXPECT_GE(elapsed, 150ms);
  EXPECT_EQ(g_handler_calls.load(), 0);
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(HttpServerTest, TricklingBytesDoNotExtendTheRequestDeadline) {
  HttpServerOptions options;
  options.request_timeout_ms = 300;
  start(options);
  RawConnection raw(port());
  const auto begin = std::chrono::steady_clock::now();
  raw.send("GET /slowloris HTTP/1.1\r\n");
  // One header byte every 50 ms would keep a per-read timeout alive forever.
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    try {
      raw.send("X");
    } catch (const boost::system::system_error&) {
      closed = true;
      break;
    }
    closed = raw.read_until_closed(50ms).second;
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 3s);
}

TEST_F(HttpServerTest, ClosesAnIdleKeepAliveConnectionAndTheClientReconnects) {
  HttpServerOptions options;
  options.idle_timeout_ms = 100;
  start(options);
  HttpClient client("127.0.0.1", port(), 5s);
  ASSERT_TRUE(client.request(bhttp::verb::get, "/1"));
  ASSERT_TRUE(eventually([&] { return server_->connections() == 0; }));
  auto res = client.request(bhttp::verb::get, "/2");
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->body(), "GET /2|");
}

TEST_F(HttpServerTest, AnswersAHandlerExceptionWith500AndKeepsServing) {
  start({});
  HttpClient client("127.0.0.1", port(), 5s);
  auto res = client.request(bhttp::verb::get, "/throw");
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->result(), bhttp::status::internal_server_error);
  EXPECT_EQ(error_code_of(*res), "internal");
  EXPECT_TRUE(res->keep_alive());
  res = client.request(bhttp::verb::get, "/after");
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->body(), "GET /after|");
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(HttpServerTest, ClosesConnectionsBeyondTheLimitAtAccept) {
  HttpServerOptions options;
  options.max_connections = 1;
  start(options);
  HttpClient first("127.0.0.1", port(), 5s);
  ASSERT_TRUE(first.request(bhttp::verb::get, "/first"));
  RawConnection second(port());
  auto [data, closed] = second.read_until_closed(5s);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(data.empty());
  // The first connection is unaffected.
  auto res = first.request(bhttp::verb::get, "/again");
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->body(), "GET /again|");
}

TEST_F(HttpServerTest, StopClosesIdleConnectionsAndLetsTheLoopsFinish) {
  start({}, 2);
  HttpClient client("127.0.0.1", port(), 5s);
  ASSERT_TRUE(client.request(bhttp::verb::get, "/x"));
  // Returns only once every loop ran out of work, idle keep-alive connection included.
  stop_and_join();
  EXPECT_EQ(server_->connections(), 0u);
  HttpClient late("127.0.0.1", port(), 1s);
  EXPECT_FALSE(late.request(bhttp::verb::get, "/late"));
}

TEST_F(HttpServerTest, ClientTimesOutOnASilentServer) {
  // A listening socket that never answers.
  asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  HttpClient client("127.0.0.1", silent.local_endpoint().port(), 200ms);
  const auto begin = std::chrono::steady_clock::now();
  auto res = client.request(bhttp::verb::get, "/");
  EXPECT_FALSE(res);
  EXPECT_EQ(res.error(), beast::error::timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 2s);
}

}  // namespace
}  // namespace herald::http
