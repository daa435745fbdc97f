#include "tls/tls_channel.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace herald::tls {

// The BIO between OpenSSL and a channel: reads take from the span fed, writes append to
// output(). It never blocks: a read with nothing fed asks OpenSSL to retry, which SSL_read turns
// into SSL_ERROR_WANT_READ.
struct ChannelBio {
  static TlsChannel& channel(BIO* bio) { return *static_cast<TlsChannel*>(BIO_get_data(bio)); }

  static int write(BIO* bio, const char* data, int size) {
    BIO_clear_retry_flags(bio);
    channel(bio).output_.append(data, static_cast<std::size_t>(size));
    return size;
  }

  static int read(BIO* bio, char* out, int size) {
    BIO_clear_retry_flags(bio);
    auto& input = channel(bio).input_;
    if (input.empty()) {
      BIO_set_retry_read(bio);
      return -1;
    }
    const std::size_t n = std::min(input.size(), static_cast<std::size_t>(size));
    std::memcpy(out, input.data(), n);
    input = input.subspan(n);
    return static_cast<int>(n);
  }

  static long ctrl(BIO* bio, int command, long, void*) {
    switch (command) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_PENDING:
        return static_cast<long>(channel(bio).input_.size());
      case BIO_CTRL_WPENDING:
        return 0;
      default:
        return 0;
    }
  }

  static int create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

  // Where an SSL made by a channel points back to it. Not the app data, which Asio's ssl::stream
  // uses for its verify callback: a context may serve both.
  static int channel_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
  }

  // A client context's new-session callback: the session a server handed out lands in its
  // channel; an SSL that is not a channel's keeps OpenSSL's behaviour.
  static int on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* channel = static_cast<TlsChannel*>(SSL_get_ex_data(ssl, channel_index()));
    if (channel == nullptr) return 0;
    // A copy: OpenSSL marks the connection's own session unresumable when the connection ends
    // without a close_notify (SSL_free's ssl_clear_bad_session), which is how most mobile
    // connections end; the ticket itself is still good.
    SSL_SESSION* copy = SSL_SESSION_dup(session);
    if (copy != nullptr) channel->session_ = Session(copy, SSL_SESSION_free);
    return 0;  // OpenSSL keeps its reference
  }

  static const BIO_METHOD* method() {
    // Built once, on first use; OpenSSL never frees it before exit.
    static BIO_METHOD* const m = [] {
      BIO_METHOD* built = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "herald");
      BIO_meth_set_write(built, &ChannelBio::write);
      BIO_meth_set_read(built, &ChannelBio::read);
      BIO_meth_set_ctrl(built, &ChannelBio::ctrl);
      BIO_meth_set_create(built, &ChannelBio::create);
      return built;
    }();
    return m;
  }
};

namespace {

bool is_ip_literal(const std::string& name) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str());
  if (ip == nullptr) return false;
  ASN1_OCTET_STRING_free(ip);
  return true;
}

}  // namespace

void capture_sessions(SSL_CTX* ctx) {
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &ChannelBio::on_new_session);
}

TlsChannel::TlsChannel(SSL_CTX* ctx, Role role, const std::string& server_name,
                       const Session& resume)
    : ssl_(SSL_new(ctx)) {
  if (ssl_ == nullptr) {
    fail("SSL_new");
    return;
  }
  BIO* bio = BIO_new(ChannelBio::method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; the SSL owns it
  SSL_set_ex_data(ssl_, ChannelBio::channel_index(), this);
  // Frees the record buffers whenever they are empty: an idle connection keeps none.
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  if (role == Role::kServer) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (!server_name.empty()) {
    // SNI carries names only (RFC 6066); the certificate is checked against addresses as well.
    // (SSL_set_tlsext_host_name, without its C cast.)
    if (!is_ip_literal(server_name)) {
      SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(server_name.c_str()));
    }
    if (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) SSL_set1_host(ssl_, server_name.c_str());
  }
  if (resume) {
    // A copy again: OpenSSL would mark the caller's session unresumable when this connection
    // ends without a close_notify, and the caller offers it to the next connection too.
    SSL_SESSION* copy = SSL_SESSION_dup(resume.get());
    if (copy != nullptr) {
      SSL_set_session(ssl_, copy);
      SSL_SESSION_free(copy);  // the SSL holds its own reference
    }
  }
}

TlsChannel::~TlsChannel() { SSL_free(ssl_); }

TlsChannel::Status TlsChannel::fail(std::string_view what) {
  error_.assign(what);
  if (ssl_ != nullptr && SSL_get_verify_result(ssl_) != X509_V_OK) {
    error_ += ": certificate: ";
    error_ += X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
  }
  while (const unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    error_ += ": ";
    error_ += text;
  }
  return Status::kFailed;
}

void TlsChannel::start() {
  if (ssl_ == nullptr || SSL_is_server(ssl_)) return;
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r <= 0 && SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) fail("handshake");
}

void TlsChannel::feed(std::span<const std::uint8_t> cipher) {
  input_ = cipher;
  if (!established()) handshake_input_bytes_ += cipher.size();
}

TlsChannel::ReadResult TlsChannel::read(std::span<std::uint8_t> out) {
  if (ssl_ == nullptr || !error_.empty()) return {Status::kFailed, 0};
  if (handshake_input_bytes_ > kMaxHandshakeInputBytes && !established()) {
    input_ = {};
    return {fail("handshake: more than " + std::to_string(kMaxHandshakeInputBytes) +
                 " bytes before it completed"),
            0};
  }
  ERR_clear_error();
  const int size = static_cast<int>(std::min(out.size(), static_cast<std::size_t>(INT_MAX)));
  const int n = SSL_read(ssl_, out.data(), size);
  if (n > 0) return {Status::kOk, static_cast<std::size_t>(n)};
  switch (SSL_get_error(ssl_, n)) {
    case SSL_ERROR_WANT_READ:
      return {Status::kOk, 0};
    case SSL_ERROR_ZERO_RETURN:
      return {Status::kClosed, 0};
    default:
      return {fail(established() ? "record" : "handshake"), 0};
  }
}

bool TlsChannel::write(std::string_view plain) {
  if (ssl_ == nullptr || !error_.empty() || closing_ || !established()) return false;
  if (plain.empty()) return true;
  ERR_clear_error();
  // The BIO takes every byte at once, so SSL_write never stops part-way.
  while (!plain.empty()) {
    const int size = static_cast<int>(std::min(plain.size(), static_cast<std::size_t>(INT_MAX)));
    const int n = SSL_write(ssl_, plain.data(), size);
    if (n <= 0) {
      fail("write");
      return false;
    }
    plain.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void TlsChannel::close() {
  if (closing_) return;
  closing_ = true;
  if (ssl_ == nullptr || !error_.empty() || !established()) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // queues close_notify; the peer's answer is not waited for
}

bool TlsChannel::established() const { return ssl_ != nullptr && SSL_is_init_finished(ssl_); }

bool TlsChannel::resumed() const { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }

std::string_view TlsChannel::version() const {
  return ssl_ != nullptr ? SSL_get_version(ssl_) : std::string_view();
}

}  // namespace herald::tls
