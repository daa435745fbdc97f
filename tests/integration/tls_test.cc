// TLS end to end (docs/security.md): real heraldd processes with access.tls and http.tls, the real
// client library as devices, the sender API over HTTPS. Certificates are made for each run
// (tls/testing/test_certificates.h): a CA, and a server certificate for "herald.test" and
// 127.0.0.1.
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/verb.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "sender.h"
#include "test_device.h"
#include "tls/testing/test_certificates.h"
#include "tls/tls_context.h"

namespace herald::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto kWait = 20s;
const std::string kTicketSecret = "tls-test-ticket-secret-0123456789abcdef";
const std::string kTokenSecret = "tls-test-token-secret-0123456789abcdef";

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(make_temp_dir("herald-tls-test"));
    certs_ = new tls::testing::TestCertificates(tls::testing::make_test_certificates(*dir_));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete certs_;
    delete dir_;
  }

  // heraldd's flags for TLS on both listeners (or on the device listener only).
  static std::vector<std::string> tls_args(bool https = true, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--access.tls=true",
                                     std::string("--http.tls=") + (https ? "true" : "false"),
                                     "--tls.cert_file=" + certs_->cert_file.string(),
                                     "--tls.key_file=" + certs_->key_file.string(),
                                     "--tls.ticket_secret=" + kTicketSecret,
                                     "--auth.token_secret=" + kTokenSecret};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  static std::shared_ptr<asio::ssl::context> client_context() {
    return tls::make_client_context({certs_->ca_file.string(), certs_->server_name, true});
  }

  // A sender over HTTPS, trusting the test CA.
  static Sender https_sender(const HeraldServer& server) {
    return Sender(server.http_port(), client_context(), certs_->server_name);
  }

  static ClientOptions tls_device(const HeraldServer& server, const std::string& device,
                                  const std::string& token) {
    ClientOptions o = device_options(server, device, token);
    o.tls.enabled = true;
    o.tls.ca_file = certs_->ca_file.string();
    o.tls.server_name = certs_->server_name;
    return o;
  }

  static std::filesystem::path* dir_;
  static tls::testing::TestCertificates* certs_;
};

std::filesystem::path* TlsTest::dir_ = nullptr;
tls::testing::TestCertificates* TlsTest::certs_ = nullptr;

// A plain TCP connection for bytes that are not what the server expects.
class RawSocket {
 public:
  explicit RawSocket(std::uint16_t port) : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  // False when the server closed the connection first (a refusal may come mid-send).
  bool send(const std::string& bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes), ec);
    return !ec;
  }
  // Reads until the server closes the connection (true, with what it sent in `received`) or
  // `timeout` passes (false).
  bool read_to_close(std::chrono::milliseconds timeout, std::string* received = nullptr) {
    const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                     static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char chunk[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      const auto n = ::recv(socket_.native_handle(), chunk, sizeof chunk, 0);
      if (n > 0) {
        if (received != nullptr) received->append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return true;
    }
    return false;
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
};

TEST_F(TlsTest, EveryMessagePushedOverHttpsReachesADeviceOverTlsOnceInOrder) {
  HeraldServer server(tls_args());
  Sender sender = https_sender(server);
  const auto token = sender.register_device(kNewsApp, "tls-phone-1");
  TestDevice device(tls_device(server, "tls-phone-1", token));
  ASSERT_TRUE(device.wait_connected(kWait));
  constexpr int kMessages = 20;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(
        sender.push(kNewsApp, {"tls-phone-1"}, "{\"n\":" + std::to_string(i) + "}").accepted());
  }
  ASSERT_EQ(device.inbox().wait_for(kMessages, kWait), static_cast<std::size_t>(kMessages));
  const auto messages = device.inbox().messages();
  ASSERT_EQ(messages.size(), static_cast<std::size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(messages[i].data, "{\"n\":" + std::to_string(i) + "}");
  }
}

TEST_F(TlsTest, ADeviceResumesItsSessionAfterHeralddRestarts) {
  HeraldServer server(tls_args());
  const auto token = https_sender(server).register_device(kNewsApp, "tls-phone-5");
  StateLog states;
  EventLoop loop;
  Client client(loop, tls_device(server, "tls-phone-5", token), make_memory_cursor_store());
  client.on_state(states.handler());
  client.start();
  const auto first = states.wait_for(ConnectionState::kConnected, 1, kWait);
  // The same ticket secret after a restart: the ticket the device holds still resumes.
  server.kill9();
  server.restart();
  const auto second = states.wait_for(ConnectionState::kConnected, 2, kWait);
  client.stop();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(first->reason.find("over TLSv1.3"), std::string::npos) << first->reason;
  EXPECT_EQ(first->reason.find("session resumed"), std::string::npos) << first->reason;
  EXPECT_NE(second->reason.find("session resumed"), std::string::npos) << second->reason;
}

TEST_F(TlsTest, ADeviceSentAwayByADrainResumesItsSessionOnTheOtherNode) {
  // Two nodes of one deployment: the same token and ticket secrets, storage of their own.
  HeraldServer b(tls_args(false, {"--node_name=b"}));
  HeraldServer a(tls_args(false, {"--node_name=a"}));
  const auto token = Sender(a.http_port()).register_device(kNewsApp, "tls-phone-6");
  Sender(b.http_port()).register_device(kNewsApp, "tls-phone-6");
  ClientOptions o = tls_device(a, "tls-phone-6", token);
  o.endpoints = {{"127.0.0.1", a.device_port()}, {"127.0.0.1", b.device_port()}};
  o.race_width = 1;  // a first, so the drain is what moves it
  StateLog states;
  EventLoop loop;
  Client client(loop, o, make_memory_cursor_store());
  client.on_state(states.handler());
  client.start();
  const auto on_a = states.wait_for(ConnectionState::kConnected, 1, kWait);
  ASSERT_TRUE(on_a.has_value());
  EXPECT_EQ(Sender(a.http_port())
                .call(boost::beast::http::verb::post, "/v1/admin/drain", a.admin_token())
                .status,
            202);
  const auto on_b = states.wait_for(ConnectionState::kConnected, 2, kWait);
  client.stop();
  ASSERT_TRUE(on_b.has_value());
  const std::string b_port = ":" + std::to_string(b.device_port());
  EXPECT_NE(on_b->reason.find(b_port), std::string::npos) << on_b->reason;
  EXPECT_NE(on_b->reason.find("session resumed"), std::string::npos) << on_b->reason;
}

TEST_F(TlsTest, NodesPollEachOthersLoadOverHttps) {
  HeraldServer b(tls_args(true, {"--node_name=b"}));
  // A checks B's certificate against the test CA and its own certificate's name.
  HeraldServer a(tls_args(true, {"--node_name=a", "--tls.ca_file=" + certs_->ca_file.string(),
                                 "--deployment.poll_interval_ms=100",
                                 "--deployment.peer=127.0.0.1:" + std::to_string(b.http_port())}));
  http::HttpClient client("127.0.0.1", a.http_port(), 2s, {client_context(), ""});
  const std::string b_endpoint = "\"port\":" + std::to_string(b.device_port());
  bool listed = false;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!listed && std::chrono::steady_clock::now() < deadline) {
    const auto response = client.request(boost::beast::http::verb::get, "/v1/endpoints");
    listed = response && response->body().find(b_endpoint) != std::string::npos;
    if (!listed) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(listed) << "A's endpoint list never named B: its HTTPS poll of B failed";
}

TEST_F(TlsTest, ADeviceThatDoesNotTrustTheCertificateNeverConnects) {
  HeraldServer server(tls_args());
  const auto token = https_sender(server).register_device(kNewsApp, "tls-phone-2");
  const auto stranger = tls::testing::make_test_certificates(*dir_ / "stranger");
  ClientOptions o = tls_device(server, "tls-phone-2", token);
  o.tls.ca_file = stranger.ca_file.string();
  StateLog states;
  EventLoop loop;
  Client client(loop, o, make_memory_cursor_store());
  client.on_state(states.handler());
  client.start();
  // Two attempts failed, each for the certificate; none connected.
  const auto second = states.wait_for(ConnectionState::kDisconnected, 2, kWait);
  client.stop();
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(second->reason.find("certificate"), std::string::npos) << second->reason;
  EXPECT_EQ(states.count(ConnectionState::kConnected), 0u);
}

TEST_F(TlsTest, APlaintextDeviceOnTheTlsPortFailsWhileTlsDevicesAreServed) {
  HeraldServer server(tls_args());
  Sender sender = https_sender(server);
  const auto token = sender.register_device(kNewsApp, "tls-phone-3");
  const auto plain_token = sender.register_device(kNewsApp, "plain-phone");
  TestDevice device(tls_device(server, "tls-phone-3", token));
  ASSERT_TRUE(device.wait_connected(kWait));

  StateLog plain_states;
  EventLoop loop;
  Client plain(loop, device_options(server, "plain-phone", plain_token),
               make_memory_cursor_store());
  plain.on_state(plain_states.handler());
  plain.start();
  const bool plain_failed_twice =
      plain_states.wait_for(ConnectionState::kDisconnected, 2, kWait).has_value();
  ASSERT_TRUE(sender.push(kNewsApp, {"tls-phone-3"}, R"({"still":"served"})").accepted());
  EXPECT_EQ(device.inbox().wait_for(1, kWait), 1u);
  plain.stop();
  EXPECT_TRUE(plain_failed_twice);
  EXPECT_EQ(plain_states.count(ConnectionState::kConnected), 0u);
}

TEST_F(TlsTest, PlainHttpToTheHttpsPortGetsNoHttpAnswerAndChangesNothing) {
  HeraldServer server(tls_args());
  RawSocket raw(server.http_port());
  ASSERT_TRUE(raw.send("POST /v1/apps/news/devices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                       kNewsApp.key + "\r\nContent-Length: 2\r\n\r\n{}"));
  std::string answer;
  EXPECT_TRUE(raw.read_to_close(kWait, &answer));
  EXPECT_FALSE(answer.starts_with("HTTP/")) << "an HTTP answer in clear on an HTTPS port";
  // The server is as healthy as before.
  Sender sender = https_sender(server);
  EXPECT_FALSE(sender.register_device(kNewsApp, "after-plain").empty());
}

// TLS records that open a ClientHello claiming `claimed_bytes`, carrying `sent_bytes` of it.
std::string client_hello_claiming(std::uint32_t claimed_bytes, std::size_t sent_bytes) {
  std::string message = {0x01, static_cast<char>(claimed_bytes >> 16),
                         static_cast<char>(claimed_bytes >> 8), static_cast<char>(claimed_bytes)};
  message.append(sent_bytes, '\x00');
  std::string records;
  for (std::size_t at = 0; at < message.size(); at += 16384) {
    const std::size_t n = std::min<std::size_t>(16384, message.size() - at);
    records += {0x16, 0x03, 0x01, static_cast<char>(n >> 8), static_cast<char>(n)};
    records.append(message, at, n);
  }
  return records;
}

TEST_F(TlsTest, HandshakesClaimingMoreThanAHandshakeNeedsAreRefusedAtOnce) {
  HeraldServer server(tls_args());
  std::vector<std::unique_ptr<RawSocket>> peers;
  for (int i = 0; i < 50; ++i) {
    peers.push_back(std::make_unique<RawSocket>(server.device_port()));
    // Half claim 16 MiB (over OpenSSL's own limit), half claim 120,000 bytes and send 100,000
    // (within OpenSSL's, over the channel's 16 KiB). The server may close before all is sent.
    (void)peers.back()->send(i % 2 == 0 ? client_hello_claiming(0xffffff, 1000)
                                        : client_hello_claiming(120'000, 100'000));
  }
  // Closed well before the handshake deadline (10 s).
  for (auto& peer : peers) EXPECT_TRUE(peer->read_to_close(5s));
}

TEST_F(TlsTest, AHundredStalledHandshakesCostBoundedMemoryAndAreClosedByTheDeadline) {
  HeraldServer server(tls_args(true, {"--access.handshake_timeout_ms=2000"}));
  Sender sender = https_sender(server);
  const auto token = sender.register_device(kNewsApp, "tls-phone-4");
  const auto rss_before = server.rss_kib();
  // Each sends most of the largest ClientHello the channel takes (16 KiB), then stalls.
  std::vector<std::unique_ptr<RawSocket>> peers;
  for (int i = 0; i < 100; ++i) {
    peers.push_back(std::make_unique<RawSocket>(server.device_port()));
    ASSERT_TRUE(peers.back()->send(client_hello_claiming(15'000, 14'000)));
  }
  // A well-behaved device connects and is served meanwhile.
  TestDevice device(tls_device(server, "tls-phone-4", token));
  ASSERT_TRUE(device.wait_connected(kWait));
  const auto rss_held = server.rss_kib();
  std::printf("heraldd RSS: %lld KiB before, %lld KiB with 100 stalled TLS handshakes\n",
              static_cast<long long>(rss_before), static_cast<long long>(rss_held));
  if (kRssTellsWhatIsHeld) {
    // OpenSSL's SSL object, its 17 KiB record buffer and the partial ClientHello: ~41 KiB each.
    EXPECT_LT(rss_held - rss_before, 12 * 1024);
  }
  for (auto& peer : peers) EXPECT_TRUE(peer->read_to_close(kWait));
  ASSERT_TRUE(sender.push(kNewsApp, {"tls-phone-4"}, R"({"after":"stall"})").accepted());
  EXPECT_EQ(device.inbox().wait_for(1, kWait), 1u);
}

}  // namespace
}  // namespace herald::testing
