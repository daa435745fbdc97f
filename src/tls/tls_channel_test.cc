#include "tls/tls_channel.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tls/testing/test_certificates.h"
#include "tls/tls_context.h"

namespace herald::tls {
namespace {

class TlsChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("herald_tls_channel_" + std::to_string(::getpid()));
    certs_ = testing::make_test_certificates(dir_);
    server_ctx_ = make_server_context(
        {certs_.cert_file.string(), certs_.key_file.string(), "a shared ticket secret", 3600});
    client_ctx_ = make_client_context({certs_.ca_file.string(), certs_.server_name, true});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Moves whatever `from` wants to send into `to` and returns the plaintext `to` reads.
  static std::string transfer(TlsChannel& from, TlsChannel& to,
                              TlsChannel::Status* status = nullptr) {
    std::string cipher;
    cipher.swap(from.output());
    std::vector<std::uint8_t> bytes(cipher.begin(), cipher.end());
    to.feed(bytes);
    std::string plain;
    std::vector<std::uint8_t> out(4096);
    for (;;) {
      const auto r = to.read(out);
      if (status != nullptr) *status = r.status;
      if (r.status != TlsChannel::Status::kOk || r.bytes == 0) break;
      plain.append(reinterpret_cast<const char*>(out.data()), r.bytes);
    }
    return plain;
  }

  // Runs the handshake both ways until neither side has anything to send.
  static void handshake(TlsChannel& client, TlsChannel& server) {
    client.start();
    for (int round = 0; round < 8 && (!client.output().empty() || !server.output().empty());
         ++round) {
      transfer(client, server);
      transfer(server, client);
    }
  }

  // A client's first handshake, ended without a close_notify as most mobile connections end: the
  // ticket the server handed out.
  Session first_ticket() {
    TlsChannel client(client_ctx_->native_handle(), TlsChannel::Role::kClient, certs_.server_name);
    TlsChannel server(server_ctx_->native_handle(), TlsChannel::Role::kServer);
    handshake(client, server);
    EXPECT_TRUE(client.established()) << client.error();
    return client.session();
  }

  // The client's ClientHello to the server, then the status of reading the server's answer.
  static TlsChannel::Status answer_to_hello(TlsChannel& client, TlsChannel& server) {
    client.start();
    transfer(client, server);
    TlsChannel::Status status{};
    transfer(server, client, &status);
    return status;
  }

  std::filesystem::path dir_;
  testing::TestCertificates certs_;
  std::shared_ptr<boost::asio::ssl::context> server_ctx_;
  std::shared_ptr<boost::asio::ssl::context> client_ctx_;
};

TEST_F(TlsChannelTest, CompletesAHandshakeAndCarriesDataBothWays) {
  TlsChannel client(client_ctx_->native_handle(), TlsChannel::Role::kClient, certs_.server_name);
  TlsChannel server(server_ctx_->native_handle(), TlsChannel::Role::kServer);
  handshake(client, server);
  ASSERT_TRUE(client.established()) << client.error();
  ASSERT_TRUE(server.established()) << server.error();
  EXPECT_EQ(client.version(), "TLSv1.3");
  EXPECT_FALSE(client.resumed());

  ASSERT_TRUE(client.write("hello, server"));
  EXPECT_EQ(transfer(client, server), "hello, server");
  const std::string large(100'000, 'x');  // spans several records
  ASSERT_TRUE(server.write(large));
  EXPECT_EQ(transfer(server, client), large);
}

TEST_F(TlsChannelTest, TakesRecordsSplitAtEveryByte) {
  TlsChannel client(client_ctx_->native_handle(), TlsChannel::Role::kClient, certs_.server_name);
  TlsChannel server(server_ctx_->native_handle(), TlsChannel::Role::kServer);
  handshake(client, server);
  ASSERT_TRUE(client.write("one byte at a time"));
  const std::string cipher = std::exchange(client.output(), {});
  std::string plain;
  std::vector<std::uint8_t> out(64);
  for (const char c : cipher) {
    const std::uint8_t byte = static_cast<std::uint8_t>(c);
    server.feed({&byte, 1});
    for (;;) {
      const auto r = server.read(out);
      ASSERT_EQ(r.status, TlsChannel::Status::kOk) << server.error();
      if (r.bytes == 0) break;
      plain.append(reinterpret_cast<const char*>(out.data()), r.bytes);
    }
  }
  EXPECT_EQ(plain, "one byte at a time");
}

TEST_F(TlsChannelTest, ResumesWithTheTicketTheServerGave) {
  const Session ticket = first_ticket();
  ASSERT_NE(ticket, nullptr) << "TLS 1.3 hands the ticket over after the handshake";
  // Another server context with the same secret: another process or node of the deployment.
  const auto other_node = make_server_context(
      {certs_.cert_file.string(), certs_.key_file.string(), "a shared ticket secret", 3600});
  TlsChannel client(client_ctx_->native_handle(), TlsChannel::Role::kClient, certs_.server_name,
                    ticket);
  TlsChannel server(other_node->native_handle(), TlsChannel::Role::kServer);
  handshake(client, server);
  ASSERT_TRUE(client.established()) << client.error();
  EXPECT_TRUE(client.resumed());
  EXPECT_TRUE(server.resumed());
}

TEST_F(TlsChannelTest, OneTicketResumesConnectionAfterConnectionThatEndWithoutClosing) {
  const Session ticket = first_ticket();
  ASSERT_NE(ticket, nullptr);
  for (int i = 0; i < 3; ++i) {
    TlsChannel client(client_ctx_->native_handle(), TlsChannel::Role::kClient, certs_.server_name,
                      ticket);
    TlsChannel server(server_ctx_->native_handle(), TlsChannel::Role::kServer);
    handshake(client, server);
    ASSERT_TRUE(client.established()) << client.error();
    EXPECT_TRUE(client.resumed()) << "connection " << i;
  }
}

TEST_F(TlsChannelTest, DoesNotResumeWithAnotherDeploymentsTicket) {
  const Session ticket = first_ticket();
  ASSERT_NE(ticket, nullptr);
  const auto stranger = make_server_context(
      {certs_.cert_file.string(), certs_.key_file.string(), "another ticket secret", 3600});
  TlsChannel client(client_ctx_->native_handle(), TlsChannel::Role::kClient, certs_.server_name,
                    ticket);
  TlsChannel server(stranger->native_handle(), TlsChannel::Role::kServer);
  handshake(client, server);
  ASSERT_TRUE(client.established()) << client.error();
  EXPECT_FALSE(client.resumed()) << "a full handshake instead";
}

TEST_F(TlsChannelTest, RefusesACertificateForAnotherName) {
  TlsChannel client(client_ctx_->native_handle(), TlsChannel::Role::kClient, "other.test");
  TlsChannel server(server_ctx_->native_handle(), TlsChannel::Role::kServer);
  EXPECT_EQ(answer_to_hello(client, server), TlsChannel::Status::kFailed);
  EXPECT_FALSE(client.established());
  EXPECT_NE(client.error().find("certificate"), std::string::npos) << client.error();
  EXPECT_FALSE(client.write("never sent"));
}

TEST_F(TlsChannelTest, RefusesAServerItsCaDidNotSign) {
  const auto other_ca = testing::make_test_certificates(dir_ / "other");
  const auto client_ctx = make_client_context({other_ca.ca_file.string(), "herald.test", true});
  TlsChannel client(client_ctx->native_handle(), TlsChannel::Role::kClient, "herald.test");
  TlsChannel server(server_ctx_->native_handle(), TlsChannel::Role::kServer);
  EXPECT_EQ(answer_to_hello(client, server), TlsChannel::Status::kFailed);
  EXPECT_FALSE(client.established());
}

TEST_F(TlsChannelTest, FailsOnBytesThatAreNotTls) {
  TlsChannel server(server_ctx_->native_handle(), TlsChannel::Role::kServer);
  const std::string plain_hello = "\x01\x10 not a ClientHello at all";
  server.feed({reinterpret_cast<const std::uint8_t*>(plain_hello.data()), plain_hello.size()});
  std::vector<std::uint8_t> out(64);
  const auto r = server.read(out);
  EXPECT_EQ(r.status, TlsChannel::Status::kFailed);
  EXPECT_FALSE(server.error().empty());
  EXPECT_FALSE(server.write("nothing"));
}

TEST_F(TlsChannelTest, FailsAPeerThatSendsMoreThanAHandshakeCanNeed) {
  TlsChannel server(server_ctx_->native_handle(), TlsChannel::Role::kServer);
  // A ClientHello claiming 100,000 bytes (OpenSSL would take up to 128 KiB), sent in records of
  // 10,000 bytes: the second passes the limit.
  std::string record = {0x16, 0x03, 0x01, 0x27, 0x10};  // 10,000 bytes of handshake
  record += {0x01, 0x01, static_cast<char>(0x86), static_cast<char>(0xa0)};
  record.resize(5 + 10'000, '\0');
  std::vector<std::uint8_t> out(64);
  const std::vector<std::uint8_t> bytes(record.begin(), record.end());
  server.feed(bytes);
  EXPECT_EQ(server.read(out).status, TlsChannel::Status::kOk) << server.error();
  server.feed(bytes);
  EXPECT_EQ(server.read(out).status, TlsChannel::Status::kFailed);
  EXPECT_NE(server.error().find("before it completed"), std::string::npos) << server.error();
}

TEST_F(TlsChannelTest, FailsOnATamperedRecord) {
  TlsChannel client(client_ctx_->native_handle(), TlsChannel::Role::kClient, certs_.server_name);
  TlsChannel server(server_ctx_->native_handle(), TlsChannel::Role::kServer);
  handshake(client, server);
  ASSERT_TRUE(client.write("to be tampered with"));
  client.output()[client.output().size() - 3] ^= 0x01;
  TlsChannel::Status status{};
  EXPECT_EQ(transfer(client, server, &status), "");
  EXPECT_EQ(status, TlsChannel::Status::kFailed);
}

TEST_F(TlsChannelTest, ReportsTheClosureOfThePeer) {
  TlsChannel client(client_ctx_->native_handle(), TlsChannel::Role::kClient, certs_.server_name);
  TlsChannel server(server_ctx_->native_handle(), TlsChannel::Role::kServer);
  handshake(client, server);
  ASSERT_TRUE(server.write("last words"));
  server.close();
  EXPECT_FALSE(server.write("after the close"));
  TlsChannel::Status status{};
  EXPECT_EQ(transfer(server, client, &status), "last words");
  EXPECT_EQ(status, TlsChannel::Status::kClosed);
}

}  // namespace
}  // namespace herald::tls
