#include "tls/tls_context.h"

#include <chrono>
#include <cstring>
#include <stdexcept>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls_channel.h"

namespace herald::tls {

namespace asio = boost::asio;

namespace {

// What a server context's ticket callback needs, owned with the context.
struct TicketKeys {
  std::string secret;
  std::uint32_t lifetime_s = 0;
};

// A server context and its ticket keys, in one allocation.
struct ServerContext {
  asio::ssl::context ssl{asio::ssl::context::tls_server};
  TicketKeys keys;
};

int ticket_keys_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::uint64_t current_period(std::uint32_t lifetime_s) {
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  return static_cast<std::uint64_t>(now_s) / lifetime_s;
}

bool set_mac_key(EVP_MAC_CTX* mac, unsigned char* key) {
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
                               OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_END};
  return EVP_MAC_CTX_set_params(mac, params) == 1;
}

// OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb). Encrypting: the current
// period's key. Decrypting: the current or the previous period's (2: accepted, issue a new
// ticket), anything else unknown (0: a full handshake).
int on_ticket_key(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher,
                  EVP_MAC_CTX* mac, int encrypt) {
  const auto* keys = static_cast<const TicketKeys*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_keys_index()));
  if (keys == nullptr) return -1;
  const std::uint64_t period = current_period(keys->lifetime_s);
  if (encrypt) {
    TicketKey key = derive_ticket_key(keys->secret, period);
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) return -1;
    std::memcpy(key_name, key.name, sizeof key.name);
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes_key, iv) != 1) return -1;
    return set_mac_key(mac, key.hmac_key) ? 1 : -1;
  }
  for (const std::uint64_t candidate : {period, period - 1}) {
    TicketKey key = derive_ticket_key(keys->secret, candidate);
    if (std::memcmp(key_name, key.name, sizeof key.name) != 0) continue;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes_key, iv) != 1) return -1;
    if (!set_mac_key(mac, key.hmac_key)) return -1;
    return candidate == period ? 1 : 2;
  }
  return 0;
}

// Runs an Asio call that loads `file`, turning its exception into one naming the file.
template <typename Load>
void load(std::string_view what, const std::string& file, Load&& do_load) {
  try {
    do_load();
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error(std::string(what) + " " + file + ": " + e.code().message());
  }
}

}  // namespace

TicketKey derive_ticket_key(const std::string& secret, std::uint64_t period) {
  TicketKey key{};
  // Each part is HMAC-SHA256(secret, label || period, big-endian).
  const auto part = [&](std::string_view label, unsigned char* out, std::size_t size) {
    std::string message(label);
    for (int shift = 56; shift >= 0; shift -= 8) {
      message.push_back(static_cast<char>((period >> shift) & 0xff));
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
    std::memcpy(out, digest, size);
  };
  part("herald ticket name", key.name, sizeof key.name);
  part("herald ticket aes", key.aes_key, sizeof key.aes_key);
  part("herald ticket hmac", key.hmac_key, sizeof key.hmac_key);
  return key;
}

std::shared_ptr<asio::ssl::context> make_server_context(const ServerSettings& settings) {
  if (settings.cert_file.empty() || settings.key_file.empty()) {
    throw std::runtime_error("tls: a certificate file and a key file are both required");
  }
  if (settings.ticket_lifetime_s == 0) {
    throw std::runtime_error("tls: the ticket lifetime must be at least one second");
  }
  auto owner = std::make_shared<ServerContext>();
  auto& ctx = owner->ssl;
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                  SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  load("tls.cert_file", settings.cert_file,
       [&] { ctx.use_certificate_chain_file(settings.cert_file); });
  load("tls.key_file", settings.key_file,
       [&] { ctx.use_private_key_file(settings.key_file, asio::ssl::context::pem); });
  if (SSL_CTX_check_private_key(native) != 1) {
    throw std::runtime_error("tls.key_file " + settings.key_file +
                             ": does not match the certificate of " + settings.cert_file);
  }
  // Resumption by stateless tickets only: no session cache on the server.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(native, 1);
  SSL_CTX_set_timeout(native, static_cast<long>(settings.ticket_lifetime_s));
  owner->keys.lifetime_s = settings.ticket_lifetime_s;
  if (settings.ticket_secret.empty()) {
    unsigned char random[32];
    if (RAND_bytes(random, sizeof random) != 1) throw std::runtime_error("tls: no randomness");
    owner->keys.secret.assign(reinterpret_cast<const char*>(random), sizeof random);
  } else if (settings.ticket_secret.size() < 16) {
    throw std::runtime_error("tls.ticket_secret: at least 16 bytes are required");
  } else {
    owner->keys.secret = settings.ticket_secret;
  }
  SSL_CTX_set_ex_data(native, ticket_keys_index(), &owner->keys);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(native, &on_ticket_key);
  return {owner, &owner->ssl};
}

std::string certificate_name(asio::ssl::context& context) {
  X509* cert = SSL_CTX_get0_certificate(context.native_handle());
  if (cert == nullptr) return {};
  std::string name;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names) && name.empty(); ++i) {
    const GENERAL_NAME* entry = sk_GENERAL_NAME_value(names, i);
    if (entry->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = entry->d.dNSName;
    name.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                static_cast<std::size_t>(ASN1_STRING_length(dns)));
  }
  GENERAL_NAMES_free(names);
  if (!name.empty()) return name;
  char common_name[256] = {};
  const int length = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
                                               common_name, sizeof common_name);
  return length > 0 ? std::string(common_name, static_cast<std::size_t>(length)) : std::string();
}

std::shared_ptr<asio::ssl::context> make_client_context(const ClientSettings& settings) {
  if (settings.verify_peer && settings.server_name.empty()) {
    throw std::runtime_error("tls: a server name is required to verify the server's certificate");
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  if (settings.verify_peer) {
    if (settings.ca_file.empty()) {
      ctx->set_default_verify_paths();
    } else {
      load("tls ca file", settings.ca_file, [&] { ctx->load_verify_file(settings.ca_file); });
    }
    ctx->set_verify_mode(asio::ssl::verify_peer);
  } else {
    ctx->set_verify_mode(asio::ssl::verify_none);
  }
  capture_sessions(native);
  return ctx;
}

}  // namespace herald::tls
