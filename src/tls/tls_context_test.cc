#include "tls/tls_context.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "tls/testing/test_certificates.h"

namespace herald::tls {
namespace {

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("herald_tls_context_" + std::to_string(::getpid()));
    certs_ = testing::make_test_certificates(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The message of the exception `make` throws, or "" when it throws none.
  template <typename Make>
  static std::string error_of(Make make) {
    try {
      make();
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }

  std::filesystem::path dir_;
  testing::TestCertificates certs_;
};

TEST_F(TlsContextTest, BuildsAServerContextFromPemFiles) {
  EXPECT_NE(make_server_context({certs_.cert_file.string(), certs_.key_file.string(), "", 60}),
            nullptr);
}

TEST_F(TlsContextTest, TheCertificateNameIsItsFirstDnsName) {
  const auto context =
      make_server_context({certs_.cert_file.string(), certs_.key_file.string(), "", 60});
  EXPECT_EQ(certificate_name(*context), "herald.test");
  boost::asio::ssl::context empty(boost::asio::ssl::context::tls_server);
  EXPECT_EQ(certificate_name(empty), "");
}

TEST_F(TlsContextTest, NamesAMissingCertificateFile) {
  const auto error = error_of([&] {
    make_server_context({(dir_ / "missing.pem").string(), certs_.key_file.string(), "", 60});
  });
  EXPECT_NE(error.find("tls.cert_file"), std::string::npos) << error;
  EXPECT_NE(error.find("missing.pem"), std::string::npos) << error;
}

TEST_F(TlsContextTest, RefusesAKeyThatDoesNotMatchTheCertificate) {
  const auto other = testing::make_test_certificates(dir_ / "other");
  const auto error = error_of([&] {
    make_server_context({certs_.cert_file.string(), other.key_file.string(), "", 60});
  });
  EXPECT_NE(error.find("tls.key_file"), std::string::npos) << error;
  EXPECT_NE(error.find("mismatch"), std::string::npos) << error;
}

TEST_F(TlsContextTest, RefusesAShortTicketSecret) {
  const auto error = error_of([&] {
    make_server_context({certs_.cert_file.string(), certs_.key_file.string(), "short", 60});
  });
  EXPECT_NE(error.find("tls.ticket_secret"), std::string::npos) << error;
}

TEST_F(TlsContextTest, AVerifyingClientNeedsAServerName) {
  EXPECT_NE(error_of([&] { make_client_context({certs_.ca_file.string(), "", true}); }), "");
  EXPECT_NE(make_client_context({"", "", false}), nullptr);
}

TEST_F(TlsContextTest, TicketKeysDependOnTheSecretAndThePeriod) {
  const TicketKey a = derive_ticket_key("a secret of enough bytes", 7);
  const TicketKey same = derive_ticket_key("a secret of enough bytes", 7);
  const TicketKey next = derive_ticket_key("a secret of enough bytes", 8);
  const TicketKey other = derive_ticket_key("another secret, enough bytes", 7);
  EXPECT_EQ(std::memcmp(&a, &same, sizeof a), 0);
  EXPECT_NE(std::memcmp(a.name, next.name, sizeof a.name), 0);
  EXPECT_NE(std::memcmp(a.aes_key, next.aes_key, sizeof a.aes_key), 0);
  EXPECT_NE(std::memcmp(a.name, other.name, sizeof a.name), 0);
  EXPECT_NE(std::memcmp(a.aes_key, a.hmac_key, sizeof a.aes_key), 0);
}

}  // namespace
}  // namespace herald::tls
