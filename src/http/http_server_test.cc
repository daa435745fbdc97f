#include "http/http_server.h"

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/json/parse.hpp>

#include "http/http_client.h"
#include "tls/testing/test_certificates.h"
#include "tls/tls_context.h"

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

// HTTPS: the same server with a TLS context, certificates made for the test.
class HttpsServerTest : public HttpServerTest {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) / "herald_https_test" / info->name();
    certs_ = tls::testing::make_test_certificates(dir_);
  }

  void TearDown() override {
    HttpServerTest::TearDown();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void start_https(HttpServerOptions options = {}) {
    tls::ServerSettings settings;
    settings.cert_file = certs_.cert_file.string();
    settings.key_file = certs_.key_file.string();
    options.tls = tls::make_server_context(settings);
    start(options);
  }

  // A client context trusting `ca_file` and checking `server_name`.
  static HttpClient::TlsSettings client_tls_for(const std::filesystem::path& ca_file,
                                                const std::string& server_name) {
    tls::ClientSettings settings;
    settings.ca_file = ca_file.string();
    settings.server_name = server_name;
    return {tls::make_client_context(settings), server_name};
  }

  HttpClient::TlsSettings client_tls() const {
    return client_tls_for(certs_.ca_file, certs_.server_name);
  }

  std::filesystem::path dir_;
  tls::testing::TestCertificates certs_;
};

TEST_F(HttpsServerTest, AnswersARequestOverHttps) {
  start_https();
  HttpClient client("127.0.0.1", port(), 5s, client_tls());
  auto res = client.request(bhttp::verb::post, "/secure", "body");
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->body(), "POST /secure|body");
  EXPECT_TRUE(client.connected());
  EXPECT_FALSE(client.last_connection_resumed());
  // Keep-alive holds over TLS.
  res = client.request(bhttp::verb::get, "/again");
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->body(), "GET /again|");
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(HttpsServerTest, TheClientResumesItsSessionOnItsNextConnection) {
  start_https();
  HttpClient client("127.0.0.1", port(), 5s, client_tls());
  ASSERT_TRUE(client.request(bhttp::verb::get, "/first"));
  EXPECT_FALSE(client.last_connection_resumed());
  // Ended without a close_notify, as a client usually ends: the session must still resume.
  client.close();
  auto res = client.request(bhttp::verb::get, "/second");
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->body(), "GET /second|");
  EXPECT_TRUE(client.last_connection_resumed());
  // And the ticket that resumption brought resumes again.
  client.close();
  ASSERT_TRUE(client.request(bhttp::verb::get, "/third"));
  EXPECT_TRUE(client.last_connection_resumed());
}

TEST_F(HttpsServerTest, TheClientResumesAfterTheServerClosedAnIdleConnection) {
  HttpServerOptions options;
  options.idle_timeout_ms = 100;
  start_https(options);
  HttpClient client("127.0.0.1", port(), 5s, client_tls());
  ASSERT_TRUE(client.request(bhttp::verb::get, "/1"));
  ASSERT_TRUE(eventually([&] { return server_->connections() == 0; }));
  auto res = client.request(bhttp::verb::get, "/2");
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->body(), "GET /2|");
  EXPECT_TRUE(client.last_connection_resumed());
}

TEST_F(HttpsServerTest, AnAsynchronousClientSpeaksHttpsAndResumes) {
  start_https();
  asio::io_context io;
  HttpClient client(io.get_executor(), "127.0.0.1", port(), 5s, client_tls());
  std::vector<std::string> bodies;
  std::vector<bool> resumed;
  asio::co_spawn(
      io,
      [](HttpClient* c, std::vector<std::string>* out,
         std::vector<bool>* resumed_out) -> asio::awaitable<void> {
        for (int i = 0; i < 2; ++i) {
          auto res = co_await c->async_request(bhttp::verb::get, "/async");
          out->push_back(res ? res->body() : res.error().message());
          resumed_out->push_back(c->last_connection_resumed());
          c->close();
        }
      }(&client, &bodies, &resumed),
      [](const std::exception_ptr& e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0], "GET /async|");
  EXPECT_EQ(bodies[1], "GET /async|");
  EXPECT_FALSE(resumed[0]);
  EXPECT_TRUE(resumed[1]);
}

TEST_F(HttpsServerTest, PlaintextHttpToTheHttpsPortGetsNoHttpAnswerAndTheServerStaysHealthy) {
  start_https();
  RawConnection raw(port());
  raw.send("GET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
  auto [data, closed] = raw.read_until_closed(5s);
  EXPECT_TRUE(closed);
  EXPECT_EQ(data.find("HTTP/1."), std::string::npos) << data;
  EXPECT_EQ(g_handler_calls.load(), 0);
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));

  HttpClient client("127.0.0.1", port(), 5s, client_tls());
  auto res = client.request(bhttp::verb::get, "/after");
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->body(), "GET /after|");
}

TEST_F(HttpsServerTest, AClientWhoseCaDidNotSignTheCertificateFailsTheHandshake) {
  start_https();
  const auto other = tls::testing::make_test_certificates(dir_ / "other", certs_.server_name);
  HttpClient stranger("127.0.0.1", port(), 5s, client_tls_for(other.ca_file, certs_.server_name));
  auto res = stranger.request(bhttp::verb::get, "/refused");
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().category(), certificate_category()) << res.error().message();
  EXPECT_NE(res.error().message().find("certificate verify failed"), std::string::npos)
      << res.error().message();
  EXPECT_FALSE(stranger.connected());
  EXPECT_EQ(g_handler_calls.load(), 0);

  // A certificate for another name fails the same way.
  HttpClient wrong_name("127.0.0.1", port(), 5s, client_tls_for(certs_.ca_file, "other.test"));
  res = wrong_name.request(bhttp::verb::get, "/refused");
  ASSERT_FALSE(res);
  EXPECT_NE(res.error().message().find("certificate verify failed"), std::string::npos)
      << res.error().message();

  HttpClient trusting("127.0.0.1", port(), 5s, client_tls());
  EXPECT_TRUE(trusting.request(bhttp::verb::get, "/ok"));
}

TEST_F(HttpsServerTest, RejectsAnOversizedBodyWith413OverTls) {
  HttpServerOptions options;
  options.max_body_bytes = 1024;
  start_https(options);
  HttpClient client("127.0.0.1", port(), 5s, client_tls());
  auto res = client.request(bhttp::verb::post, "/big", std::string(64 * 1024, 'x'));
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->result(), bhttp::status::payload_too_large);
  EXPECT_EQ(error_code_of(*res), "payload_too_large");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_EQ(g_handler_calls.load(), 0);

  res = client.request(bhttp::verb::post, "/ok", std::string(1024, 'y'));
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->result(), bhttp::status::ok);
  EXPECT_TRUE(client.last_connection_resumed());
}

TEST_F(HttpsServerTest, RejectsAnOversizedHeaderWith431OverTls) {
  start_https();
  HttpClient client("127.0.0.1", port(), 5s, client_tls());
  auto res = client.request(bhttp::verb::get, "/h", {}, {{"X-Big", std::string(9000, 'h')}});
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->result(), bhttp::status::request_header_fields_too_large);
  EXPECT_EQ(error_code_of(*res), "header_too_large");
  EXPECT_EQ(g_handler_calls.load(), 0);
}

TEST_F(HttpsServerTest, ClosesAConnectionThatSendsNothingByTheHandshakeDeadline) {
  HttpServerOptions options;
  options.request_timeout_ms = 200;
  options.idle_timeout_ms = 60'000;
  start_https(options);
  RawConnection raw(port());
  const auto begin = std::chrono::steady_clock::now();
  auto [data, closed] = raw.read_until_closed(5s);
  const auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_TRUE(closed);
  EXPECT_TRUE(data.empty());
  EXPECT_GE(elapsed, 150ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(HttpsServerTest, StopEndsIdleTlsConnectionsAndLetsTheLoopsFinish) {
  start_https();
  HttpClient client("127.0.0.1", port(), 5s, client_tls());
  ASSERT_TRUE(client.request(bhttp::verb::get, "/x"));
  stop_and_join();
  EXPECT_EQ(server_->connections(), 0u);
}

}  // namespace
}  // namespace herald::http
