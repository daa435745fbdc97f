// Certificates for tests, made on the fly so that none expires or sits in the repository: a CA
// and a server certificate it signed, for a name and 127.0.0.1 (EC P-256 keys, valid for a day).
#pragma once

#include <filesystem>
#include <string>

namespace herald::tls::testing {

struct TestCertificates {
  std::filesystem::path ca_file;    // the CA's certificate (PEM), for clients to trust
  std::filesystem::path cert_file;  // the server's certificate (PEM)
  std::filesystem::path key_file;   // the server's private key (PEM)
  std::string server_name;          // the DNS name in the server's certificate
};

// Writes a fresh CA, a server certificate for `server_name` and IP 127.0.0.1, and its key into
// `dir` (created if needed). Throws std::runtime_error on failure.
TestCertificates make_test_certificates(const std::filesystem::path& dir,
                                        const std::string& server_name = "herald.test");

}  // namespace herald::tls::testing
