// EndpointDirectory without a real list server: lists signed here are handed over as the cache
// file, so ordering, deduplication, spread, expiry and the cache's trust rules are tested without
// sockets; refresh() meets a closed loopback port and a one-shot HTTPS server on a thread of the
// test (tests/integration/endpoint_directory_test.cc fetches from real heraldd processes).
#include "endpoint_directory.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <exception>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/serialize.hpp>

#include "http/endpoint_list.h"
#include "test_dir.h"
#include "tls/testing/test_certificates.h"
#include "tls/tls_context.h"

namespace herald::detail {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using herald::testing::read_file;
using herald::testing::TestDir;
using herald::testing::write_file;

constexpr std::int64_t kNowMs = 1'700'000'000'000;
constexpr std::int64_t kValidityMs = 600'000;

std::string text(const std::vector<Endpoint>& endpoints) {
  std::string out;
  for (const auto& e : endpoints) out += e.host + ":" + std::to_string(e.port) + " ";
  return out;
}

class EndpointDirectoryTest : public ::testing::Test {
 protected:
  protocol::EndpointList list(std::vector<protocol::Endpoint> endpoints) const {
    return {std::move(endpoints), kNowMs, kNowMs + kValidityMs, signer_.key_id()};
  }

  std::string body(const protocol::EndpointList& l) const {
    return boost::json::serialize(http::signed_list_json(l, signer_));
  }

  void cache(const protocol::EndpointList& l) const { write_file(cache_file(), body(l)); }

  std::filesystem::path cache_file() const { return dir_ / "endpoints.json"; }

  EndpointDirectorySettings settings() const {
    EndpointDirectorySettings s;
    s.public_key_base64 = signer_.public_key_base64();
    s.cache_file = cache_file();
    s.embedded = {{"192.0.2.99", 7700}};
    s.seed = 1;
    s.clock_ms = [] { return kNowMs; };
    return s;
  }

  http::EndpointSigner signer_ = http::EndpointSigner::generate();
  TestDir dir_;
};

void run_refresh(EndpointDirectory& directory, std::string network) {
  asio::io_context io;
  asio::co_spawn(asio::make_strand(io), directory.refresh(std::move(network)),
                 [](std::exception_ptr e) {
                   if (e) std::rethrow_exception(e);
                 });
  io.run();
}

// A one-shot HTTPS list server on loopback: on a thread of its own, answers the first request
// with 200 and `body`, then closes. Every wait has a deadline; join() before reading request().
class HttpsListServer {
 public:
  HttpsListServer(std::shared_ptr<asio::ssl::context> tls, std::string body)
      : tls_(std::move(tls)), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this, body = std::move(body)] { serve(body); });
  }
  ~HttpsListServer() { join(); }
  HttpsListServer(const HttpsListServer&) = delete;
  HttpsListServer& operator=(const HttpsListServer&) = delete;

  [[nodiscard]] std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  // What the client sent (request line and header), once joined.
  [[nodiscard]] const std::string& request() const { return request_; }
  // Why the server's TLS handshake failed, once joined; empty when it did not.
  [[nodiscard]] const std::string& handshake_error() const { return handshake_error_; }

 private:
  void serve(const std::string& body) {
    pollfd p{acceptor_.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return;
    boost::system::error_code ec;
    asio::ip::tcp::socket socket(io_);
    acceptor_.accept(socket, ec);
    if (ec) return;
    // The client must not wait for ever on a server that broke: 5 s per read or write.
    const timeval limit{5, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    asio::ssl::stream<asio::ip::tcp::socket&> stream(socket, *tls_);
    stream.handshake(asio::ssl::stream_base::server, ec);
    if (ec) {
      handshake_error_ = ec.message();
      return;
    }
    asio::read_until(stream, asio::dynamic_buffer(request_), "\r\n\r\n", ec);
    if (ec) return;
    const std::string response =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    asio::write(stream, asio::buffer(response), ec);
    socket.close(ec);  // without close_notify: the length says where the answer ends
  }

  std::shared_ptr<asio::ssl::context> tls_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::string request_;
  std::string handshake_error_;
  std::thread thread_;
};

// A loopback port nothing listens on (bound, then closed).
std::uint16_t closed_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

TEST_F(EndpointDirectoryTest, CandidatesAreTheListInLoadOrderThenTheEmbeddedDeduplicated) {
  cache(list({{"10.0.0.1", 7700, "a", 100},
              {"10.0.0.2", 7700, "b", 400},
              {"192.0.2.99", 7700, "c", 900},
              {"10.0.0.2", 7700, "b", 400}}));
  auto s = settings();
  s.embedded = {{"192.0.2.99", 7700}, {"198.51.100.1", 7701}, {"10.0.0.1", 7700}};
  const EndpointDirectory directory(std::move(s));
  EXPECT_EQ(directory.last_error(), "");
  const std::vector<Endpoint> expected = {
      {"10.0.0.1", 7700}, {"10.0.0.2", 7700}, {"192.0.2.99", 7700}, {"198.51.100.1", 7701}};
  EXPECT_EQ(directory.candidates(kNowMs), expected) << text(directory.candidates(kNowMs));
}

TEST_F(EndpointDirectoryTest, Ipv6LiteralsAreComparedInTheirCanonicalSpelling) {
  cache(list({{"fd00:0:0::1", 7700, "a", 100}}));
  auto s = settings();
  s.embedded = {{"fd00::0001", 7700}};
  const EndpointDirectory directory(std::move(s));
  const std::vector<Endpoint> expected = {{"fd00::1", 7700}};
  EXPECT_EQ(directory.candidates(kNowMs), expected) << text(directory.candidates(kNowMs));
}

TEST_F(EndpointDirectoryTest, EquallyLoadedEndpointsAreShuffledBySeedAndTheRestKeepLoadOrder) {
  // 100, 120 and 150 are within 50 of the best; 151 and 500 are not.
  cache(list({{"10.0.0.1", 1, "a", 100},
              {"10.0.0.2", 1, "b", 120},
              {"10.0.0.3", 1, "c", 150},
              {"10.0.0.4", 1, "d", 151},
              {"10.0.0.5", 1, "e", 500}}));
  const std::set<std::string> near = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
  std::set<std::string> firsts;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    auto s = settings();
    s.embedded.clear();
    s.seed = seed;
    const EndpointDirectory directory(std::move(s));
    const auto c = directory.candidates(kNowMs);
    ASSERT_EQ(c.size(), 5u);
    EXPECT_EQ(std::set<std::string>({c[0].host, c[1].host, c[2].host}), near);
    EXPECT_EQ(c[3].host, "10.0.0.4");
    EXPECT_EQ(c[4].host, "10.0.0.5");
    EXPECT_EQ(directory.candidates(kNowMs), c);  // fixed per list: repeated calls agree
    firsts.insert(c[0].host);
  }
  // Twenty seeds (fixed, so this cannot flake) do not all pick the same first endpoint.
  EXPECT_GT(firsts.size(), 1u);
}

TEST_F(EndpointDirectoryTest, AnExpiredListIsNeverUsed) {
  cache(list({{"10.0.0.1", 7700, "a", 100}}));
  const EndpointDirectory directory(settings());
  EXPECT_EQ(directory.candidates(kNowMs + kValidityMs - 1).size(), 2u);
  const std::vector<Endpoint> embedded = {{"192.0.2.99", 7700}};
  EXPECT_EQ(directory.candidates(kNowMs + kValidityMs), embedded);
}

TEST_F(EndpointDirectoryTest, AnExpiredCacheFileIsIgnored) {
  cache(list({{"10.0.0.1", 7700, "a", 100}}));
  auto s = settings();
  s.clock_ms = [] { return kNowMs + kValidityMs; };
  const EndpointDirectory directory(std::move(s));
  const std::vector<Endpoint> embedded = {{"192.0.2.99", 7700}};
  EXPECT_EQ(directory.candidates(kNowMs), embedded);
  EXPECT_NE(directory.last_error().find("expired"), std::string::npos) << directory.last_error();
}

TEST_F(EndpointDirectoryTest, ATamperedCacheFileIsIgnored) {
  std::string b = body(list({{"10.0.0.1", 7700, "a", 100}}));
  b.replace(b.find("10.0.0.1"), 8, "10.6.6.6");
  write_file(cache_file(), b);
  const EndpointDirectory directory(settings());
  const std::vector<Endpoint> embedded = {{"192.0.2.99", 7700}};
  EXPECT_EQ(directory.candidates(kNowMs), embedded);
  EXPECT_NE(directory.last_error().find("signature does not match"), std::string::npos)
      << directory.last_error();
}

TEST_F(EndpointDirectoryTest, ACacheFileSignedWithAnotherKeyOrNotJsonIsIgnored) {
  const auto other = http::EndpointSigner::generate();
  protocol::EndpointList l = list({{"10.0.0.1", 7700, "a", 100}});
  l.key_id = other.key_id();
  write_file(cache_file(), boost::json::serialize(http::signed_list_json(l, other)));
  const EndpointDirectory by_other(settings());
  EXPECT_EQ(by_other.candidates(kNowMs).size(), 1u);
  EXPECT_NE(by_other.last_error().find("another key"), std::string::npos) << by_other.last_error();

  write_file(cache_file(), "<html>captive portal</html>");
  const EndpointDirectory garbage(settings());
  EXPECT_EQ(garbage.candidates(kNowMs).size(), 1u);
  EXPECT_NE(garbage.last_error().find("malformed"), std::string::npos) << garbage.last_error();
}

TEST_F(EndpointDirectoryTest, ACacheFileAboveTheResponseBoundIsNotRead) {
  cache(list({{"10.0.0.1", 7700, "a", 100}}));
  auto s = settings();
  s.max_response_bytes = 16;
  const EndpointDirectory directory(std::move(s));
  EXPECT_EQ(directory.candidates(kNowMs).size(), 1u);
  EXPECT_NE(directory.last_error().find("larger than 16 bytes"), std::string::npos)
      << directory.last_error();
}

TEST_F(EndpointDirectoryTest, AMissingCacheFileIsNothingCached) {
  const EndpointDirectory directory(settings());
  EXPECT_EQ(directory.last_error(), "");
  EXPECT_EQ(directory.candidates(kNowMs).size(), 1u);
  EXPECT_FALSE(directory.heartbeat_hint(""));
}

TEST_F(EndpointDirectoryTest, TheHeartbeatHintIsAnsweredForItsNetworkOnly) {
  protocol::EndpointList l = list({{"10.0.0.1", 7700, "a", 100}});
  l.heartbeat = protocol::HeartbeatHint{"carrier x", 240, 12};
  cache(l);
  const EndpointDirectory directory(settings());
  const auto hint = directory.heartbeat_hint("carrier x");
  ASSERT_TRUE(hint.has_value());
  EXPECT_EQ(hint->start_s, 240u);
  EXPECT_EQ(hint->reports, 12u);
  EXPECT_FALSE(directory.heartbeat_hint("wifi"));
}

TEST_F(EndpointDirectoryTest, WithoutListUrlsARefreshIsNeverDue) {
  const EndpointDirectory directory(settings());
  EXPECT_FALSE(directory.due(kNowMs));
}

TEST_F(EndpointDirectoryTest, AFailedRefreshKeepsTheCachedListAndBacksOffBeforeTheNextOne) {
  cache(list({{"10.0.0.1", 7700, "a", 100}}));
  const std::string cached = read_file(cache_file());
  auto s = settings();
  s.list_urls = {"http://127.0.0.1:" + std::to_string(closed_port())};
  s.retry_initial = 10s;
  s.retry_max = 40s;
  EndpointDirectory directory(std::move(s));
  EXPECT_TRUE(directory.due(kNowMs));  // the cached list's loads are old: fetch a fresh one
  run_refresh(directory, "wifi");
  EXPECT_NE(directory.last_error().find("connect"), std::string::npos) << directory.last_error();
  EXPECT_EQ(directory.candidates(kNowMs).front(), (Endpoint{"10.0.0.1", 7700}));
  EXPECT_EQ(read_file(cache_file()), cached);
  // The first retry comes after 5..10 s, each later one after half to all of a doubled ceiling.
  EXPECT_FALSE(directory.due(kNowMs + 5'000 - 1));
  EXPECT_TRUE(directory.due(kNowMs + 10'000));
  run_refresh(directory, "wifi");
  EXPECT_FALSE(directory.due(kNowMs + 10'000 - 1));
  EXPECT_TRUE(directory.due(kNowMs + 20'000));
  for (int i = 0; i < 5; ++i) run_refresh(directory, "wifi");
  EXPECT_FALSE(directory.due(kNowMs + 20'000 - 1));  // the ceiling stops at retry_max
  EXPECT_TRUE(directory.due(kNowMs + 40'000));
}

TEST_F(EndpointDirectoryTest, SettingsAreCheckedAtConstruction) {
  auto s = settings();
  s.public_key_base64 = "AAAA";
  EXPECT_THROW(EndpointDirectory{s}, std::invalid_argument);
  s = settings();
  s.list_urls = {"http://ok.example:8080/v1/endpoints", "ftp://bad.example/"};
  try {
    const EndpointDirectory directory(s);
    ADD_FAILURE() << "an ftp URL was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ftp://bad.example/"), std::string::npos) << e.what();
  }
  s = settings();
  s.embedded = {{"", 7700}};
  EXPECT_THROW(EndpointDirectory{s}, std::invalid_argument);
  s = settings();
  s.max_response_bytes = 0;
  EXPECT_THROW(EndpointDirectory{s}, std::invalid_argument);
}

TEST_F(EndpointDirectoryTest, FetchesTheListOverHttpsVerifyingTheServerName) {
  const auto certs = tls::testing::make_test_certificates(dir_ / "tls");
  const std::string served = body(list({{"10.0.0.7", 7700, "a", 100}}));
  HttpsListServer server(
      tls::make_server_context({certs.cert_file.string(), certs.key_file.string(), "", 3600}),
      served);
  auto s = settings();
  // An IP literal host: the certificate is checked against tls_server_name.
  s.list_urls = {"https://127.0.0.1:" + std::to_string(server.port()) + "/v1/endpoints"};
  s.tls_ca_file = certs.ca_file.string();
  s.tls_server_name = certs.server_name;
  EndpointDirectory directory(std::move(s));
  run_refresh(directory, "wifi");
  server.join();
  EXPECT_EQ(directory.last_error(), "");
  EXPECT_EQ(server.handshake_error(), "");
  EXPECT_EQ(server.request().find("GET /v1/endpoints?network=wifi HTTP/1.1\r\n"), 0u)
      << server.request();
  EXPECT_NE(server.request().find("Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"),
            std::string::npos)
      << server.request();
  EXPECT_EQ(directory.candidates(kNowMs).front(), (Endpoint{"10.0.0.7", 7700}));
  EXPECT_EQ(read_file(cache_file()), served);
}

TEST_F(EndpointDirectoryTest, AnHttpsListServerWhoseCertificateDoesNotVerifyCountsAsUnreachable) {
  cache(list({{"10.0.0.1", 7700, "a", 100}}));
  const std::string cached = read_file(cache_file());
  const auto trusted = tls::testing::make_test_certificates(dir_ / "trusted");
  const auto stranger = tls::testing::make_test_certificates(dir_ / "stranger");
  HttpsListServer server(
      tls::make_server_context({stranger.cert_file.string(), stranger.key_file.string(), "", 3600}),
      body(list({{"10.6.6.6", 7700, "evil", 0}})));
  auto s = settings();
  s.list_urls = {"https://127.0.0.1:" + std::to_string(server.port())};
  s.tls_ca_file = trusted.ca_file.string();
  s.tls_server_name = trusted.server_name;
  s.retry_initial = 10s;
  EndpointDirectory directory(std::move(s));
  run_refresh(directory, "");
  server.join();
  EXPECT_NE(directory.last_error().find("tls handshake"), std::string::npos)
      << directory.last_error();
  EXPECT_NE(directory.last_error().find("certificate"), std::string::npos)
      << directory.last_error();
  EXPECT_EQ(server.request(), "");  // nothing was asked of it
  // As after any failed fetch: the cached list stands, then the embedded endpoints, and the
  // next attempt waits for the retry delay.
  const std::vector<Endpoint> expected = {{"10.0.0.1", 7700}, {"192.0.2.99", 7700}};
  EXPECT_EQ(directory.candidates(kNowMs), expected) << text(directory.candidates(kNowMs));
  EXPECT_EQ(read_file(cache_file()), cached);
  EXPECT_FALSE(directory.due(kNowMs + 5'000 - 1));
}

TEST_F(EndpointDirectoryTest, HttpsSettingsAreCheckedAtConstruction) {
  auto s = settings();
  s.list_urls = {"https://127.0.0.1:8443/"};  // an IP literal: which name to verify?
  try {
    const EndpointDirectory directory(s);
    ADD_FAILURE() << "an IP literal https URL without a server name was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("https://127.0.0.1:8443/"), std::string::npos) << e.what();
  }
  s.tls_server_name = "herald.test";
  s.tls_ca_file = (dir_ / "missing-ca.pem").string();
  try {
    const EndpointDirectory directory(s);
    ADD_FAILURE() << "a CA file that does not exist was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("missing-ca.pem"), std::string::npos) << e.what();
  }
  // Plain http:// URLs need no TLS settings at all.
  s.list_urls = {"http://127.0.0.1:8080/"};
  EXPECT_NO_THROW(EndpointDirectory{s});
}

TEST(ListUrl, ParsesHostPortAndPathWithDefaults) {
  auto u = parse_list_url("http://lists.example.com");
  EXPECT_EQ(u.host, "lists.example.com");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.target, "/v1/endpoints");
  u = parse_list_url("http://10.0.0.1:7780/custom/list?region=eu");
  EXPECT_EQ(u.host, "10.0.0.1");
  EXPECT_EQ(u.port, 7780);
  EXPECT_EQ(u.target, "/custom/list?region=eu");
  u = parse_list_url("HTTP://[fd00::1]:7780");
  EXPECT_EQ(u.host, "fd00::1");
  EXPECT_EQ(u.port, 7780);
  EXPECT_EQ(u.target, "/v1/endpoints");
  EXPECT_FALSE(u.https);
}

TEST(ListUrl, HttpsDefaultsToPort443) {
  auto u = parse_list_url("https://lists.example.com");
  EXPECT_TRUE(u.https);
  EXPECT_EQ(u.host, "lists.example.com");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.target, "/v1/endpoints");
  u = parse_list_url("HTTPS://10.0.0.1:8443/list");
  EXPECT_TRUE(u.https);
  EXPECT_EQ(u.port, 8443);
  EXPECT_EQ(u.target, "/list");
}

TEST(ListUrl, RejectsWhatItCannotFetchNamingTheUrl) {
  for (const char* bad :
       {"ftp://lists.example.com/", "lists.example.com", "http://", "https://", "http://host:0/",
        "http://host:65536/", "http://host:/", "http://fd00::1/", "http://[fd00::1/",
        "http://[nonsense]/", "http://user@host/", "http://bad_name!/", "http://host/a b",
        "http://host/#frag", "http://-host/", "http://host:80x/"}) {
    try {
      (void)parse_list_url(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace herald::detail
