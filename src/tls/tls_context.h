// TLS configuration for Herald's listeners and for the client library: builds OpenSSL contexts
// (held in Asio's ssl::context, so Beast's ssl_stream and Herald's own TlsChannel share them).
//
// Server side: TLS 1.2 and 1.3, the certificate chain and private key from PEM files, and session
// resumption by stateless tickets only — the server keeps no per-session cache, so resumption
// costs it no memory. Ticket keys are derived from a secret shared by every process and node of a
// deployment (HMAC-SHA256 of the secret and the key's period), so a device resumes on any node
// that holds the secret, and keys rotate every `ticket_lifetime_s` with no coordination: a ticket
// of the previous period is still accepted (and replaced by a new one), an older one falls back
// to a full handshake.
//
// Client side: the peer's certificate is verified against a CA file (or the system's store) and
// the deployment's server name, which is also sent as SNI: all-IP access connects to addresses,
// so the name comes from the configuration, not from the address.
//
// Errors are reported at start-up by std::runtime_error naming the file or setting at fault.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

namespace herald::tls {

struct ServerSettings {
  std::string cert_file;  // PEM: the certificate, then its chain
  std::string key_file;   // PEM: the private key
  // Shared by every process and node that should resume each other's sessions; at least 16
  // bytes. Empty: a random secret of this process only (resumption within one process).
  std::string ticket_secret;
  // How long a ticket resumes, and the rotation period of ticket keys.
  std::uint32_t ticket_lifetime_s = 12 * 3600;
};

// Throws std::runtime_error (the file or setting at fault, and OpenSSL's reason).
std::shared_ptr<boost::asio::ssl::context> make_server_context(const ServerSettings& settings);

struct ClientSettings {
  // PEM file of the CAs to trust; empty: the system's default store.
  std::string ca_file;
  // The name the server's certificate must carry, sent as SNI. Required when verifying.
  std::string server_name;
  // Off only for tests against a self-signed certificate whose CA is not at hand.
  bool verify_peer = true;
};

// Throws std::runtime_error (the file or setting at fault).
std::shared_ptr<boost::asio::ssl::context> make_client_context(const ClientSettings& settings);

// The name `context`'s certificate is for: its first DNS subjectAltName, else its common name;
// empty when it has neither (or no certificate). What a node expects its peers' certificates to
// carry when they share the deployment's name.
std::string certificate_name(boost::asio::ssl::context& context);

// The ticket key name, AES key and HMAC key of `period` for `secret`, as the server derives
// them; exposed for tests of the rotation.
struct TicketKey {
  unsigned char name[16];
  unsigned char aes_key[32];
  unsigned char hmac_key[32];
};
TicketKey derive_ticket_key(const std::string& secret, std::uint64_t period);

}  // namespace herald::tls
